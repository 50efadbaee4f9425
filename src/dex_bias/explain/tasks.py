"""Explaining a table of faces chunk by chunk, fanned out on Dask and resumable.

Three stages, each a list of chunks of ``chunk_size`` faces (:mod:`dex_bias.fanout`):

- ``regions``: LIME of the expected age over the 14 facial regions of every face
  (:func:`dex_bias.explain.lime_regions.explain_images`), one row per face and region;
- ``quickshift``: the article's method on a sample (LIME over quickshift segments,
  summarised per region as the share of positively weighted pixels);
- ``quality``: deletion curves and seed stability on a sample (:mod:`dex_bias.explain.quality`).

:func:`explain` runs one stage.

A chunk's task gets its rows of the targets table (ids, paths, labels, the prediction and the
landmarks) and a :class:`~dex_bias.models.shipping.ModelRef`; it cuts the crops itself (crops are
never sent) and returns small tables. Each image's seed derives from the run seed and its id, so a
chunk's result does not depend on where or with what it runs; model batches are filled within a
chunk, so chunking (not the engine) fixes how images share a batch.

With a :class:`~dex_bias.fanout.ChunkStore`, each chunk is written as it finishes under the
fingerprint of its rows, the model and the stage's settings; a rerun computes only what is missing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, replace
from typing import Any

import numpy as np
import pandas as pd

from dex_bias.explain.attributions import empty_attributions
from dex_bias.explain.frame import points_in_view
from dex_bias.explain.lime_regions import (
    LimeSettings,
    MaskedJob,
    compact_segments,
    explain_images,
    hide_image,
    image_seed,
    positive_pixel_shares,
    predict_masked,
    quickshift_segments,
    region_weights,
)
from dex_bias.explain.quality import deletion_masks, deletion_summary, seed_stability
from dex_bias.explain.regions import N_REGIONS, REGION_NAMES, RegionShape, region_map
from dex_bias.fanout import ChunkStore, FanOut, Task, fingerprint, rows_fingerprint, run_tasks
from dex_bias.fanout.engine import spread
from dex_bias.fanout.store import concat_tables
from dex_bias.schema import settings_dataclass
from dex_bias.utkface import AgeBands

FAILURE_COLUMNS = ["image_id", "reason", "detail"]


@settings_dataclass
class SegmentationSettings:
    """``explain.quickshift.segmentation``: lime_image's quickshift (:func:`quickshift_segments`)."""

    kernel_size: float
    max_dist: float
    ratio: float


@settings_dataclass
class ArticleLimeSettings:
    """``explain.quickshift.lime``: what the article's LIME set-up changes of ``explain.lime``."""

    target: str
    num_samples: int
    hide: str
    feature_selection: str


@settings_dataclass
class QuickshiftSettings:
    """``explain.quickshift``: the article's method on a stratified ``sample_size`` (``None``: every
    explained face); ``positive_segments`` kept per face (``None``: every positively weighted one)."""

    enabled: bool
    sample_size: int | None
    positive_segments: int | None
    segmentation: SegmentationSettings
    lime: ArticleLimeSettings


@settings_dataclass
class QualitySettings:
    """``explain.quality``: deletion curves (``random_orders`` random orders for the baseline) and
    seed stability (``stability_seeds`` LIME runs a face) on a stratified ``sample_size``."""

    sample_size: int | None
    random_orders: int
    stability_seeds: int


