"""Nodes of the ``explain`` pipeline: thin wrappers over ``dex_bias.explain``.

Crops are cut on demand (``dex_bias.faces.iter_crop_batches``) at the model's declared input
size, in uint8 RGB, and handed to ``dex_bias.models.make_age_function``: LIME perturbs exactly
what the model would see and explains the expected age in years.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Iterator

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from dex_bias.explain.groups import group_maps_figure, group_mean_weights, stratified_sample
from dex_bias.explain.lime_regions import (
    LimeSettings, MaskedJob, compact_segments, explain_images, hide_image, image_seed, positive_pixel_shares,
    predict_masked, quickshift_segments, region_weights,
)
from dex_bias.explain.quality import deletion_masks, deletion_summary, seed_stability
from dex_bias.explain.regions import N_REGIONS, REGION_NAMES, mean_template, region_figure, region_map
from dex_bias.faces import landmarks_in_crop
from dex_bias.faces.views import STORED_CROP, View, iter_view_batches, view_transforms
from dex_bias.utkface import age_bands

logger = logging.getLogger(__name__)

#: The defaults of conf/base/parameters_explain.yml (a test keeps the two equal). Kedro's conf
#: environments replace the whole ``explain`` dict, so keys an env leaves out are filled from here.
DEFAULT_PARAMS: dict[str, Any] = {
    "seed": 20240617,
    "max_images": None,
    "age_bands": [[0, 12], [13, 17], [18, 24], [25, 39], [40, 59], [60, 116]],
    "crop_batch_size": 64,
    "crop_padding": "edge",
    "prediction_tolerance": 0.5,
    "lime": {"num_samples": 1000, "kernel_width": 0.25, "feature_selection": "auto", "num_features": None,
             "hide": "mean", "blur_sigma": 3.0, "batch_size": 100},
    "regions": {"band_width": 0.25, "eye_area_drop": 0.35, "inner_eye_scale": 1.4, "mouth_margin": 0.3},
    "quickshift": {"enabled": True, "sample_size": 16, "positive_segments": None,
                   "segmentation": {"kernel_size": 4, "max_dist": 200, "ratio": 0.2}},
    "quality": {"sample_size": 12, "random_orders": 3, "stability_seeds": 3},
}

LABEL_COLUMNS = ["age", "gender", "race"]
FAILURE_COLUMNS = ["image_id", "reason", "detail"]


def complete_params(params: dict[str, Any] | None, defaults: dict[str, Any] = DEFAULT_PARAMS) -> dict[str, Any]:
    """``params`` over the defaults, nested dicts merged key by key; unknown keys are an error."""
    params = params or {}
    unknown = sorted(set(params) - set(defaults))
    if unknown:
        raise KeyError(f"unknown explain parameter(s) {unknown}; known: {sorted(defaults)} "
                       "(see conf/base/parameters_explain.yml)")
    merged = {}
    for key, default in defaults.items():
        value = params.get(key, default)
        if isinstance(default, dict) and key != "segmentation" and isinstance(value, dict):
            value = complete_params(value, default)
        merged[key] = value
    return merged


def _bands(params: dict[str, Any]) -> tuple[tuple[int, int], ...]:
    return tuple(tuple(int(v) for v in band) for band in params["age_bands"])


def _lime_settings(params: dict[str, Any]) -> LimeSettings:
    return LimeSettings(**params["lime"])


def _model_parts(age_model) -> tuple[Any, View]:
    """The model's age function (uint8 crops -> years) and its age input's view (crop style, size)."""
    from dex_bias.models.runtime import as_estimator

    estimator = as_estimator(age_model)
    return estimator.age_function(), estimator.spec.input.view


def _points_in_view(targets: pd.DataFrame, view: View) -> np.ndarray:
    """The 68 landmarks of each target in the model's crop (N, 68, 2)."""
    crop, size = view
    return landmarks_in_crop(targets, size, view_transforms(targets, crop, size))


def _region_maps_of(targets: pd.DataFrame, view: View, params: dict[str, Any]) -> dict[str, np.ndarray]:
    size = view[1]
    points = _points_in_view(targets, view)
    return {image_id: region_map(p, size, **params["regions"]) for image_id, p in zip(targets["image_id"], points)}


def _crop_stream(targets: pd.DataFrame, view: View, params: dict[str, Any],
                 failures: list[dict]) -> Iterator[tuple[pd.Series, np.ndarray]]:
    """(row, crop) for each target, cut as the model expects; an undecodable image becomes a failure row instead."""
    def record(row: pd.Series, error: Exception) -> None:
        failures.append({"image_id": row["image_id"], "reason": getattr(error, "reason", "crop_failed"),
                         "detail": str(error)})

    for rows, (crops,) in iter_view_batches(targets, [view], int(params["crop_batch_size"]),
                                            padding=params["crop_padding"], on_error=record):
        for (_, row), crop in zip(rows.iterrows(), crops):
            yield row, crop


