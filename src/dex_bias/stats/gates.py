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

from collections.abc import Sequence

import numpy as np
import pandas as pd

from dex_bias.stats.engine import Estimation, Metric, iter_groups, metric_frame
from dex_bias.stats.metrics import with_display_columns

LEGAL_AGE = 18
#: measure -> (who is counted: a function of true age, is the outcome "estimate >= τ"?)
GATE_MEASURES: dict[str, tuple] = {
    "minors_accepted": (lambda age: age < LEGAL_AGE, True),
    "teens_accepted": (lambda age: (age >= 13) & (age < LEGAL_AGE), True),
    "adults_challenged": (lambda age: (age >= LEGAL_AGE) & (age <= 24), False),
    "adults_refused": (lambda age: age >= LEGAL_AGE, False),
}
GATE_COLUMNS = ("grouping", "group", "challenge_age", "measure", "events", "n", "rate", "ci_low", "ci_high", "status")


def _mean(values: np.ndarray) -> np.ndarray:
    return np.mean(values, axis=-1)


#: A rate: the mean of a 0/1 event column, with a Wilson interval.
RATE = Metric(_mean, ("event",), interval="wilson")


def gate_outcomes(df: pd.DataFrame, challenge_age: float, measure: str) -> tuple[pd.Series, pd.Series]:
    """Who a measure counts (bool mask) and their outcome (bool: the event the rate counts)."""
    who, accepted_is_event = GATE_MEASURES[measure]
    threshold = LEGAL_AGE if measure == "adults_refused" else challenge_age
    counted = pd.Series(who(df["age"].to_numpy(float)), index=df.index)
    accepted = df["predicted_age"].to_numpy(float) >= threshold
    event = pd.Series(accepted if accepted_is_event else ~accepted, index=df.index)
    return counted, event


def rate_frame(
    table: pd.DataFrame,
    counted: np.ndarray,
    event: np.ndarray,
    by: Sequence[str],
    *,
    intersections: bool,
    estimation: Estimation,
    outer: str | None = None,
) -> pd.DataFrame:
    """Rates of ``event`` among ``counted`` rows per group (engine, Wilson), as ``events``/``n``/``rate``/CI.

    Groups are those of the whole table; a group none of whose rows is counted reads
    ``no_cases`` with rate and bounds NaN (never 0 %).
    """
    frame = metric_frame(
        table.assign(event=np.asarray(event, float), counted=np.asarray(counted, bool)),
        {"rate": RATE},
        by,
        outer=outer,
        intersections=intersections,
        where="counted",
        estimation=estimation,
    )
    return frame.rename(columns={"rate_events": "events", "rate_ci_low": "ci_low", "rate_ci_high": "ci_high"})


def age_gate_metrics(
    df: pd.DataFrame,
    challenge_ages: Sequence[float] = (18, 21, 25),
    by: Sequence[str] = ("race", "gender"),
    *,
    intersections: bool = True,
    outer: str | None = None,
    estimation: Estimation = Estimation(),
) -> pd.DataFrame:
    """Gate rates for each challenge age, overall and per group, with Wilson intervals.

    Args:
        df: a contract-checked predictions table (``age``, ``predicted_age`` years; codes).
        challenge_ages: τ values (years); compared with the unrounded estimate.
        by: sensitive features (``race``, ``gender``, ``age_band``); intersections when asked.
        outer: a column (e.g. ``model_name``) whose values are tabled side by side.

    Returns:
        One row per grouping × group × challenge age × measure: [outer], ``grouping``, ``group``,
        ``challenge_age``, ``measure``, ``events``, ``n`` (people the measure counts), ``rate``
        (unrounded), ``ci_low``, ``ci_high``, ``status`` (``ok``, ``small_group (…)`` when
        n < min_n, ``no_cases`` when the group has nobody the measure counts: rate and bounds
        are then NaN, and the report prints "no cases").
    """
    table = with_display_columns(df, estimation.bands)
    frames = []
    for measure in GATE_MEASURES:
        ages = [LEGAL_AGE] if measure == "adults_refused" else challenge_ages
        for challenge_age in ages:
            counted, event = gate_outcomes(table, challenge_age, measure)
            frame = rate_frame(
                table,
                counted.to_numpy(),
                event.to_numpy(),
                by,
                intersections=intersections,
                estimation=estimation,
                outer=outer,
            )
            frames.append(frame.assign(challenge_age=float(challenge_age), measure=measure))
    result = pd.concat(frames, ignore_index=True)
    leading = [outer] if outer else []
    return result[leading + list(GATE_COLUMNS)]


def challenge_age_buffers(
    df: pd.DataFrame,
    by: Sequence[str] = ("race", "gender"),
    *,
    targets: Sequence[float] = (0.01, 0.05),
    candidate_ages: Sequence[float] = tuple(range(LEGAL_AGE, 61)),
    intersections: bool = False,
    estimation: Estimation = Estimation(),
) -> pd.DataFrame:
    """Per group, the smallest challenge age at which at most ``target`` of minors are accepted.

    The buffer is ``buffer_challenge_age − 18``: how far above the legal age the gate must sit
    for that group. Candidates are whole years (``candidate_ages``); a group whose minors are
    still accepted too often at the last candidate gets status ``not_reached`` and the last
    candidate's rate; a group with no minors gets ``no_minors`` and no buffer (NaN, not 0).
    Rates use the unrounded estimate.

    Returns columns ``grouping``, ``group``, ``target_rate``, ``minors``, ``buffer_challenge_age``,
    ``buffer_years``, ``rate_at_buffer``, ``status`` (``ok``, ``small_group``, ``not_reached``,
    ``no_minors``).
    """
    table = with_display_columns(df, estimation.bands)
    candidates = np.asarray(sorted(candidate_ages), dtype=float)
    out = []
    ages, estimates = table["age"].to_numpy(float), table["predicted_age"].to_numpy(float)
    for group in iter_groups(table, by, intersections=intersections):
        minors = estimates[group.rows][ages[group.rows] < LEGAL_AGE]
        rates = (minors[None, :] >= candidates[:, None]).mean(axis=1) if len(minors) else None
        for target in targets:
            row = {
                "grouping": group.grouping_label,
                "group": group.label,
                "target_rate": float(target),
                "minors": len(minors),
                "buffer_challenge_age": np.nan,
                "buffer_years": np.nan,
                "rate_at_buffer": np.nan,
            }
            if rates is None:  # nobody to protect: no buffer can be read, and none is 0
                out.append(dict(row, status="no_minors"))
                continue
            reached = np.flatnonzero(rates <= target)
            index = reached[0] if len(reached) else len(candidates) - 1
            if not len(reached):
                status = "not_reached"
            else:
                status = "small_group" if len(minors) < estimation.min_n else "ok"
            out.append(
                dict(
                    row,
                    buffer_challenge_age=float(candidates[index]),
                    buffer_years=float(candidates[index] - LEGAL_AGE),
                    rate_at_buffer=float(rates[index]),
                    status=status,
                )
            )
    return pd.DataFrame(
        out,
        columns=[
            "grouping",
            "group",
            "target_rate",
            "minors",
            "buffer_challenge_age",
            "buffer_years",
            "rate_at_buffer",
            "status",
        ],
    )
