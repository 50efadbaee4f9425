"""Age-verification (challenge-age) rates with Wilson intervals, and the buffer each group needs.

An age gate at challenge age τ lets through anyone whose *estimated* age (unrounded, years) is at
least τ and sends the rest to a stronger check. With a legal age of 18:

- ``minors_accepted``: P(estimate ≥ τ | true age < 18), the false acceptance rate for minors;
- ``teens_accepted``: the same for true ages 13-17 only (the minors a gate actually meets);
- ``adults_challenged``: P(estimate < τ | 18 ≤ true age ≤ 24), young adults sent to a second check;
- ``adults_refused``: P(estimate < 18 | true age ≥ 18), adults the estimate calls minors
  (independent of τ; reported once, with ``challenge_age`` 18).

Reference: NIST IR 8525 (Hanaoka et al. 2024), Age Estimation and Verification, the
challenge-age false positive rates; intervals after Wilson (1927).
"""

from __future__ import annotations

import itertools
from typing import Sequence

import numpy as np
import pandas as pd

from dex_bias.stats.intervals import wilson_interval
from dex_bias.stats.metrics import with_display_columns
from dex_bias.utkface import DEFAULT_AGE_BANDS

LEGAL_AGE = 18
#: measure -> (who is counted: a function of true age, is the outcome "estimate >= τ"?)
GATE_MEASURES: dict[str, tuple] = {
    "minors_accepted": (lambda age: age < LEGAL_AGE, True),
    "teens_accepted": (lambda age: (age >= 13) & (age < LEGAL_AGE), True),
    "adults_challenged": (lambda age: (age >= LEGAL_AGE) & (age <= 24), False),
    "adults_refused": (lambda age: age >= LEGAL_AGE, False),
}


def _groupings(by: Sequence[str], intersections: bool) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = [()]
    for size in range(1, (len(by) if intersections else 1) + 1):
        out.extend(itertools.combinations(by, size))
    return out


def _parts(table: pd.DataFrame, grouping: tuple[str, ...]):
    if not grouping:
        yield "overall", "all", table
        return
    for key, part in table.groupby(list(grouping), observed=True, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        yield " × ".join(grouping), " · ".join(str(k) for k in key), part


def gate_outcomes(df: pd.DataFrame, challenge_age: float, measure: str) -> tuple[pd.Series, pd.Series]:
    """Who a measure counts (bool mask) and their outcome (bool: the event the rate counts)."""
    who, accepted_is_event = GATE_MEASURES[measure]
    threshold = LEGAL_AGE if measure == "adults_refused" else challenge_age
    counted = pd.Series(who(df["age"].to_numpy(float)), index=df.index)
    accepted = df["predicted_age"].to_numpy(float) >= threshold
    event = pd.Series(accepted if accepted_is_event else ~accepted, index=df.index)
    return counted, event


def age_gate_metrics(
    df: pd.DataFrame,
    challenge_ages: Sequence[float] = (18, 21, 25),
    by: Sequence[str] = ("race", "gender"),
    *,
    intersections: bool = True,
    confidence: float = 0.95,
    min_n: int = 30,
    bands: Sequence[Sequence[int]] = DEFAULT_AGE_BANDS,
) -> pd.DataFrame:
    """Gate rates for each challenge age, overall and per group, with Wilson intervals.

    Args:
        df: a contract-checked predictions table (``age``, ``predicted_age`` years; codes).
        challenge_ages: τ values (years); compared with the unrounded estimate.
        by: sensitive features (``race``, ``gender``, ``age_band``); intersections when asked.

    Returns:
        One row per grouping × group × challenge age × measure: ``grouping``, ``group``,
        ``challenge_age``, ``measure``, ``events``, ``n`` (people the measure counts), ``rate``
        (unrounded), ``ci_low``, ``ci_high``, ``status`` (``ok``, ``small_group`` when
        n < min_n, ``no_cases`` when n = 0, where the rate and bounds are 0 and the status
        says why: never NaN).
    """
    table = with_display_columns(df, bands)
    rows = []
    for grouping in _groupings(by, intersections):
        for grouping_name, group, part in _parts(table, grouping):
            for measure in GATE_MEASURES:
                ages = [LEGAL_AGE] if measure == "adults_refused" else challenge_ages
                for challenge_age in ages:
                    counted, event = gate_outcomes(part, challenge_age, measure)
                    n, events = int(counted.sum()), int((counted & event).sum())
                    low, high = wilson_interval(events, n, confidence) if n else (0.0, 0.0)
                    rows.append({
                        "grouping": grouping_name, "group": group, "challenge_age": float(challenge_age),
                        "measure": measure, "events": events, "n": n,
                        "rate": events / n if n else 0.0, "ci_low": low, "ci_high": high,
                        "status": "no_cases" if n == 0 else ("small_group" if n < min_n else "ok"),
                    })
    return pd.DataFrame(rows)


def challenge_age_buffers(
    df: pd.DataFrame,
    by: Sequence[str] = ("race", "gender"),
    *,
    targets: Sequence[float] = (0.01, 0.05),
    candidate_ages: Sequence[float] = tuple(range(LEGAL_AGE, 61)),
    intersections: bool = False,
    min_n: int = 30,
    bands: Sequence[Sequence[int]] = DEFAULT_AGE_BANDS,
) -> pd.DataFrame:
    """Per group, the smallest challenge age at which at most ``target`` of minors are accepted.

    The buffer is ``buffer_challenge_age − 18``: how far above the legal age the gate must sit
    for that group. Candidates are whole years (``candidate_ages``); a group whose minors are
    still accepted too often at the last candidate gets status ``not_reached`` and the last
    candidate's rate; a group with no minors gets ``no_minors``. Rates use the unrounded estimate.

    Returns columns ``grouping``, ``group``, ``target_rate``, ``minors``, ``buffer_challenge_age``,
    ``buffer_years``, ``rate_at_buffer``, ``status`` (``ok``, ``small_group``, ``not_reached``,
    ``no_minors``).
    """
    table = with_display_columns(df, bands)
    candidates = np.asarray(sorted(candidate_ages), dtype=float)
    rows = []
    for grouping in _groupings(by, intersections):
        for grouping_name, group, part in _parts(table, grouping):
            minors = part.loc[part["age"] < LEGAL_AGE, "predicted_age"].to_numpy(float)
            rates = (minors[None, :] >= candidates[:, None]).mean(axis=1) if len(minors) else np.zeros(len(candidates))
            for target in targets:
                reached = np.flatnonzero(rates <= target)
                index = reached[0] if len(reached) else len(candidates) - 1
                if len(minors) == 0:
                    status = "no_minors"
                elif not len(reached):
                    status = "not_reached"
                else:
                    status = "small_group" if len(minors) < min_n else "ok"
                rows.append({
                    "grouping": grouping_name, "group": group, "target_rate": float(target),
                    "minors": len(minors), "buffer_challenge_age": float(candidates[index]),
                    "buffer_years": float(candidates[index] - LEGAL_AGE),
                    "rate_at_buffer": float(rates[index]), "status": status,
                })
    return pd.DataFrame(rows)
