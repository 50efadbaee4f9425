"""Nodes of the ``explain`` pipeline: thin wrappers over ``dex_bias.explain``.

The per-image work (LIME over regions, quickshift, quality) runs in :mod:`dex_bias.explain.tasks`,
fanned out on Dask in chunks of ``explain.chunk_size`` faces as the ``dask`` parameters say, each
chunk kept in ``explain_chunks`` as soon as it is done (a stopped run resumes there). Crops are cut
on demand at the model's declared input size, in uint8 RGB: LIME perturbs exactly what the model
would see and explains the expected age in years.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from dex_bias.explain import tasks
from dex_bias.explain.groups import group_maps_figure, group_mean_weights, stratified_sample
from dex_bias.explain.regions import REGION_NAMES, mean_template, region_figure, region_map
from dex_bias.explain.tasks import ExplainSettings
from dex_bias.fanout import ChunkStore, FanOut
from dex_bias.faces.views import STORED_CROP, View, iter_view_batches
from dex_bias.utkface import age_bands

logger = logging.getLogger(__name__)

LABEL_COLUMNS = ["age", "gender", "race"]
FAILURE_COLUMNS = ["image_id", "reason", "detail"]


def _model_view(age_model) -> View:
    """The model's age input's view (crop style, size)."""
    from dex_bias.models.runtime import as_estimator

    return as_estimator(age_model).spec.input.view


def _points_in_view(targets: pd.DataFrame, view: View) -> np.ndarray:
    return tasks.points_in_view(targets, view)


def select_images(predictions: pd.DataFrame, landmarks: pd.DataFrame, faces: pd.DataFrame,
                  params: ExplainSettings) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Images to explain (predicted, aligned, stratified sample) and the ones skipped, with reasons.

    Candidates are the faces of the splits that were predicted. Without a prediction, or without
    landmarks (alignment failed), a face is skipped with a reason. Counts reconcile and are logged.
    """
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
    targets["age_band"] = age_bands(targets["age"], params.age_bands).astype(str).to_numpy()
    max_images = params.max_images
    chosen = stratified_sample(targets, max_images, params.seed,
                               strata=("race", "gender", "age_band")).reset_index(drop=True)
    logger.info("explain: %d candidate faces = %d usable + %d skipped (%s); explaining %d of the usable "
                "(max_images=%s), %d race x gender x band groups",
                len(candidates), len(usable), len(failures), failures["reason"].value_counts().to_dict(),
                len(chosen), max_images, chosen.groupby(["race", "gender", "age_band"]).ngroups)
    return chosen, failures[FAILURE_COLUMNS]


def explain_with_regions(targets: pd.DataFrame, selection_failures: pd.DataFrame, age_model,
                         explain_chunks: ChunkStore, params: ExplainSettings,
                         dask: FanOut) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """LIME of the expected age over the 14 facial regions, for every target image.

    Returns the ``regions`` rows of ``region_attributions``, the full ``explanation_failures``
    (selection failures plus images that could not be cut), and the crop frame (size and the
    mean landmark template) for the group maps. Fanned out and resumable (module docstring).
    """
    view = _model_view(age_model)
    attributions, failures = tasks.explain_regions(targets, age_model, params, dask, chunk_size=params.chunk_size,
                                                   store=explain_chunks)
    per_image = attributions.drop_duplicates("image_id")
    disagreements = int((per_image["model_age"] - per_image["predicted_age"]).abs()
                        .gt(params.prediction_tolerance).sum()) if len(per_image) else 0
    if disagreements:
        logger.warning("explain: on %d image(s) the model's expected age here differs from `predictions` by "
                       "more than %s years: were the predictions made with another model version or crop?",
                       disagreements, params.prediction_tolerance)
    all_failures = pd.concat([selection_failures, failures], ignore_index=True)[FAILURE_COLUMNS]
    logger.info("explain: %d images explained over regions (%d samples each); %d could not be cut; %d skipped "
                "in all", attributions["image_id"].nunique(), params.lime.num_samples, len(failures),
                len(all_failures))
    points = _points_in_view(targets, view) if len(targets) else None
    frame = {"size": view[1], "crop": view[0],
             "template": mean_template(points).tolist() if points is not None else None}
    return attributions, all_failures, frame


def _empty_attributions() -> pd.DataFrame:
    return tasks.empty_attributions()