@settings_dataclass
class ExplainSettings:
    """``params:explain`` (conf/base/parameters_explain.yml): what every explanation of a run shares.

    ``seed``: the run's (each image's derives from it and its id); ``max_images``: a stratified
    sample of that many faces per ``age_bands`` x race x gender (``None``: every predicted face);
    ``chunk_size`` faces a Dask task; ``crop_batch_size`` crops cut at a time (not a result);
    ``prediction_tolerance`` years of disagreement with ``predictions`` before a warning.
    """

    seed: int
    max_images: int | None
    age_bands: AgeBands
    crop_batch_size: int
    crop_padding: str
    prediction_tolerance: float
    chunk_size: int
    lime: LimeSettings
    regions: RegionShape
    quickshift: QuickshiftSettings
    quality: QualitySettings

    def __post_init__(self):
        if self.lime.target != "expected_age":
            raise ValueError(
                f"explain.lime.target must be 'expected_age' (the region method explains the expected "
                f"age), not {self.lime.target!r}; the article's target is explain.quickshift.lime.target"
            )

    @property
    def article_lime(self) -> LimeSettings:
        """The LIME settings of the quickshift rows: ``lime`` as ``quickshift.lime`` changes it."""
        return replace(self.lime, **asdict(self.quickshift.lime))

    def recipe(self, stage: str) -> dict[str, Any]:
        """The settings that change ``stage``'s results (what its chunks are keyed by)."""
        common = {
            "seed": self.seed,
            "lime": self.lime,
            "regions": self.regions.keywords(),
            "crop_padding": self.crop_padding,
        }
        if stage == "quickshift":
            return {
                **common,
                "lime": self.article_lime,
                "segmentation": asdict(self.quickshift.segmentation),
                "positive_segments": self.quickshift.positive_segments,
            }
        if stage == "quality":
            return {
                **common,
                "random_orders": self.quality.random_orders,
                "stability_seeds": self.quality.stability_seeds,
            }
        return common


