"""NIST's age-verification measures per demographic group, with intervals and the spread across groups.

What an age-verification audit reports (after NIST IR 8525, the FATE age estimation and
verification report), each as a rate per group with a Wilson 95 % interval:

- **Challenge-age false positives** (``challenge_false_positive``): the share of people of a
  true age (17 in conf/base, any ages as parameters) whose estimate is at or above a challenge age
  (25 in conf/base: the "Challenge 25" retail policy); those are the minors a gate waves through.
- **13-16 classification** (``age_range_estimate``): for true ages 13-16, the share estimated
  13-16, below 13, 17-22 and above 22; for true ages 8-12 and 17-22, the share estimated 13-16.
  An unrounded estimate e reads as age ⌊e⌋ (a person is 16 until their 17th birthday), so
  "estimated 13-16" is 13 ≤ e < 17.
- **Verification at a legal age** (``verification``): the threshold t is set so that a chosen
  share (5 % in conf/base, at most) of one reference group's people aged 14-17 pass (estimate > t,
  t the (n − ⌊share · n⌋)-th smallest of their n estimates); every group's minors pass rate (true 14-17,
  estimate > t) and adults fail rate (true 18-30, estimate ≤ t) are read at that same t. The
  intervals treat t as fixed (they describe the rates at this operating point).

Spread across groups (max − min, max / min, Gini) of any of these, and of MAE, balanced MAE and
Acc(x), comes from ``dex_bias.stats.engine.spread_frame``.

All measures use the engine's groups (overall, each feature, intersections) and report
``no_cases`` (rate NaN, never 0 %) for a group with nobody the measure counts.

Reference: NIST IR 8525 (Hanaoka, Ngan, Yang, Quinn, Grother; 2024), Face Analysis Technology
Evaluation: Age Estimation and Verification; Wilson (1927), JASA 22(158).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from dex_bias.schema import settings_dataclass
from dex_bias.stats.engine import Estimation, Metric, spread_frame
from dex_bias.stats.gates import RATE, rate_frame
from dex_bias.stats.metrics import (
    ERROR_COLUMNS,
    balanced_mean,
    cell_names,
    mean_absolute_error,
    reference_cells,
    share_within,
    with_display_columns,
)
from dex_bias.utkface import DEFAULT_AGE_BANDS

logger = logging.getLogger(__name__)

VERIFICATION_COLUMNS = (
    "metric",
    "parameters",
    "threshold",
    "grouping",
    "group",
    "events",
    "n",
    "rate",
    "ci_low",
    "ci_high",
    "status",
    "notes",
)

#: An age in years, or an inclusive ``[low, high]`` range of ages (``high`` None: no upper end).
AgeOrRange = int | float | tuple[int | float, int | float | None]


@settings_dataclass
class ChallengeSettings:
    """Challenge-age false positives.

    People of each of ``true_ages`` estimated at or above each of ``challenge_ages``.
    """

    challenge_ages: list[int | float]
    true_ages: list[AgeOrRange]


@settings_dataclass
class AgeRangeSettings:
    """The ``target`` range (13-16): how its people are read (``estimate_bands``), and how often the
    ``neighbours`` ranges are read as it."""

    target: tuple[int | float, int | float]
    estimate_bands: list[tuple[int | float, int | float | None]]
    neighbours: list[tuple[int | float, int | float]]


@settings_dataclass
class VerificationSettings:
    """Verification at ``legal_age``: the threshold lets ``pass_share`` of the ``reference`` group's
    ``minor_ages`` pass; minors passing and ``adult_ages`` failing are read at it for every group."""

    legal_age: int | float
    minor_ages: tuple[int | float, int | float]
    adult_ages: tuple[int | float, int | float]
    pass_share: float
    reference: dict[str, str | int]


@settings_dataclass
class AgeVerificationSettings:
    """``report.age_verification`` (conf/base/parameters_report.yml): NIST IR 8525's measures."""

    challenge: ChallengeSettings
    age_range: AgeRangeSettings
    verification: VerificationSettings


def _range(value) -> tuple[float, float]:
    """An age or ``[low, high]`` (inclusive whole years; ``high`` None: no upper end) as ``(low, high)``."""
    if isinstance(value, (list, tuple)):
        low, high = value
        return float(low), (float("inf") if high is None else float(high))
    return float(value), float(value)


def _range_text(low: float, high: float) -> str:
    if np.isinf(high):
        return f"{low:g}+"
    return f"{low:g}" if low == high else f"{low:g}-{high:g}"


def _estimated_in(estimate: np.ndarray, low: float, high: float) -> np.ndarray:
    """Estimate read as a whole age (⌊e⌋) within [low, high]: low ≤ e < high + 1."""
    return (estimate >= low) & (estimate < high + 1)


