"""Out-of-sample evaluation of age corrections: before/after errors and age-gate rates.

Everything here takes the *held-out* rows only; the calibration rows never reach it (the
split is made by ``dex_bias.correction.split``). Errors are grouped by the same machinery as
the report (``dex_bias.stats.metrics.metric_frame``), so a group's "before" figures equal the
report's on the same rows, and intervals are percentile bootstraps over the group's rows.

The change in MAE (after − before) gets a *paired* bootstrap interval: both absolute errors of
a face are resampled together, so the interval reflects the correction, not the sampling of
faces twice. A negative change means the correction helped.
"""

from __future__ import annotations

import logging
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from dex_bias.correction.models import AgeCorrection
from dex_bias.stats.gates import age_gate_metrics
from dex_bias.stats.metrics import (
    mean_absolute_error, mean_signed_error, metric_frame, root_mean_squared_error, with_display_columns,
)
from dex_bias.utkface import DEFAULT_AGE_BANDS

logger = logging.getLogger(__name__)

ERROR_METRICS = {"mae": mean_absolute_error, "rmse": root_mean_squared_error, "bias": mean_signed_error}


def _mean_change(before_abs_error, after_abs_error) -> float:
    """Mean of after − before absolute error (years): the change in MAE."""
    return float(np.mean(np.asarray(after_abs_error, float) - np.asarray(before_abs_error, float)))


def correction_effects(
    held_out: pd.DataFrame,
    corrections: Mapping[str, AgeCorrection],
    *,
    chosen: str | None = None,
    sensitive_features: Sequence[str] = ("race", "gender", "age_band"),
    intersections: bool = False,
    bands: Sequence[Sequence[int]] = DEFAULT_AGE_BANDS,
    n_boot: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
    min_n: int = 30,
    min_n_ci: int = 10,
) -> pd.DataFrame:
    """MAE, RMSE and bias (mean signed error) before and after each correction, per group.

    Args:
        held_out: prepared predictions of the held-out part (``age``, ``gender``, ``race``,
            ``predicted_age`` in years); never the calibration rows.
        corrections: name → fitted correction (``NoCorrection`` entries are skipped: their
            "after" is the "before").
        chosen: the name of the correction the pipeline keeps (flagged in ``chosen``).
        min_n: groups smaller than this get status ``small_group`` (intervals wide).
        min_n_ci: groups smaller than this get status ``too_few_for_ci``: point estimates are
            given, intervals are left empty (NaN) since a bootstrap of a handful of faces is
            not an interval anyone should read.

    Returns:
        One row per correction × group: ``correction``, ``chosen``, ``grouping``, ``group``,
        the feature columns, ``n``, then for each of ``mae``, ``rmse``, ``bias``:
        ``<m>_before``, ``<m>_before_ci_low``, ``<m>_before_ci_high``, ``<m>_after`` (+ CI);
        ``mae_change`` (after − before, years; negative = better) with its paired bootstrap
        interval, and ``status`` (``ok``, ``small_group``, ``too_few_for_ci``).
    """
    held_out = held_out.reset_index(drop=True)
    table = with_display_columns(held_out, bands)
    common = dict(sensitive_features=sensitive_features, intersections=intersections, n_boot=n_boot,
                  seed=seed, confidence=confidence, min_n=min_n)
    keys = ["grouping", "group", *sensitive_features, "n"]
    before = metric_frame(table, ERROR_METRICS, ci_metrics=tuple(ERROR_METRICS), **common)
    before = before[keys + [c for c in before.columns if c not in keys and c != "small_group"]]
    before = before.rename(columns=lambda c: c if c in keys else c.replace("mae", "mae_before", 1)
                           .replace("rmse", "rmse_before", 1).replace("bias", "bias_before", 1))
    frames = []
    for name, correction in corrections.items():
        if correction.method == "none":
            continue
        # Predict on the coded table: the display table holds race and gender as names.
        scored = table.assign(corrected_age=correction.predict(held_out))
        after = metric_frame(scored, ERROR_METRICS, y_pred="corrected_age", ci_metrics=tuple(ERROR_METRICS), **common)
        after = after[keys + [c for c in after.columns if c not in keys and c != "small_group"]]
        after = after.rename(columns=lambda c: c if c in keys else c.replace("mae", "mae_after", 1)
                             .replace("rmse", "rmse_after", 1).replace("bias", "bias_after", 1))
        # Paired change: "truth" is the uncorrected absolute error, "estimate" the corrected one.
        paired = scored.assign(abs_error_before=(scored["predicted_age"] - scored["age"]).abs(),
                               abs_error_after=(scored["corrected_age"] - scored["age"]).abs())
        change = metric_frame(paired, {"mae_change": _mean_change}, y_true="abs_error_before",
                              y_pred="abs_error_after", ci_metrics=("mae_change",), **common)
        change = change[keys + ["mae_change", "mae_change_ci_low", "mae_change_ci_high"]]
        merged = before.merge(after, on=keys, how="left").merge(change, on=keys, how="left")
        merged.insert(0, "chosen", name == chosen)
        merged.insert(0, "correction", name)
        frames.append(merged)
    if not frames:
        logger.info("No correction other than 'none' to evaluate")
        return pd.DataFrame(columns=["correction", "chosen", *keys, "status"])
    result = pd.concat(frames, ignore_index=True)
    too_few = result["n"] < min_n_ci
    interval_columns = [c for c in result.columns if c.endswith("_ci_low") or c.endswith("_ci_high")]
    result.loc[too_few, interval_columns] = np.nan
    result["status"] = np.where(too_few, "too_few_for_ci", np.where(result["n"] < min_n, "small_group", "ok"))
    result["min_n_ci"] = min_n_ci
    for row in result[result["grouping"].isin(["overall", "race"])].itertuples(index=False):
        logger.info("Held out, %s, %s=%s (n=%d): MAE %.2f -> %.2f, change %+.2f [%.2f, %.2f] (%s)",
                    row.correction, row.grouping, row.group, row.n, row.mae_before, row.mae_after,
                    row.mae_change, row.mae_change_ci_low, row.mae_change_ci_high, row.status)
    return result


