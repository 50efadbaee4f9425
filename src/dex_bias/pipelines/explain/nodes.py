"""Nodes of the ``explain`` pipeline: thin wrappers over ``dex_bias.explain``.

The per-image work (LIME over regions, quickshift, quality) runs in :mod:`dex_bias.explain.tasks`,
fanned out on Dask in chunks of ``explain.chunk_size`` faces as the ``dask`` parameters say, each
chunk kept in ``explain_chunks`` as soon as it is done (a stopped run resumes there). Crops are cut
on demand at the model's declared input size, in uint8 RGB: LIME perturbs exactly what the model
would see and explains the expected age in years.
"""

from __future__ import annotations

import logging

import pandas as pd

from dex_bias.explain import frame, tasks
from dex_bias.explain.attributions import attribution_table, empty_attributions, prediction_disagreements
from dex_bias.explain.groups import (
    GROUP_KEYS,
    explainable_faces,
    group_attribution_maps,
    quality_sample,
    stratified_sample,
)
from dex_bias.explain.tasks import FAILURE_COLUMNS, ExplainSettings
from dex_bias.fanout import ChunkStore, FanOut

logger = logging.getLogger(__name__)

#: The key columns of ``explanation_quality`` when no image could be measured.
NO_QUALITY_COLUMNS = ["image_id", "method", "n_regions"]


def select_images(
    predictions: pd.DataFrame, landmarks: pd.DataFrame, faces: pd.DataFrame, params: ExplainSettings
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Images to explain (predicted, aligned, stratified sample) and the ones skipped, with reasons.

    Candidates are the faces of the splits that were predicted. Without a prediction, or without
    landmarks (alignment failed), a face is skipped with a reason. Counts reconcile and are logged.
    """
    usable, failures = explainable_faces(predictions, landmarks, faces, params.age_bands)
    chosen = stratified_sample(usable, params.max_images, params.seed).reset_index(drop=True)
    logger.info(
        "explain: %d candidate faces = %d usable + %d skipped (%s); explaining %d of the usable "
        "(max_images=%s), %d race x gender x band groups",
        len(usable) + len(failures),
        len(usable),
        len(failures),
        failures["reason"].value_counts().to_dict(),
        len(chosen),
        params.max_images,
        chosen.groupby(list(GROUP_KEYS)).ngroups,
    )
    return chosen, failures[FAILURE_COLUMNS]


def explain_with_regions(
    targets: pd.DataFrame,
    selection_failures: pd.DataFrame,
    age_model,
    explain_chunks: ChunkStore,
    params: ExplainSettings,
    dask: FanOut,
) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """LIME of the expected age over the 14 facial regions, for every target image.

    Returns the ``regions`` rows of ``region_attributions``, the full ``explanation_failures``
    (selection failures plus images that could not be cut), and the crop frame (size and the
    mean landmark template) for the group maps. Fanned out and resumable (module docstring).
    """
    view = frame.model_view(age_model)
    attributions, failures = tasks.explain(
        "regions", targets, age_model, params, dask, chunk_size=params.chunk_size, store=explain_chunks
    )
    disagreements = prediction_disagreements(attributions, params.prediction_tolerance)
    if disagreements:
        logger.warning(
            "explain: on %d image(s) the model's expected age here differs from `predictions` by "
            "more than %s years: were the predictions made with another model version or crop?",
            disagreements,
            params.prediction_tolerance,
        )
    all_failures = pd.concat([selection_failures, failures], ignore_index=True)[FAILURE_COLUMNS]
    logger.info(
        "explain: %d images explained over regions (%d samples each); %d could not be cut; %d skipped in all",
        attributions["image_id"].nunique(),
        params.lime.num_samples,
        len(failures),
        len(all_failures),
    )
    return attributions, all_failures, frame.crop_frame(targets, view)


def explain_with_quickshift(
    targets: pd.DataFrame, age_model, explain_chunks: ChunkStore, params: ExplainSettings, dask: FanOut
) -> pd.DataFrame:
    """The article's method on a seeded sample: LIME over quickshift segments, summarised per region.

    Per landmark region: ``weight`` = share of the region's pixels that are positively weighted
    (the article's activation), ``positive_share`` = its share of all positively weighted pixels.
    """
    options = params.quickshift
    if not options.enabled or targets.empty:
        return empty_attributions()
    sample = stratified_sample(targets, options.sample_size, params.seed + 1).reset_index(drop=True)
    rows, failures = tasks.explain(
        "quickshift", sample, age_model, params, dask, chunk_size=params.chunk_size, store=explain_chunks
    )
    logger.info(
        "explain: %d images explained over quickshift segments (%d could not be cut)",
        rows["image_id"].nunique(),
        len(failures),
    )
    return rows


def collect_attributions(region_rows: pd.DataFrame, quickshift_rows: pd.DataFrame) -> pd.DataFrame:
    """``region_attributions``: both methods' rows, one table (long)."""
    return attribution_table(region_rows, quickshift_rows)


def measure_explanation_quality(
    targets: pd.DataFrame,
    region_attributions: pd.DataFrame,
    age_model,
    explain_chunks: ChunkStore,
    params: ExplainSettings,
    dask: FanOut,
) -> pd.DataFrame:
    """``explanation_quality`` on a seeded sample: deletion-curve AUCs and seed stability, per image."""
    sample, weights = quality_sample(targets, region_attributions, params.quality.sample_size, params.seed + 2)
    if sample.empty:
        return pd.DataFrame(columns=NO_QUALITY_COLUMNS)
    quality, _ = tasks.explain(
        "quality", sample, age_model, params, dask, chunk_size=params.chunk_size, store=explain_chunks, weights=weights
    )
    if quality.empty:
        return pd.DataFrame(columns=NO_QUALITY_COLUMNS)
    logger.info(
        "explain: quality on %d images: median AUC gap %.2f years, median stability rho %.2f",
        len(quality),
        quality["auc_gap"].median(),
        quality["stability_spearman"].median(),
    )
    return quality


def attribution_group_maps(
    region_attributions: pd.DataFrame, targets: pd.DataFrame, crop_frame: dict, params: ExplainSettings
):
    """Mean signed region weights per race x gender x age band: a table and the painted figure."""
    return group_attribution_maps(
        region_attributions, targets, frame.template_region_map(crop_frame, params.regions), params.age_bands
    )


def draw_regions_figure(targets: pd.DataFrame, crop_frame: dict, params: ExplainSettings):
    """The facial regions drawn on the first target face, in the model's crop (a glance at what each region covers)."""
    return frame.first_face_regions_figure(targets, crop_frame, params.regions, params.crop_padding)
