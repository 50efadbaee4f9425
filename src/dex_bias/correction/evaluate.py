"""Out-of-sample evaluation of age corrections: before/after errors and age-gate rates.

Everything here scores the *held-out* rows only; the calibration rows never reach a score (the
split is made by ``dex_bias.correction.split``). Errors are grouped by the same engine as the
report (``dex_bias.stats.engine.metric_frame``), so a group's "before" figures equal the report's
on the same rows.

Intervals of the "after" figures and of the change in MAE (after − before, paired: both
absolute errors of a face move together) include the uncertainty of the fit itself: in bootstrap
replicate b the held-out rows are resampled *and* the correction is refitted on the b-th
bootstrap sample of the calibration rows (resampled within race × gender), so a correction fitted
on few rows gets the wide interval it deserves. A negative change means the correction helped.

Reference: Efron & Tibshirani (1993), An Introduction to the Bootstrap, ch. 13 (percentile
intervals) and §17 (bootstrapping a prediction rule by refitting it).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from dex_bias.correction.models import AgeCorrection
from dex_bias.stats.engine import Estimation, Metric, bootstrap_indices, metric_frame
from dex_bias.stats.gates import age_gate_metrics
from dex_bias.stats.metrics import (
    mean_absolute_error,
    mean_signed_error,
    root_mean_squared_error,
    with_display_columns,
)

logger = logging.getLogger(__name__)

BEFORE = ("age", "predicted_age")
AFTER = ("age", "corrected_age")


def _mae_change(age, predicted, corrected) -> np.ndarray:
    """Mean of |corrected − true| − |predicted − true| (years): the change in MAE; reduces over the last axis."""
    return np.mean(np.abs(corrected - age) - np.abs(predicted - age), axis=-1)


EFFECT_METRICS: dict[str, Metric] = {
    "mae_before": Metric(mean_absolute_error, BEFORE),
    "rmse_before": Metric(root_mean_squared_error, BEFORE),
    "bias_before": Metric(mean_signed_error, BEFORE),
    "mae_after": Metric(mean_absolute_error, AFTER),
    "rmse_after": Metric(root_mean_squared_error, AFTER),
    "bias_after": Metric(mean_signed_error, AFTER),
    "mae_change": Metric(_mae_change, ("age", "predicted_age", "corrected_age")),
}


def refitted_predictions(
    correction: AgeCorrection,
    calibration: pd.DataFrame,
    held_out: pd.DataFrame,
    replicates: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """``(replicates, len(held_out))`` corrected ages, row b from the correction refitted on the b-th
    bootstrap sample of ``calibration`` (rows resampled within race × gender)."""
    calibration = calibration.reset_index(drop=True)
    strata = calibration["race"].astype(int).to_numpy() * 2 + calibration["gender"].astype(int).to_numpy()
    out = np.empty((replicates, len(held_out)))
    for b in range(replicates):
        rows = bootstrap_indices(len(calibration), 1, rng, strata)[0]
        out[b] = correction.refit(calibration.iloc[rows]).predict(held_out)
    return out


def correction_effects(
    held_out: pd.DataFrame,
    corrections: Mapping[str, AgeCorrection],
    *,
    calibration: pd.DataFrame | None = None,
    chosen: str | None = None,
    sensitive_features: Sequence[str] = ("race", "gender", "age_band"),
    intersections: bool = False,
    estimation: Estimation = Estimation(),
    min_n_ci: int = 10,
) -> pd.DataFrame:
    """MAE, RMSE and bias (mean signed error) before and after each correction, per group.

    Args:
        held_out: prepared predictions of the held-out part (``age``, ``gender``, ``race``,
            ``predicted_age`` in years); never the calibration rows.
        corrections: name → fitted correction (``NoCorrection`` entries are skipped: their
            "after" is the "before").
        calibration: the rows the corrections were fitted on. When given, the "after" and
            "change" intervals refit the correction on a bootstrap sample of them in every
            replicate; when None, they treat the fitted correction as fixed (and say so in
            ``interval``).
        chosen: the name of the correction the pipeline keeps (flagged in ``chosen``).
        estimation: the age bands, bootstrap replicates, seed and interval level; groups smaller
            than its ``min_n`` get status ``small_group`` (intervals wide).
        min_n_ci: groups smaller than this get status ``too_few_for_ci``: point estimates are
            given, intervals are left empty (NaN) since a bootstrap of a handful of faces is
            not an interval anyone should read.

    Returns:
        One row per correction × group: ``correction``, ``chosen``, ``grouping``, ``group``,
        the feature columns, ``n``, then for each of ``mae``, ``rmse``, ``bias``:
        ``<m>_before``, ``<m>_before_ci_low``, ``<m>_before_ci_high``, ``<m>_after`` (+ CI);
        ``mae_change`` (after − before, years; negative = better) with its interval, ``status``
        (``ok``, ``small_group``, ``too_few_for_ci``), ``interval`` (what the intervals include)
        and ``min_n_ci``.
    """
    held_out = held_out.reset_index(drop=True)
    table = with_display_columns(held_out, estimation.bands)
    common = dict(
        intersections=intersections,
        estimation=estimation,
        min_n_interval=min_n_ci,
    )
    frames = []
    for name, correction in corrections.items():
        if correction.method == "none":
            continue
        # Predict on the coded table: the display table holds race and gender as names.
        scored = table.assign(corrected_age=correction.predict(held_out))
        replicate_columns, interval = None, "held-out rows resampled; the fitted correction held fixed"
        if calibration is not None and len(calibration):
            rng = np.random.default_rng([int(estimation.seed), len(name), sum(map(ord, name))])
            replicate_columns = {
                "corrected_age": refitted_predictions(correction, calibration, held_out, estimation.n_boot, rng)
            }
            interval = (
                f"held-out rows resampled and the correction refitted on {estimation.n_boot} bootstrap samples "
                "of calibration"
            )
        frame = metric_frame(scored, EFFECT_METRICS, sensitive_features, replicate_columns=replicate_columns, **common)
        frame.insert(0, "chosen", name == chosen)
        frame.insert(0, "correction", name)
        frame["interval"] = interval
        frames.append(frame)
    if not frames:
        logger.info("No correction other than 'none' to evaluate")
        return pd.DataFrame(columns=["correction", "chosen", "grouping", "group", *sensitive_features, "n", "status"])
    result = pd.concat(frames, ignore_index=True)
    result["status"] = np.where(
        result["n"] < min_n_ci, "too_few_for_ci", np.where(result["n"] < estimation.min_n, "small_group", "ok")
    )
    result = result.drop(columns=["small_group", "notes"])
    result["min_n_ci"] = min_n_ci
    for row in result[result["grouping"].isin(["overall", "race"])].itertuples(index=False):
        logger.info(
            "Held out, %s, %s=%s (n=%d): MAE %.2f -> %.2f, change %+.2f [%.2f, %.2f] (%s)",
            row.correction,
            row.grouping,
            row.group,
            row.n,
            row.mae_before,
            row.mae_after,
            row.mae_change,
            row.mae_change_ci_low,
            row.mae_change_ci_high,
            row.status,
        )
    return result


def gate_effects(
    held_out: pd.DataFrame,
    corrections: Mapping[str, AgeCorrection],
    *,
    chosen: str | None = None,
    challenge_ages: Sequence[float] = (18, 21, 25),
    by: Sequence[str] = ("race", "gender"),
    intersections: bool = False,
    estimation: Estimation = Estimation(),
) -> pd.DataFrame:
    """Age-gate rates on the held-out part, uncorrected and after each correction.

    Rows of ``dex_bias.stats.gates.age_gate_metrics`` (``grouping``, ``group``,
    ``challenge_age``, ``measure``, ``events``, ``n``, ``rate``, ``ci_low``, ``ci_high``,
    ``status``) with ``estimate`` (``uncorrected`` or the correction's name) and ``chosen``.
    """
    frames = []
    options = dict(
        challenge_ages=challenge_ages,
        by=by,
        intersections=intersections,
        estimation=estimation,
    )
    uncorrected = age_gate_metrics(held_out, **options)
    frames.append(uncorrected.assign(estimate="uncorrected", chosen=False))
    for name, correction in corrections.items():
        if correction.method == "none":
            continue
        corrected = held_out.assign(predicted_age=correction.predict(held_out))
        frames.append(age_gate_metrics(corrected, **options).assign(estimate=name, chosen=name == chosen))
    result = pd.concat(frames, ignore_index=True)
    return result[["estimate", "chosen", *[c for c in result.columns if c not in ("estimate", "chosen")]]]
