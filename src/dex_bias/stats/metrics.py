"""Error metrics of age estimates, grouped by sensitive features (Fairlearn ``MetricFrame`` style).

A metric is a plain function ``(y_true, y_pred) -> float`` on ages in years. ``metric_frame``
evaluates any set of them overall, per group of one sensitive feature and per intersection of
several, with percentile-bootstrap intervals from the same code path; ``group_metrics`` is the
audit's standard table built on it.

References: Bird et al. (2020), "Fairlearn: A toolkit for assessing and improving fairness in
AI" (MetricFrame); NIST IR 8525 (Hanaoka et al. 2024), Face Analysis Technology Evaluation: Age
Estimation and Verification (MAE by sex and region with bootstrap intervals; balanced MAE over
age × sex cells).
"""

from __future__ import annotations

import itertools
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from dex_bias.stats.intervals import bootstrap_ci
from dex_bias.utkface import DEFAULT_AGE_BANDS, GENDER_NAMES, RACE_NAMES, age_bands

Metric = Callable[[np.ndarray, np.ndarray], float]


def _error(y_true, y_pred) -> np.ndarray:
    return np.asarray(y_pred, float) - np.asarray(y_true, float)


# The standard metrics reduce over the last axis, so that ``bootstrap_ci(vectorized=True)`` can
# evaluate a block of replicates (shape ``(replicates, n)``) in one call; on 1-D input each
# returns a float.

def mean_absolute_error(y_true, y_pred) -> float:
    """Mean of |predicted − true| (years)."""
    return np.mean(np.abs(_error(y_true, y_pred)), axis=-1)


def median_absolute_error(y_true, y_pred) -> float:
    """Median of |predicted − true| (years)."""
    return np.median(np.abs(_error(y_true, y_pred)), axis=-1)


def mean_signed_error(y_true, y_pred) -> float:
    """Mean of predicted − true (years): the bias; positive means the model ages people up."""
    return np.mean(_error(y_true, y_pred), axis=-1)


def root_mean_squared_error(y_true, y_pred) -> float:
    """Square root of the mean squared error (years)."""
    return np.sqrt(np.mean(_error(y_true, y_pred) ** 2, axis=-1))


def share_within(years: float) -> Metric:
    """Metric: share (0-1) of estimates with |predicted − true| ≤ ``years``."""
    def metric(y_true, y_pred) -> float:
        return np.mean(np.abs(_error(y_true, y_pred)) <= years, axis=-1)
    metric.__name__ = f"share_within_{years:g}"
    return metric


#: The audit's standard metrics, in table order.
STANDARD_METRICS: dict[str, Metric] = {
    "mae": mean_absolute_error,
    "median_absolute_error": median_absolute_error,
    "mean_signed_error": mean_signed_error,
    "rmse": root_mean_squared_error,
    "within_5": share_within(5),
    "within_10": share_within(10),
}
#: Metrics known to reduce over the last axis (bootstrapped in blocks).
VECTORIZED_METRICS: frozenset = frozenset(STANDARD_METRICS.values())
#: Metrics that get a bootstrap interval in ``group_metrics``.
STANDARD_CI_METRICS: tuple[str, ...] = ("mae", "mean_signed_error")


def balanced_mae(y_true, y_pred, gender) -> float:
    """NIST-style balanced MAE: the mean, over age-year × gender cells, of each cell's MAE.

    A group with many easy ages (say, young adults) no longer looks better than one with many
    hard ages: each whole year of true age and each gender weighs the same. Years are the
    floor of the true age.
    """
    frame = pd.DataFrame({
        "year": np.floor(np.asarray(y_true, float)), "gender": np.asarray(gender),
        "abs_error": np.abs(np.asarray(y_pred, float) - np.asarray(y_true, float)),
    })
    if frame.empty:
        return float("nan")
    return float(frame.groupby(["year", "gender"], observed=True)["abs_error"].mean().mean())


def with_display_columns(df: pd.DataFrame, bands: Sequence[Sequence[int]] = DEFAULT_AGE_BANDS,
                         band_column: str = "age_band") -> pd.DataFrame:
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