def select_images(predictions: pd.DataFrame, landmarks: pd.DataFrame, faces: pd.DataFrame,
                  params: dict[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Images to explain (predicted, aligned, stratified sample) and the ones skipped, with reasons.

    Candidates are the faces of the splits that were predicted. Without a prediction, or without
    landmarks (alignment failed), a face is skipped with a reason. Counts reconcile and are logged.
    """
    params = complete_params(params)
    predicted_splits = set(predictions["split"].dropna()) if "split" in predictions else set(faces["split"])
    candidates = faces[faces["split"].isin(predicted_splits)][["image_id", "path"]]
    has_prediction = candidates["image_id"].isin(
        predictions.loc[predictions["predicted_age"].notna(), "image_id"])
    has_landmarks = candidates["image_id"].isin(landmarks["image_id"])
    # Alignment comes first in the flow: a face it failed on has no prediction either, for that reason.
    failures = pd.concat([
        pd.DataFrame({"image_id": candidates.loc[~has_landmarks, "image_id"], "reason": "no_landmarks",
                      "detail": "alignment failed (see `alignment_failures`)"}),
        pd.DataFrame({"image_id": candidates.loc[has_landmarks & ~has_prediction, "image_id"],
                      "reason": "no_prediction", "detail": "no predicted_age in `predictions` (see `inference_failures`)"}),
    ], ignore_index=True)
    usable = candidates[has_prediction & has_landmarks]
    targets = (usable.merge(predictions[["image_id", "predicted_age", *LABEL_COLUMNS]], on="image_id")
               .merge(landmarks, on="image_id"))
    targets["age_band"] = age_bands(targets["age"], _bands(params)).astype(str).to_numpy()
    max_images = params.get("max_images")
    chosen = stratified_sample(targets, None if max_images is None else int(max_images), int(params["seed"]),
                               strata=("race", "gender", "age_band")).reset_index(drop=True)
    logger.info("explain: %d candidate faces = %d usable + %d skipped (%s); explaining %d of the usable "
                "(max_images=%s), %d race x gender x band groups",
                len(candidates), len(usable), len(failures), failures["reason"].value_counts().to_dict(),
                len(chosen), max_images, chosen.groupby(["race", "gender", "age_band"]).ngroups)
    return chosen, failures[FAILURE_COLUMNS]


def explain_with_regions(targets: pd.DataFrame, selection_failures: pd.DataFrame, age_model,
                         params: dict[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """LIME of the expected age over the 14 facial regions, for every target image.

    Returns the ``regions`` rows of ``region_attributions``, the full ``explanation_failures``
    (selection failures plus images that could not be cut), and the crop frame (size and the
    mean landmark template) for the group maps.
    """
    params = complete_params(params)
    settings = _lime_settings(params)
    age_function, view = _model_parts(age_model)
    size = view[1]
    # Landmarks are small; region maps are drawn per image as its crop arrives (memory stays flat).
    points = dict(zip(targets["image_id"], _points_in_view(targets, view))) if len(targets) else {}
    seed = int(params["seed"])
    failures: list[dict] = []
    labels = targets.set_index("image_id")

    def items():
        for row, crop in _crop_stream(targets, view, params, failures):
            image_id = row["image_id"]
            yield image_id, crop, region_map(points[image_id], size, **params["regions"]), image_seed(seed, image_id)

    records = []
    disagreements = 0
    started = time.perf_counter()
    progress = tqdm(explain_images(items(), age_function, settings), total=len(targets), unit="image",
                    desc="explain (LIME over regions)", mininterval=1.0)
    for explanation in progress:
        image_id = explanation.key
        weights, empty = region_weights(explanation, N_REGIONS)
        area = np.bincount(explanation.present[explanation.segments].ravel(), minlength=N_REGIONS)
        positive = np.clip(weights, 0, None)
        share = positive / positive.sum() if positive.sum() > 0 else np.zeros(N_REGIONS)
        row = labels.loc[image_id]
        if abs(explanation.model_age - row["predicted_age"]) > float(params["prediction_tolerance"]):
            disagreements += 1
        records.append(pd.DataFrame({
            "image_id": image_id, "method": "regions", "region": REGION_NAMES, "weight": weights,
            "region_empty": empty, "intercept": explanation.intercept, "surrogate_r2": explanation.score,
            "predicted_age": row["predicted_age"], "age": row["age"], "gender": row["gender"], "race": row["race"],
            "positive_share": share, "region_pixels": area[:N_REGIONS], "model_age": explanation.model_age,
        }))
    if disagreements:
        logger.warning("explain: on %d image(s) the model's expected age here differs from `predictions` by "
                       "more than %s years: were the predictions made with another model version or crop?",
                       disagreements, params["prediction_tolerance"])
    attributions = pd.concat(records, ignore_index=True) if records else _empty_attributions()
    all_failures = pd.concat([selection_failures, pd.DataFrame(failures, columns=FAILURE_COLUMNS)], ignore_index=True)
    explained = attributions["image_id"].nunique()
    seconds = time.perf_counter() - started
    logger.info("explain: %d images explained over regions in %.1f s (%.2f images/s, %d samples each); "
                "%d could not be cut; %d skipped in all", explained, seconds, explained / max(seconds, 1e-9),
                settings.num_samples, len(failures), len(all_failures))
    frame = {"size": size, "crop": view[0],
             "template": mean_template(np.stack(list(points.values()))).tolist() if points else None}
    return attributions, all_failures, frame


def _empty_attributions() -> pd.DataFrame:
    return pd.DataFrame(columns=["image_id", "method", "region", "weight", "region_empty", "intercept",
                                 "surrogate_r2", "predicted_age", "age", "gender", "race", "positive_share",
                                 "region_pixels", "model_age"])


def explain_with_quickshift(targets: pd.DataFrame, age_model, params: dict[str, Any]) -> pd.DataFrame:
    """The article's method on a seeded sample: LIME over quickshift segments, summarised per region.

    Per landmark region: ``weight`` = share of the region's pixels that are positively weighted
    (the article's activation), ``positive_share`` = its share of all positively weighted pixels.
    """
    params = complete_params(params)
    options = params["quickshift"]
    if not options["enabled"] or targets.empty:
        return _empty_attributions()
    sample = stratified_sample(targets, options.get("sample_size"), int(params["seed"]) + 1,
                               strata=("race", "gender", "age_band")).reset_index(drop=True)
    settings = _lime_settings(params)
    age_function, view = _model_parts(age_model)
    maps = _region_maps_of(sample, view, params)
    seed = int(params["seed"])
    segmentation = options["segmentation"]
    failures: list[dict] = []

    def items():
        for row, crop in _crop_stream(sample, view, params, failures):
            image_id = row["image_id"]
            segments = quickshift_segments(crop, seed=image_seed(seed, image_id) % 1000, **segmentation)
            yield image_id, crop, segments, image_seed(seed, image_id)

    labels = sample.set_index("image_id")
    records = []
    for explanation in tqdm(explain_images(items(), age_function, settings), total=len(sample), unit="image",
                            desc="explain (LIME over quickshift)", mininterval=1.0):
        image_id = explanation.key
        activation, share, empty = positive_pixel_shares(explanation.weights, explanation.segments, maps[image_id],
                                                         N_REGIONS, options.get("positive_segments"))
        row = labels.loc[image_id]
        records.append(pd.DataFrame({
            "image_id": image_id, "method": "quickshift", "region": REGION_NAMES, "weight": activation,
            "region_empty": empty, "intercept": explanation.intercept, "surrogate_r2": explanation.score,
            "predicted_age": row["predicted_age"], "age": row["age"], "gender": row["gender"], "race": row["race"],
            "positive_share": share, "region_pixels": np.bincount(maps[image_id].ravel(), minlength=N_REGIONS),
            "model_age": explanation.model_age,
        }))
    logger.info("explain: %d images explained over quickshift segments (%d could not be cut)",
                len(records), len(failures))
    return pd.concat(records, ignore_index=True) if records else _empty_attributions()


def collect_attributions(region_rows: pd.DataFrame, quickshift_rows: pd.DataFrame) -> pd.DataFrame:
    """``region_attributions``: both methods' rows, one table (long)."""
    frames = [f for f in (region_rows, quickshift_rows) if len(f)]
    table = pd.concat(frames, ignore_index=True) if frames else _empty_attributions()
    table["region_empty"] = table["region_empty"].astype(bool)
    return table


def measure_quality(targets: pd.DataFrame, region_attributions: pd.DataFrame, age_model,
                    params: dict[str, Any]) -> pd.DataFrame:
    """``explanation_quality`` on a seeded sample: deletion-curve AUCs and seed stability, per image."""
    params = complete_params(params)
    options = params["quality"]
    rows = region_attributions[region_attributions["method"] == "regions"]
    explained = targets[targets["image_id"].isin(rows["image_id"])]
    sample = stratified_sample(explained, options.get("sample_size"), int(params["seed"]) + 2,
                               strata=("race", "gender", "age_band")).reset_index(drop=True)
    if sample.empty:
        return pd.DataFrame(columns=["image_id", "method", "n_regions"])
    settings = _lime_settings(params)
    age_function, view = _model_parts(age_model)
    maps = _region_maps_of(sample, view, params)
    seed = int(params["seed"])
    weights_of = {image_id: group.set_index("region").loc[list(REGION_NAMES), "weight"].to_numpy()
                  for image_id, group in rows[rows["image_id"].isin(sample["image_id"])].groupby("image_id")}
    crops: dict[str, np.ndarray] = {}
    failures: list[dict] = []
    for row, crop in _crop_stream(sample, view, params, failures):
        crops[row["image_id"]] = crop

    def deletion_jobs():
        for image_id, crop in crops.items():
            present, compact = compact_segments(maps[image_id])
            masks, _ = deletion_masks(weights_of[image_id][present], int(options["random_orders"]),
                                      image_seed(seed, image_id))
            yield MaskedJob(image_id, crop, hide_image(crop, compact, settings.hide, settings.blur_sigma), compact,
                            masks.reshape(-1, len(present)), context={"orders": masks.shape[0]})

    summaries = {}
    for job in predict_masked(deletion_jobs(), age_function, settings.batch_size):
        curves = job.ages.reshape(job.context["orders"], -1)
        summaries[job.key] = deletion_summary(curves)

    runs = {image_id: [weights_of[image_id]] for image_id in crops}
    for k in range(1, int(options["stability_seeds"])):
        items = ((image_id, crop, maps[image_id], image_seed(f"{seed}+{k}", image_id)) for image_id, crop in crops.items())
        for explanation in tqdm(explain_images(items, age_function, settings), total=len(crops), unit="image",
                                desc=f"explain quality (seed {k + 1})", mininterval=1.0):
            runs[explanation.key].append(region_weights(explanation, N_REGIONS)[0])
    labels = sample.set_index("image_id")
    records = []
    for image_id in crops:
        present = np.unique(maps[image_id])
        row = labels.loc[image_id]
        records.append({
            "image_id": image_id, "method": "regions", "n_regions": len(present), **summaries[image_id],
            "stability_spearman": seed_stability(np.stack(runs[image_id])[:, present]),
            "stability_seeds": len(runs[image_id]), "num_samples": settings.num_samples,
            "predicted_age": row["predicted_age"], "age": row["age"], "gender": row["gender"], "race": row["race"],
            "age_band": row["age_band"],
        })
    quality = pd.DataFrame(records)
    logger.info("explain: quality on %d images: median AUC gap %.2f years, median stability rho %.2f",
                len(quality), quality["auc_gap"].median(), quality["stability_spearman"].median())
    return quality


def attribution_group_maps(region_attributions: pd.DataFrame, targets: pd.DataFrame, crop_frame: dict,
                           params: dict[str, Any]):
    """Mean signed region weights per race x gender x age band: a table and the painted figure."""
    params = complete_params(params)
    rows = region_attributions.merge(targets[["image_id", "age_band"]], on="image_id", how="left")
    table = group_mean_weights(rows, method="regions")
    band_order = [f"{lo}+" if hi >= 116 else f"{lo}-{hi}" for lo, hi in _bands(params)]
    if crop_frame.get("template") is None:
        template_map = np.full((crop_frame["size"],) * 2, REGION_NAMES.index("background"))
    else:
        template_map = region_map(np.asarray(crop_frame["template"]), crop_frame["size"], **params["regions"])
    figure = group_maps_figure(table, template_map, [b for b in band_order if b in set(table["age_band"])] or band_order)
    return table, figure


def draw_regions_figure(targets: pd.DataFrame, crop_frame: dict, params: dict[str, Any]):
    """The facial regions drawn on the first target face, in the model's crop (a glance at what each region covers)."""
    params = complete_params(params)
    import matplotlib.pyplot as plt

    size = crop_frame["size"]
    if targets.empty:
        fig = plt.figure(figsize=(4, 2))
        fig.text(0.5, 0.5, "no face to draw regions on", ha="center")
        return fig
    first = targets.iloc[[0]]
    view = (crop_frame.get("crop") or STORED_CROP, size)
    _, (crops,) = next(iter_view_batches(first, [view], 1, padding=params["crop_padding"]))
    crop = crops[0]
    points = _points_in_view(first, view)[0]
    return region_figure(crop, region_map(points, size, **params["regions"]), points,
                         title=f"facial regions ({first['image_id'].iloc[0]})")
