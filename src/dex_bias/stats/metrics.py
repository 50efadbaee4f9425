"""Error metrics of age estimates, grouped by sensitive features (on ``dex_bias.stats.engine``).

A metric is a plain function of per-row columns; the error metrics here take true and estimated
age in years and reduce over the last axis, so the engine evaluates a block of bootstrap
replicates in one call. ``group_metrics`` is the audit's standard table: MAE, median absolute
error, mean signed error (bias), RMSE, Acc(x) (the share of estimates within x years, NIST's
accuracy measure) and a balanced MAE over fixed reference cells, overall, per group and per
intersection, with intervals, small-group flags and a status from the engine.

References: Bird et al. (2020), Fairlearn (MetricFrame); NIST IR 8525 (Hanaoka et al. 2024),
Face Analysis Technology Evaluation: Age Estimation and Verification (MAE by sex and region with
bootstrap intervals; Acc(x); a balanced MAE that weighs fixed age × sex cells equally).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from dex_bias.stats.engine import (
    Estimation,
    Metric,
    bootstrap_replicates,
    iter_groups,
    metric_frame,
    percentile_interval,
    row_seed,
)
from dex_bias.utkface import DEFAULT_AGE_BANDS, GENDER_NAMES, RACE_NAMES, age_bands

ERROR_COLUMNS = ("age", "predicted_age")


def _error(y_true, y_pred) -> np.ndarray:
    return np.asarray(y_pred, float) - np.asarray(y_true, float)


def mean_absolute_error(y_true, y_pred) -> np.ndarray:
    """Mean of |predicted − true| (years); reduces over the last axis."""
    return np.mean(np.abs(_error(y_true, y_pred)), axis=-1)


def median_absolute_error(y_true, y_pred) -> np.ndarray:
    """Median of |predicted − true| (years); reduces over the last axis."""
    return np.median(np.abs(_error(y_true, y_pred)), axis=-1)


def mean_signed_error(y_true, y_pred) -> np.ndarray:
    """Mean of predicted − true (years): the bias; positive means the model ages people up."""
    return np.mean(_error(y_true, y_pred), axis=-1)


def root_mean_squared_error(y_true, y_pred) -> np.ndarray:
    """Square root of the mean squared error (years)."""
    return np.sqrt(np.mean(_error(y_true, y_pred) ** 2, axis=-1))


def share_within(years: float) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """Acc(x): the share (0-1) of estimates with |predicted − true| ≤ ``years`` (NIST IR 8525)."""

    def metric(y_true, y_pred) -> np.ndarray:
        return np.mean(np.abs(_error(y_true, y_pred)) <= years, axis=-1)

    metric.__name__ = f"share_within_{years:g}"
    return metric


def error_metrics(accuracy_within: Sequence[float] = (5, 10)) -> dict[str, Metric]:
    """The audit's standard error metrics as engine ``Metric`` s, in table order.

    Intervals: percentile bootstrap for MAE, mean signed error and each Acc(x); none for the
    median and RMSE (shown as estimates only).
    """
    metrics = {
        "mae": Metric(mean_absolute_error, ERROR_COLUMNS),
        "median_absolute_error": Metric(median_absolute_error, ERROR_COLUMNS, interval="none"),
        "mean_signed_error": Metric(mean_signed_error, ERROR_COLUMNS),
        "rmse": Metric(root_mean_squared_error, ERROR_COLUMNS, interval="none"),
    }
    for years in accuracy_within:
        metrics[f"within_{years:g}"] = Metric(share_within(float(years)), ERROR_COLUMNS)
    return metrics


#: Kept for callers that want the plain functions by name.
STANDARD_METRICS: dict[str, Callable] = {name: metric.function for name, metric in error_metrics().items()}


def with_display_columns(
    df: pd.DataFrame, bands: Sequence[Sequence[int]] = DEFAULT_AGE_BANDS, band_column: str = "age_band"
) -> pd.DataFrame:
    """Copy of ``df`` with readable ``race``/``gender`` names and ``age_band`` from true age.

    Codes become their UTKFace names (0 White … 4 Others; 0 male, 1 female) so that tables and
    figures read in words; ages outside every band get no band (and drop out of band groups).
    """
    out = df.copy()
    if "race" in out and pd.api.types.is_numeric_dtype(out["race"]):
        out["race"] = pd.Categorical(out["race"].map(RACE_NAMES), categories=list(RACE_NAMES.values()))
    if "gender" in out and pd.api.types.is_numeric_dtype(out["gender"]):
        out["gender"] = pd.Categorical(out["gender"].map(GENDER_NAMES), categories=list(GENDER_NAMES.values()))
    out[band_column] = age_bands(out["age"], bands).values
    return out


def reference_cells(ages, genders, bands: Sequence[Sequence[int]] = DEFAULT_AGE_BANDS) -> np.ndarray:
    """Reference-cell code of each row: ``2 · band index + gender code`` (−1 outside every band).

    ``genders`` may be codes (0 male, 1 female) or their names.
    """
    band = age_bands(np.asarray(ages, float), bands).cat.codes.to_numpy()
    codes = {name: code for code, name in GENDER_NAMES.items()}
    named = pd.Series(np.asarray(genders, dtype=object)).map(lambda value: codes.get(value, value))
    gender = pd.to_numeric(named, errors="coerce").to_numpy(float)
    valid = (band >= 0) & np.isin(gender, list(GENDER_NAMES))
    return np.where(valid, 2 * band + np.nan_to_num(gender).astype(int), -1)


def cell_names(bands: Sequence[Sequence[int]] = DEFAULT_AGE_BANDS) -> dict[int, str]:
    """Reference-cell code → ``'<band> · <gender>'``."""
    labels = list(age_bands([], bands).cat.categories)
    return {2 * i + g: f"{label} · {GENDER_NAMES[g]}" for i, label in enumerate(labels) for g in GENDER_NAMES}


def balanced_mean(values: np.ndarray, cells: np.ndarray, required: Sequence[int]) -> np.ndarray:
    """Mean over the ``required`` cells of each cell's mean of ``values``; reduces over the last axis.

    NaN when a required cell has no row (the balanced mean of a group that lacks a cell is
    undefined, not the mean of the cells it happens to have).
    """
    values, cells = np.asarray(values, float), np.asarray(cells)
    means = []
    for cell in required:
        inside = cells == cell
        count = inside.sum(axis=-1)
        with np.errstate(invalid="ignore", divide="ignore"):
            means.append(np.where(count > 0, np.sum(np.where(inside, values, 0.0), axis=-1) / count, np.nan))
    return np.mean(means, axis=0) if means else np.full(values.shape[:-1], np.nan)


def balanced_mae(
    y_true, y_pred, gender, bands: Sequence[Sequence[int]] = DEFAULT_AGE_BANDS, required: Sequence[int] | None = None
) -> float:
    """NIST-style balanced MAE: the mean over fixed age band × gender reference cells of each cell's MAE.

    A group with many easy ages (say, young adults) no longer looks better than one with many
    hard ages: each reference cell weighs the same. ``required`` lists the cells (codes of
    ``reference_cells``) the mean runs over, every band × gender by default; a required cell
    without rows makes the result NaN.
    """
    cells = reference_cells(y_true, gender, bands)
    required = list(cell_names(bands)) if required is None else list(required)
    return float(balanced_mean(np.abs(_error(y_true, y_pred)), cells, required))


def _required_cells(grouping: tuple[str, ...], key: tuple, bands: Sequence[Sequence[int]]) -> list[int] | None:
    """The reference cells a group is balanced over: all, or those of its own gender; None for
    age-band groups (a band group is not balanced over the audit's bands)."""
    names = cell_names(bands)
    if "age_band" in grouping:
        return None
    if "gender" in grouping:
        gender = str(key[grouping.index("gender")])
        return [code for code, name in names.items() if name.endswith(f"· {gender}")]
    return list(names)


def group_metrics(
    df: pd.DataFrame,
    *,
    sensitive_features: Sequence[str] = ("race", "gender", "age_band"),
    estimation: Estimation = Estimation(),
    balanced_bands: Sequence[Sequence[int]] | None = None,
    accuracy_within: Sequence[float] = (5, 10),
    intersections: bool = True,
    outer: str | None = None,
) -> pd.DataFrame:
    """The audit's metric table: standard error metrics, Acc(x) and balanced MAE for every group.

    Args:
        df: a predictions table that passed ``contract.prepare_predictions`` (``age``,
            ``gender``, ``race`` codes, ``predicted_age`` in years).
        sensitive_features: columns to group by; ``age_band`` is made from true age and
            ``estimation.bands`` (inclusive ``(low, high)`` years).
        balanced_bands: the age bands of balanced MAE's reference cells (× gender); the audit
            bands when None. Fixed cells, so every group is weighed the same way.
        accuracy_within: the x (years) of each Acc(x) column ``within_<x>``.
        outer: a column (e.g. ``model_name``) whose values are tabled side by side.

    Returns:
        ``metric_frame`` columns: [outer], grouping, group, the feature columns, n, mae (+ CI),
        median_absolute_error, mean_signed_error (+ CI), rmse, within_<x> (+ CI), small_group,
        status, notes; then ``balanced_mae`` with a bootstrap interval resampled within each
        reference cell (``balanced_mae_ci_low``/``_high``; NaN with a note where a group lacks a
        reference cell, and for age-band groups), and ``min_n``.
    """
    table = with_display_columns(df, estimation.bands)
    balanced_bands = tuple(balanced_bands or estimation.bands)
    frame = metric_frame(
        table,
        error_metrics(accuracy_within),
        sensitive_features,
        outer=outer,
        intersections=intersections,
        estimation=estimation,
    )
    truth = table["age"].to_numpy(float)
    absolute = np.abs(table["predicted_age"].to_numpy(float) - truth)
    cells = reference_cells(truth, table["gender"].astype(object).to_numpy(), balanced_bands)
    names = cell_names(balanced_bands)
    values, lows, highs, notes = [], [], [], list(frame["notes"]) if len(frame) else []
    for position, group in enumerate(iter_groups(table, sensitive_features, intersections=intersections, outer=outer)):
        required = _required_cells(group.grouping, group.key, balanced_bands)
        rows = group.rows
        value = low = high = float("nan")
        reason = None
        if required is None:
            reason = "balanced_mae: not defined for age-band groups"
        elif len(rows):
            present = set(cells[rows].tolist())
            lacking = [names[c] for c in required if c not in present]
            if lacking:
                reason = f"balanced_mae: no rows in reference cell(s) {', '.join(lacking)}"
            else:
                value = float(balanced_mean(absolute[rows], cells[rows], required))
                rng = row_seed(estimation.seed, group.outer, group.grouping_label, group.label, "balanced_mae")
                replicates = bootstrap_replicates(
                    [absolute[rows], cells[rows]],
                    lambda v, c, r=tuple(required): balanced_mean(v, c, r),
                    estimation.n_boot,
                    rng,
                    strata=cells[rows],
                )
                low, high = percentile_interval(replicates, estimation.confidence)
        if reason:
            notes[position] = "; ".join(filter(None, [notes[position], reason]))
        values.append(value)
        lows.append(low)
        highs.append(high)
    frame["balanced_mae"] = values
    frame["balanced_mae_ci_low"] = lows
    frame["balanced_mae_ci_high"] = highs
    frame["notes"] = notes
    frame["min_n"] = estimation.min_n
    return frame