def explain_with_quickshift(targets: pd.DataFrame, age_model, explain_chunks: ChunkStore, params: ExplainSettings,
                            dask: FanOut) -> pd.DataFrame:
    """The article's method on a seeded sample: LIME over quickshift segments, summarised per region.

    Per landmark region: ``weight`` = share of the region's pixels that are positively weighted
    (the article's activation), ``positive_share`` = its share of all positively weighted pixels.
    """
    options = params.quickshift
    if not options.enabled or targets.empty:
        return _empty_attributions()
    sample = stratified_sample(targets, options.sample_size, params.seed + 1,
                               strata=("race", "gender", "age_band")).reset_index(drop=True)
    rows, failures = tasks.explain_quickshift(sample, age_model, params, dask, chunk_size=params.chunk_size,
                                              store=explain_chunks)
    logger.info("explain: %d images explained over quickshift segments (%d could not be cut)",
                rows["image_id"].nunique(), len(failures))
    return rows


def collect_attributions(region_rows: pd.DataFrame, quickshift_rows: pd.DataFrame) -> pd.DataFrame:
    """``region_attributions``: both methods' rows, one table (long)."""
    frames = [f for f in (region_rows, quickshift_rows) if len(f)]
    table = pd.concat(frames, ignore_index=True) if frames else _empty_attributions()
    table["region_empty"] = table["region_empty"].astype(bool)
    return table


def measure_quality(targets: pd.DataFrame, region_attributions: pd.DataFrame, age_model, explain_chunks: ChunkStore,
                    params: ExplainSettings, dask: FanOut) -> pd.DataFrame:
    """``explanation_quality`` on a seeded sample: deletion-curve AUCs and seed stability, per image."""
    options = params.quality
    rows = region_attributions[region_attributions["method"] == "regions"]
    explained = targets[targets["image_id"].isin(rows["image_id"])]
    sample = stratified_sample(explained, options.sample_size, params.seed + 2,
                               strata=("race", "gender", "age_band")).reset_index(drop=True)
    if sample.empty:
        return pd.DataFrame(columns=["image_id", "method", "n_regions"])
    weights_of = {image_id: group.set_index("region").loc[list(REGION_NAMES), "weight"].to_numpy()
                  for image_id, group in rows[rows["image_id"].isin(sample["image_id"])].groupby("image_id")}
    quality, _ = tasks.measure_quality(sample, weights_of, age_model, params, dask, chunk_size=params.chunk_size,
                                       store=explain_chunks)
    if quality.empty:
        return pd.DataFrame(columns=["image_id", "method", "n_regions"])
    logger.info("explain: quality on %d images: median AUC gap %.2f years, median stability rho %.2f",
                len(quality), quality["auc_gap"].median(), quality["stability_spearman"].median())
    return quality


def attribution_group_maps(region_attributions: pd.DataFrame, targets: pd.DataFrame, crop_frame: dict,
                           params: ExplainSettings):
    """Mean signed region weights per race x gender x age band: a table and the painted figure."""
    rows = region_attributions.merge(targets[["image_id", "age_band"]], on="image_id", how="left")
    table = group_mean_weights(rows, method="regions")
    band_order = [f"{lo}+" if hi >= 116 else f"{lo}-{hi}" for lo, hi in params.age_bands]
    if crop_frame.get("template") is None:
        template_map = np.full((crop_frame["size"],) * 2, REGION_NAMES.index("background"))
    else:
        template_map = region_map(np.asarray(crop_frame["template"]), crop_frame["size"], **params.regions.keywords())
    figure = group_maps_figure(table, template_map, [b for b in band_order if b in set(table["age_band"])] or band_order)
    return table, figure


def draw_regions_figure(targets: pd.DataFrame, crop_frame: dict, params: ExplainSettings):
    """The facial regions drawn on the first target face, in the model's crop (a glance at what each region covers)."""
    import matplotlib.pyplot as plt

    size = crop_frame["size"]
    if targets.empty:
        fig = plt.figure(figsize=(4, 2))
        fig.text(0.5, 0.5, "no face to draw regions on", ha="center")
        return fig
    first = targets.iloc[[0]]
    view = (crop_frame.get("crop") or STORED_CROP, size)
    _, (crops,) = next(iter_view_batches(first, [view], 1, padding=params.crop_padding))
    crop = crops[0]
    points = _points_in_view(first, view)[0]
    return region_figure(crop, region_map(points, size, **params.regions.keywords()), points,
                         title=f"facial regions ({first['image_id'].iloc[0]})")
