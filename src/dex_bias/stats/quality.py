"""Image-quality covariates from stored landmarks, and MAE by their bins per group.

Two covariates, from dlib's 68 landmarks in image pixels (``landmarks``: ``x_00``…``x_67``,
``y_00``…``y_67``):

- ``interocular_distance`` (pixels): between the centres of the two eyes (means of points 36-41
  and 42-47). Fewer pixels between the eyes mean less facial detail for the model; NIST reports
  age-estimation error against such resolution measures.
- ``yaw_index`` (unitless, −1 to 1): the head's left-right turn read from the landmarks' symmetry,
  ``(d_r − d_l) / (d_r + d_l)`` where ``d_r``, ``d_l`` are the horizontal distances from the nose
  tip (point 30) to the face's edge at the cheeks (points 2 and 14). 0 is frontal; under
  orthographic projection it is tan(yaw) times the ratio of nose protrusion to half face width,
  so it grows monotonically with yaw up to a profile view (±1). It is an index, not degrees.

``quality_metrics`` bins each covariate (interocular distance into quantile bins of the audited
rows, yaw by fixed ``|yaw_index|`` edges) and tables MAE with a bootstrap interval per bin × group
through ``dex_bias.stats.engine.metric_frame`` (the bin is the engine's outer grouping), so an
auditor can see whether a group's errors follow image quality: if a group's excess error stays
within each quality bin, image quality does not explain it.

Reference: dlib's 68-point iBUG 300-W markup (Sagonas et al. 2016, IVC 47); NIST IR 8525 (2024).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd

from dex_bias.stats.engine import Estimation, Metric, metric_frame
from dex_bias.stats.metrics import ERROR_COLUMNS, mean_absolute_error, with_display_columns
from dex_bias.utkface import DEFAULT_AGE_BANDS

logger = logging.getLogger(__name__)

RIGHT_EYE, LEFT_EYE = range(36, 42), range(42, 48)  # the subject's right eye is on the image's left
NOSE_TIP, RIGHT_CHEEK_EDGE, LEFT_CHEEK_EDGE = 30, 2, 14
QUALITY_COLUMNS = (
    "covariate",
    "bin",
    "grouping",
    "group",
    "n",
    "mae",
    "mae_ci_low",
    "mae_ci_high",
    "small_group",
    "status",
    "notes",
)


def _points(landmarks: pd.DataFrame, axis: str, indices) -> np.ndarray:
    return landmarks[[f"{axis}_{i:02d}" for i in indices]].to_numpy(float)


def quality_covariates(landmarks: pd.DataFrame) -> pd.DataFrame:
    """``image_id``, ``interocular_distance`` (pixels) and ``yaw_index`` per landmarked image.

    Rows without usable landmarks (missing points, both cheek distances 0) get NaN.
    """
    needed = [
        f"{axis}_{i:02d}" for axis in "xy" for i in (*RIGHT_EYE, *LEFT_EYE, NOSE_TIP, RIGHT_CHEEK_EDGE, LEFT_CHEEK_EDGE)
    ]
    missing = [c for c in ["image_id", *needed] if c not in landmarks.columns]
    if missing:
        raise KeyError(f"landmarks lack column(s) {missing[:6]}{' …' if len(missing) > 6 else ''}")
    right = np.stack([_points(landmarks, "x", RIGHT_EYE).mean(axis=1), _points(landmarks, "y", RIGHT_EYE).mean(axis=1)])
    left = np.stack([_points(landmarks, "x", LEFT_EYE).mean(axis=1), _points(landmarks, "y", LEFT_EYE).mean(axis=1)])
    interocular = np.hypot(*(left - right))
    nose = landmarks[f"x_{NOSE_TIP:02d}"].to_numpy(float)
    to_right = np.abs(nose - landmarks[f"x_{RIGHT_CHEEK_EDGE:02d}"].to_numpy(float))
    to_left = np.abs(landmarks[f"x_{LEFT_CHEEK_EDGE:02d}"].to_numpy(float) - nose)
    with np.errstate(invalid="ignore", divide="ignore"):
        yaw = np.where(to_right + to_left > 0, (to_right - to_left) / (to_right + to_left), np.nan)
    return pd.DataFrame(
        {
            "image_id": landmarks["image_id"].astype(str).to_numpy(),
            "interocular_distance": interocular,
            "yaw_index": yaw,
        }
    )


def _quantile_bins(values: pd.Series, count: int) -> pd.Series:
    """Quantile bins labelled by their pixel range (``'31-48 px'``), NaN kept out."""
    finite = values.dropna()
    if finite.empty:
        return pd.Series(pd.Categorical([None] * len(values)), index=values.index)
    edges = np.unique(np.quantile(finite, np.linspace(0, 1, count + 1)))
    if len(edges) < 2:
        edges = np.array([finite.min(), finite.max() + 1e-9])
    labels = [f"{lo:.0f}-{hi:.0f} px" for lo, hi in zip(edges[:-1], edges[1:])]
    return pd.cut(values, edges, labels=labels, include_lowest=True, duplicates="drop")


def _yaw_bins(values: pd.Series, edges: Sequence[float]) -> pd.Series:
    edges = [float(e) for e in edges]
    labels = [f"|yaw| {lo:g}-{hi:g}" for lo, hi in zip(edges[:-1], edges[1:])]
    return pd.cut(values.abs(), edges, labels=labels, include_lowest=True)


def quality_metrics(
    predictions: pd.DataFrame,
    landmarks: pd.DataFrame,
    *,
    by: Sequence[str] = ("race", "gender"),
    interocular_bins: int = 4,
    yaw_edges: Sequence[float] = (0.0, 0.1, 0.25, 0.5, 1.0),
    estimation: Estimation = Estimation(),
) -> pd.DataFrame:
    """MAE by image-quality bin × group, with bootstrap intervals (``QUALITY_COLUMNS``).

    Args:
        predictions: contract-checked predictions (``image_id``, ``age``, ``predicted_age``, codes).
        landmarks: the align pipeline's table (``image_id``, ``x_00``…``y_67`` in image pixels);
            empty or None: an empty table (the report then says image quality was not measured).
        by: the groups compared within each bin (each feature, no intersections).
        interocular_bins: how many quantile bins of interocular distance.
        yaw_edges: edges of the ``|yaw_index|`` bins.

    Returns:
        One row per covariate × bin × group (overall included): ``covariate``
        (``interocular_distance``/``yaw_index``), ``bin``, ``grouping``, ``group``, ``n``, ``mae``
        with its interval, ``small_group``, ``status`` (``ok``, ``small_group``, ``no_cases``),
        ``notes``; plus rows with ``bin`` ``not measured`` counting predictions without landmarks.
    """
    empty = pd.DataFrame({c: pd.Series(dtype=object) for c in QUALITY_COLUMNS})
    if landmarks is None or landmarks.empty or predictions.empty:
        return empty
    covariates = quality_covariates(landmarks).drop_duplicates("image_id")
    table = with_display_columns(predictions, estimation.bands)
    table["image_id"] = table["image_id"].astype(str)
    table = table.merge(covariates, on="image_id", how="left")
    unmeasured = int(table["interocular_distance"].isna().sum())
    if unmeasured:
        logger.info("quality_metrics: %d of %d predictions have no landmarks (not measured)", unmeasured, len(table))
    table["interocular_distance_bin"] = _quantile_bins(table["interocular_distance"], interocular_bins)
    table["yaw_index_bin"] = _yaw_bins(table["yaw_index"], yaw_edges)
    frames = []
    metrics = {"mae": Metric(mean_absolute_error, ERROR_COLUMNS)}
    for covariate in ("interocular_distance", "yaw_index"):
        column = f"{covariate}_bin"
        labelled = table.assign(**{column: table[column].astype(object).where(table[column].notna(), "not measured")})
        labelled[column] = pd.Categorical(
            labelled[column], categories=[*map(str, table[column].cat.categories), "not measured"], ordered=True
        )
        frame = metric_frame(
            labelled,
            metrics,
            by,
            outer=column,
            intersections=False,
            estimation=estimation,
        )
        frames.append(frame.rename(columns={column: "bin"}).assign(covariate=covariate))
    result = pd.concat(frames, ignore_index=True)
    result["bin"] = result["bin"].astype(str)
    return result[list(QUALITY_COLUMNS)]


def quality_summary(
    predictions: pd.DataFrame,
    landmarks: pd.DataFrame,
    *,
    by: Sequence[str] = ("race", "gender"),
    bands: Sequence[Sequence[int]] = DEFAULT_AGE_BANDS,
) -> pd.DataFrame:
    """Median interocular distance and median |yaw index| per group: does a group's imaging differ?"""
    if landmarks is None or landmarks.empty or predictions.empty:
        return pd.DataFrame(columns=["grouping", "group", "n", "median_interocular_distance", "median_abs_yaw_index"])
    table = with_display_columns(predictions, bands).merge(quality_covariates(landmarks), on="image_id", how="inner")
    rows = [
        {
            "grouping": "overall",
            "group": "all",
            "n": len(table),
            "median_interocular_distance": table["interocular_distance"].median(),
            "median_abs_yaw_index": table["yaw_index"].abs().median(),
        }
    ]
    for feature in by:
        for value, part in table.groupby(feature, observed=True, sort=True):
            rows.append(
                {
                    "grouping": feature,
                    "group": str(value),
                    "n": len(part),
                    "median_interocular_distance": part["interocular_distance"].median(),
                    "median_abs_yaw_index": part["yaw_index"].abs().median(),
                }
            )
    return pd.DataFrame(rows)