def metric_frame(
    df: pd.DataFrame,
    metrics: Mapping[str, Metric],
    sensitive_features: Sequence[str],
    *,
    y_true: str = "age",
    y_pred: str = "predicted_age",
    intersections: bool = True,
    ci_metrics: Sequence[str] = (),
    n_boot: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
    min_n: int = 30,
) -> pd.DataFrame:
    """Evaluate ``metrics`` overall, per group of each sensitive feature and per intersection.

    Returns one row per group: ``grouping`` (``overall``, ``race``, ``race × gender`` …),
    ``group`` (``all``, ``Black``, ``Black · female`` …), one column per sensitive feature (the
    group's value, empty where the grouping does not use it), ``n``, each metric, and for each
    metric in ``ci_metrics`` the percentile-bootstrap interval ``<metric>_ci_low`` /
    ``<metric>_ci_high`` (rows resampled within the group; seed derived from ``seed`` and the
    row's position, so each row is reproducible on its own), and ``small_group`` (n < min_n).
    Empty groups (a category with no rows) are left out.
    """
    groupings: list[tuple[str, ...]] = [()]
    for size in range(1, (len(sensitive_features) if intersections else 1) + 1):
        groupings.extend(itertools.combinations(sensitive_features, size))
    rows = []
    for grouping in groupings:
        parts = [(("all",), df)] if not grouping else df.groupby(list(grouping), observed=True, sort=True)
        for key, part in parts:
            if len(part) == 0:
                continue
            key = key if isinstance(key, tuple) else (key,)
            truth, estimate = part[y_true].to_numpy(float), part[y_pred].to_numpy(float)
            row = {
                "grouping": " × ".join(grouping) if grouping else "overall",
                "group": " · ".join(str(k) for k in key),
                **{feature: (str(key[grouping.index(feature)]) if feature in grouping else "")
                   for feature in sensitive_features},
                "n": len(part),
            }
            for name, metric in metrics.items():
                row[name] = float(metric(truth, estimate))
                if name in ci_metrics:
                    row[f"{name}_ci_low"], row[f"{name}_ci_high"] = bootstrap_ci(
                        truth, estimate, statistic=metric, n_boot=n_boot,
                        seed=seed + len(rows), confidence=confidence,
                        vectorized=metric in VECTORIZED_METRICS,
                    )
            row["small_group"] = len(part) < min_n
            rows.append(row)
    return pd.DataFrame(rows)


def group_metrics(
    df: pd.DataFrame,
    *,
    sensitive_features: Sequence[str] = ("race", "gender", "age_band"),
    bands: Sequence[Sequence[int]] = DEFAULT_AGE_BANDS,
    intersections: bool = True,
    n_boot: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
    min_n: int = 30,
) -> pd.DataFrame:
    """The audit's metric table: ``STANDARD_METRICS`` and a balanced MAE for every group.

    Args:
        df: a predictions table that passed ``contract.prepare_predictions`` (``age``,
            ``gender``, ``race`` codes, ``predicted_age`` in years).
        sensitive_features: columns to group by; ``age_band`` is made from true age and
            ``bands`` (inclusive ``(low, high)`` years).

    Returns:
        ``metric_frame`` columns: grouping, group, the feature columns, n, mae (+ CI),
        median_absolute_error, mean_signed_error (+ CI), rmse, within_5, within_10,
        small_group, then ``balanced_mae`` (mean over age-year × gender cells) and ``min_n``.
    """
    table = with_display_columns(df, bands)
    frame = metric_frame(
        table, STANDARD_METRICS, sensitive_features, intersections=intersections,
        ci_metrics=STANDARD_CI_METRICS, n_boot=n_boot, seed=seed, confidence=confidence, min_n=min_n,
    )
    balanced = []
    for row in frame.itertuples(index=False):
        mask = pd.Series(True, index=table.index)
        for feature in sensitive_features:
            value = getattr(row, feature)
            if value != "":
                mask &= table[feature].astype(str) == value
        part = table[mask]
        balanced.append(balanced_mae(part["age"], part["predicted_age"], part["gender"]))
    frame["balanced_mae"] = balanced
    frame["min_n"] = min_n
    return frame