def verification_threshold(
    table: pd.DataFrame, reference: Mapping[str, object], minor_ages: Sequence[float], pass_share: float
) -> tuple[float, int, str]:
    """The threshold at which at most ``pass_share`` of the reference group's minors pass, their count, a note.

    With n reference minors and k = ⌊pass_share · n⌋, the threshold is the (n − k)-th smallest of
    their unrounded estimates (numpy's ``inverted_cdf`` quantile at 1 − k / n), so that k of them
    (fewer with ties) are above it; a minor passes when the estimate is above the threshold. NaN
    with a note when the reference group has no minors.
    """
    low, high = _range(minor_ages)
    mask = table["age"].between(low, high).to_numpy().copy()
    for column, value in (reference or {}).items():
        mask &= (table[column].astype(str) == str(value)).to_numpy()
    estimates = table.loc[mask, "predicted_age"].to_numpy(float)
    who = ", ".join(f"{k} = {v}" for k, v in (reference or {}).items()) or "everyone"
    if len(estimates) == 0:
        return float("nan"), 0, f"no reference minors ({who}, true age {_range_text(low, high)}): threshold undefined"
    passing = int(np.floor(pass_share * len(estimates)))
    threshold = float(np.quantile(estimates, 1.0 - passing / len(estimates), method="inverted_cdf"))
    realised = float(np.mean(estimates > threshold))
    return (
        threshold,
        len(estimates),
        (
            f"threshold {threshold:.2f} years: {100 * realised:.1f}% of {len(estimates)} "
            f"reference minors ({who}, true age {_range_text(low, high)}) pass"
        ),
    )


@dataclass(frozen=True)
class RateDefinition:
    """One age-verification rate: who it counts and the event it counts, per row of a table."""

    metric: str
    parameters: str
    counted: np.ndarray
    event: np.ndarray
    threshold: float = float("nan")
    note: str = ""
    defined: bool = True


def rate_definitions(table: pd.DataFrame, settings: AgeVerificationSettings) -> list[RateDefinition]:
    """Every rate of ``age_verification_metrics`` for the rows of ``table`` (display columns)."""
    age = table["age"].to_numpy(float)
    estimate = table["predicted_age"].to_numpy(float)

    def with_true_age(true_ages) -> tuple[str, np.ndarray]:
        low, high = _range(true_ages)
        return f"true age {_range_text(low, high)}", (age >= low) & (age <= high)

    def age_range_estimate(true_ages, estimated_ages) -> RateDefinition:
        (who, counted), (low, high) = with_true_age(true_ages), _range(estimated_ages)
        event = _estimated_in(estimate, low, high)
        return RateDefinition("age_range_estimate", f"{who} estimated {_range_text(low, high)}", counted, event)

    out = []
    challenge = settings.challenge
    for challenge_age in challenge.challenge_ages:
        for true_age in challenge.true_ages:
            who, counted = with_true_age(true_age)
            out.append(
                RateDefinition(
                    "challenge_false_positive",
                    f"{who} estimated at or above {float(challenge_age):g}",
                    counted,
                    estimate >= float(challenge_age),
                )
            )
    age_range = settings.age_range
    out += [age_range_estimate(age_range.target, band) for band in age_range.estimate_bands]
    out += [age_range_estimate(band, age_range.target) for band in age_range.neighbours]
    verification = settings.verification
    threshold, _, note = verification_threshold(
        table, verification.reference, verification.minor_ages, verification.pass_share
    )
    defined = bool(np.isfinite(threshold))
    label = f"verification at {float(verification.legal_age):g}, threshold set on reference minors"
    passes = estimate > threshold if defined else np.zeros(len(estimate), bool)
    for metric, true_ages, event, verb in (
        ("verification_minors_pass", verification.minor_ages, passes, "passing"),
        ("verification_adults_fail", verification.adult_ages, ~passes, "failing"),
    ):
        who, counted = with_true_age(true_ages)
        out.append(RateDefinition(metric, f"{label}: {who} {verb}", counted, event, threshold, note, defined))
    return out