def _failures_frame(failures: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(failures, columns=FAILURE_COLUMNS).astype(str)


def region_maps_of(targets: pd.DataFrame, view, regions: RegionShape) -> dict[str, np.ndarray]:
    size = view[1]
    points = points_in_view(targets, view)
    return {image_id: region_map(p, size, **regions.keywords()) for image_id, p in zip(targets["image_id"], points)}


def crop_stream(
    targets: pd.DataFrame, view, settings: ExplainSettings, failures: list[dict]
) -> Iterator[tuple[pd.Series, np.ndarray]]:
    """(row, crop) for each target, cut as the model expects; an undecodable image becomes a failure row instead."""
    from dex_bias.faces.views import iter_view_batches

    def record(row: pd.Series, error: Exception) -> None:
        failures.append(
            {"image_id": row["image_id"], "reason": getattr(error, "reason", "crop_failed"), "detail": str(error)}
        )

    for rows, (crops,) in iter_view_batches(
        targets, [view], settings.crop_batch_size, padding=settings.crop_padding, on_error=record
    ):
        for (_, row), crop in zip(rows.iterrows(), crops):
            yield row, crop


def _label_columns(row: pd.Series) -> dict[str, Any]:
    return {"predicted_age": row["predicted_age"], "age": row["age"], "gender": row["gender"], "race": row["race"]}


# --- the tasks (run on a worker, or in this process) ---------------------------------------------


def regions_chunk(rows: pd.DataFrame, model, settings: ExplainSettings) -> dict[str, pd.DataFrame]:
    """LIME over facial regions for ``rows``: ``{"attributions": 14 rows per face, "failures"}``."""
    estimator = model.estimator()
    age_function, view = estimator.age_function(), estimator.spec.input.view
    size = view[1]
    points = dict(zip(rows["image_id"], points_in_view(rows, view))) if len(rows) else {}
    labels = rows.set_index("image_id")
    failures: list[dict] = []

    def items():
        for row, crop in crop_stream(rows, view, settings, failures):
            image_id = row["image_id"]
            yield (
                image_id,
                crop,
                region_map(points[image_id], size, **settings.regions.keywords()),
                image_seed(settings.seed, image_id),
            )

    records = []
    for explanation in explain_images(items(), age_function, settings.lime):
        image_id = explanation.key
        weights, empty = region_weights(explanation, N_REGIONS)
        area = np.bincount(explanation.present[explanation.segments].ravel(), minlength=N_REGIONS)
        positive = np.clip(weights, 0, None)
        share = positive / positive.sum() if positive.sum() > 0 else np.zeros(N_REGIONS)
        records.append(
            pd.DataFrame(
                {
                    "image_id": image_id,
                    "method": "regions",
                    "region": REGION_NAMES,
                    "weight": weights,
                    "region_empty": empty,
                    "intercept": explanation.intercept,
                    "surrogate_r2": explanation.score,
                    **_label_columns(labels.loc[image_id]),
                    "positive_share": share,
                    "region_pixels": area[:N_REGIONS],
                    "model_age": explanation.model_age,
                }
            )
        )
    attributions = pd.concat(records, ignore_index=True) if records else empty_attributions()
    return {"attributions": attributions, "failures": _failures_frame(failures)}


def quickshift_chunk(rows: pd.DataFrame, model, settings: ExplainSettings) -> dict[str, pd.DataFrame]:
    """The article's LIME over quickshift segments for ``rows``, summarised per landmark region.

    ``settings.article_lime`` decides what is explained: by default, as the article did, the
    probability of the model's top-ranked age class, 100 samples, hidden segments black, forward
    selection (its input is the model's own 0-255 preprocessing, not the article's 0-1 rescaling).
    """
    estimator = model.estimator()
    lime = settings.article_lime
    view = estimator.spec.input.view
    age_function = (
        estimator.probability_function() if lime.target == "top_class_probability" else estimator.age_function()
    )
    maps = region_maps_of(rows, view, settings.regions) if len(rows) else {}
    labels = rows.set_index("image_id")
    failures: list[dict] = []

    def items():
        for row, crop in crop_stream(rows, view, settings, failures):
            image_id = row["image_id"]
            segments = quickshift_segments(
                crop, seed=image_seed(settings.seed, image_id) % 1000, **asdict(settings.quickshift.segmentation)
            )
            yield image_id, crop, segments, image_seed(settings.seed, image_id)

    records = []
    for explanation in explain_images(items(), age_function, lime):
        image_id = explanation.key
        activation, share, empty = positive_pixel_shares(
            explanation.weights, explanation.segments, maps[image_id], N_REGIONS, settings.quickshift.positive_segments
        )
        records.append(
            pd.DataFrame(
                {
                    "image_id": image_id,
                    "method": "quickshift",
                    "region": REGION_NAMES,
                    "weight": activation,
                    "region_empty": empty,
                    "intercept": explanation.intercept,
                    "surrogate_r2": explanation.score,
                    **_label_columns(labels.loc[image_id]),
                    "positive_share": share,
                    "region_pixels": np.bincount(maps[image_id].ravel(), minlength=N_REGIONS),
                    # The explained value on the unperturbed crop: years, or (article) the top class's probability.
                    "model_age": explanation.model_age if lime.target == "expected_age" else np.nan,
                }
            )
        )
    attributions = pd.concat(records, ignore_index=True) if records else empty_attributions()
    return {"attributions": attributions, "failures": _failures_frame(failures)}


def quality_chunk(
    rows: pd.DataFrame, weights: Mapping[str, Sequence[float]], model, settings: ExplainSettings
) -> dict[str, pd.DataFrame]:
    """Deletion-curve AUCs and seed stability for ``rows`` given their region ``weights`` (14 per face)."""
    estimator = model.estimator()
    age_function, view = estimator.age_function(), estimator.spec.input.view
    maps = region_maps_of(rows, view, settings.regions) if len(rows) else {}
    weights_of = {image_id: np.asarray(values, dtype=np.float64) for image_id, values in weights.items()}
    failures: list[dict] = []
    crops = {row["image_id"]: crop for row, crop in crop_stream(rows, view, settings, failures)}

    def deletion_jobs():
        for image_id, crop in crops.items():
            present, compact = compact_segments(maps[image_id])
            masks, _ = deletion_masks(
                weights_of[image_id][present], settings.quality.random_orders, image_seed(settings.seed, image_id)
            )
            yield MaskedJob(
                image_id,
                crop,
                hide_image(crop, compact, settings.lime.hide, settings.lime.blur_sigma),
                compact,
                masks.reshape(-1, len(present)),
                context={"orders": masks.shape[0]},
            )

    summaries = {}
    for job in predict_masked(deletion_jobs(), age_function, settings.lime.batch_size):
        summaries[job.key] = deletion_summary(job.ages.reshape(job.context["orders"], -1))
    runs = {image_id: [weights_of[image_id]] for image_id in crops}
    for k in range(1, settings.quality.stability_seeds):
        items = (
            (image_id, crop, maps[image_id], image_seed(f"{settings.seed}+{k}", image_id))
            for image_id, crop in crops.items()
        )
        for explanation in explain_images(items, age_function, settings.lime):
            runs[explanation.key].append(region_weights(explanation, N_REGIONS)[0])
    labels = rows.set_index("image_id")
    records = []
    for image_id in crops:
        present = np.unique(maps[image_id])
        row = labels.loc[image_id]
        records.append(
            {
                "image_id": image_id,
                "method": "regions",
                "n_regions": len(present),
                **summaries[image_id],
                "stability_spearman": seed_stability(np.stack(runs[image_id])[:, present]),
                "stability_seeds": len(runs[image_id]),
                "num_samples": settings.lime.num_samples,
                **_label_columns(row),
                "age_band": row["age_band"],
            }
        )
    return {"quality": pd.DataFrame(records), "failures": _failures_frame(failures)}


# --- the stages ----------------------------------------------------------------------------------


def _run_stage(
    stage: str,
    function,
    targets: pd.DataFrame,
    model,
    settings: ExplainSettings,
    fan_out: FanOut,
    *,
    chunk_size: int,
    store: ChunkStore | None,
    root=None,
    extra: Mapping[str, Any] | None = None,
) -> list[dict[str, pd.DataFrame]]:
    from dex_bias.models.shipping import prepare_model

    if int(chunk_size) < 1:
        raise ValueError(f"explain.chunk_size must be at least 1, not {chunk_size}")
    ref, preload = prepare_model(model, root=root)
    targets = targets.reset_index(drop=True)
    tasks = []
    for start in range(0, len(targets), int(chunk_size)):
        rows = targets.iloc[start : start + int(chunk_size)].reset_index(drop=True)
        ids = tuple(rows["image_id"].astype(str))
        if extra is None:
            key, args = rows_fingerprint(rows), (rows, ref, settings)
        else:
            part = {image_id: [float(v) for v in extra[image_id]] for image_id in ids}
            key, args = fingerprint(rows_fingerprint(rows), part), (rows, part, ref, settings)
        tasks.append(Task(key, ids, function, args))
    where = (
        None
        if store is None
        else store.stage(stage, {"model": ref.fingerprint, "model_name": ref.name, **settings.recipe(stage)})
    )
    paths = targets["path"].astype(str).tolist() if "path" in targets else []
    return run_tasks(
        f"explain {stage} ({ref.name})", tasks, fan_out, store=where, preload=[preload], readable=spread(paths)
    )


#: Each stage's chunk function and the table its chunks return (``attributions`` or ``quality``).
STAGES: dict[str, tuple[Callable[..., dict[str, pd.DataFrame]], str]] = {
    "regions": (regions_chunk, "attributions"),
    "quickshift": (quickshift_chunk, "attributions"),
    "quality": (quality_chunk, "quality"),
}


def explain(
    stage: str,
    targets: pd.DataFrame,
    model,
    settings: ExplainSettings,
    fan_out: FanOut,
    *,
    chunk_size: int = 8,
    store: ChunkStore | None = None,
    root=None,
    weights: Mapping[str, Sequence[float]] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One stage (:data:`STAGES`) over every face of ``targets``: ``(rows, failures)``, in target order.

    ``targets``: ``image_id``, ``path``, ``predicted_age``, ``age``, ``gender``, ``race`` and the
    landmarks columns. ``model``: a Keras model or a declared model's estimator. ``regions`` and
    ``quickshift`` return attribution rows (typed even when empty); ``quality`` returns quality rows
    and needs ``weights``: each face's 14 region weights (in
    :data:`~dex_bias.explain.regions.REGION_NAMES` order).
    """
    if stage not in STAGES:
        raise ValueError(f"explain stage must be one of {sorted(STAGES)}, not {stage!r}")
    if stage == "quality" and weights is None:
        raise ValueError("the quality stage needs each face's region weights (weights=...)")
    function, table = STAGES[stage]
    results = _run_stage(
        stage,
        function,
        targets,
        model,
        settings,
        fan_out,
        chunk_size=chunk_size,
        store=store,
        root=root,
        extra=weights if stage == "quality" else None,
    )
    empty = empty_attributions() if table == "attributions" else None
    return concat_tables(results, table, empty=empty), concat_tables(results, "failures", empty=_failures_frame([]))