def gate_effects(
    held_out: pd.DataFrame,
    corrections: Mapping[str, AgeCorrection],
    *,
    chosen: str | None = None,
    challenge_ages: Sequence[float] = (18, 21, 25),
    by: Sequence[str] = ("race", "gender"),
    intersections: bool = False,
    confidence: float = 0.95,
    min_n: int = 30,
    bands: Sequence[Sequence[int]] = DEFAULT_AGE_BANDS,
) -> pd.DataFrame:
    """Age-gate rates on the held-out part, uncorrected and after each correction.

    Rows of ``dex_bias.stats.gates.age_gate_metrics`` (``grouping``, ``group``,
    ``challenge_age``, ``measure``, ``events``, ``n``, ``rate``, ``ci_low``, ``ci_high``,
    ``status``) with ``estimate`` (``uncorrected`` or the correction's name) and ``chosen``.
    """
    frames = []
    options = dict(challenge_ages=challenge_ages, by=by, intersections=intersections,
                   confidence=confidence, min_n=min_n, bands=bands)
    uncorrected = age_gate_metrics(held_out, **options)
    frames.append(uncorrected.assign(estimate="uncorrected", chosen=False))
    for name, correction in corrections.items():
        if correction.method == "none":
            continue
        corrected = held_out.assign(predicted_age=correction.predict(held_out))
        frames.append(age_gate_metrics(corrected, **options).assign(estimate=name, chosen=name == chosen))
    result = pd.concat(frames, ignore_index=True)
    return result[["estimate", "chosen", *[c for c in result.columns if c not in ("estimate", "chosen")]]]