def age_verification_metrics(
    df: pd.DataFrame,
    settings: AgeVerificationSettings,
    *,
    by: Sequence[str] = ("race", "gender"),
    intersections: bool = True,
    outer: str | None = None,
    estimation: Estimation = Estimation(),
) -> pd.DataFrame:
    """NIST's age-verification rates per group with Wilson intervals (``VERIFICATION_COLUMNS``).

    Args:
        df: a contract-checked predictions table (``age``, ``predicted_age`` unrounded years, codes).
        settings: ``challenge`` (``challenge_ages``, ``true_ages``: ages or ``[low, high]``),
            ``age_range`` (``target``, ``estimate_bands``, ``neighbours``), ``verification``
            (``legal_age``, ``minor_ages``, ``adult_ages``, ``pass_share``, ``reference``: column →
            value of the group the threshold is set on).
        by, intersections, outer: the groups (engine).

    Returns:
        One row per metric × parameters × group: [outer], ``metric``
        (``challenge_false_positive``, ``age_range_estimate``, ``verification_minors_pass``,
        ``verification_adults_fail``), ``parameters`` (the measure in words), ``threshold``
        (verification rows, years), ``grouping``, ``group``, ``events``, ``n``, ``rate``,
        ``ci_low``, ``ci_high``, ``status`` (``ok``, ``small_group``, ``no_cases``,
        ``undefined`` where no threshold could be set), ``notes``.
    """
    table = with_display_columns(df, estimation.bands)
    frames = []
    for definition in rate_definitions(table, settings):
        frame = rate_frame(
            table,
            definition.counted,
            definition.event,
            by,
            intersections=intersections,
            estimation=estimation,
            outer=outer,
        )
        frame = frame.assign(metric=definition.metric, parameters=definition.parameters, threshold=definition.threshold)
        if definition.note:
            frame["notes"] = ["; ".join(filter(None, [n, definition.note])) for n in frame["notes"]]
        if not definition.defined:
            frame[["rate", "ci_low", "ci_high"]] = np.nan
            frame["status"] = "undefined"
        frames.append(frame)
    result = pd.concat(frames, ignore_index=True)
    leading = [outer] if outer else []
    logger.info("age_verification_metrics: %d rows", len(result))
    return result[leading + list(VERIFICATION_COLUMNS)]


def group_spread(
    df: pd.DataFrame,
    settings: AgeVerificationSettings,
    *,
    features: Sequence[str] = ("race", "gender", "race × gender"),
    accuracy_within: Sequence[float] = (5,),
    balanced_bands: Sequence[Sequence[int]] = DEFAULT_AGE_BANDS,
    outer: str | None = None,
    estimation: Estimation = Estimation(),
) -> pd.DataFrame:
    """Spread across the groups of each feature: max − min, max / min and Gini, with bootstrap CIs.

    Metrics: MAE, Acc(x) for each x, balanced MAE over every age band × gender reference cell
    (for features whose groups do not fix gender), and each rate of ``age_verification_metrics``
    (same settings). A feature written ``a × b`` compares the intersection groups. Groups below
    ``min_n`` (for a rate: people it counts) or with an undefined value are left out and named.

    Returns ``engine.SPREAD_COLUMNS`` (led by ``outer`` when given) plus ``parameters``, one row
    per feature × metric (× rate parameters).
    """
    table = with_display_columns(df, estimation.bands)
    for feature in features:
        if INTERSECTION in feature:
            parts = [part.strip() for part in feature.split(INTERSECTION)]
            joined = table[parts[0]].astype(str)
            for part in parts[1:]:
                joined = joined + " · " + table[part].astype(str)
            table[feature] = joined
    table["absolute_error"] = (table["predicted_age"] - table["age"]).abs()
    table["reference_cell"] = reference_cells(table["age"], table["gender"].astype(object), balanced_bands)
    names = cell_names(balanced_bands)
    required = list(names)

    def lacking(values, cells) -> str | None:
        missing = [names[c] for c in required if not np.any(cells == c)]
        return f"no rows in reference cell(s) {', '.join(missing)}" if missing else None

    errors = {"mae": Metric(mean_absolute_error, ERROR_COLUMNS)}
    for years in accuracy_within:
        errors[f"within_{years:g}"] = Metric(share_within(float(years)), ERROR_COLUMNS)
    balanced = {
        "balanced_mae": Metric(
            lambda v, c: balanced_mean(v, c, required),
            ("absolute_error", "reference_cell"),
            strata="reference_cell",
            undefined=lacking,
        )
    }
    common = dict(outer=outer, estimation=estimation)
    frames = [spread_frame(table, errors, features, **common).assign(parameters="")]
    without_gender = [f for f in features if "gender" not in f]
    if without_gender:
        frames.append(
            spread_frame(table, balanced, without_gender, **common).assign(
                parameters="over every age band × gender reference cell"
            )
        )
    for definition in rate_definitions(table, settings):
        if not definition.defined:
            continue
        scored = table.assign(event=definition.event.astype(float), counted=definition.counted)
        frames.append(
            spread_frame(scored, {definition.metric: RATE}, features, where="counted", **common).assign(
                parameters=definition.parameters
            )
        )
    return pd.concat(frames, ignore_index=True)


INTERSECTION = " × "
