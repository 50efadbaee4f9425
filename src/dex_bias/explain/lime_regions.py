"""LIME over image segments, explaining a model's scalar expected age, batched across images.

Method: LIME (Ribeiro, Singh & Guestrin, KDD 2016), as ``lime.lime_image`` implements it, with
three differences that matter for an age audit and none that changes the numbers:

* the explained quantity is the model's expected age in years (DEX: the softmax-weighted mean
  of ages 0-100), a scalar, not the probability of one age bin;
* the perturbed images are the crop in uint8 RGB, handed to an ``age_function`` that applies the
  model's own preprocessing (``dex_bias.models.make_age_function``), so LIME sees what the model
  sees;
* perturbed images are built with numpy for many samples at once, and each model call is
  filled with perturbations from as many images as it takes (``batch_size`` is the model
  batch, not a per-image batch).

Sampling follows ``lime_image.LimeImageExplainer.data_labels`` exactly: features are the
segments present in the image; ``RandomState(seed).randint(0, 2, num_samples * k)`` draws the
on/off masks, the first sample is all on; an "off" segment shows the hide image. The surrogate
is ``lime.lime_base.LimeBase`` with lime_image's kernel ``sqrt(exp(-d^2 / width^2))`` on cosine
distances to the all-on mask. With the same seed, segments and hide colour the weights equal
``lime_image``'s (tests/explain/test_lime_regions.py checks it to 1e-6).
"""

from __future__ import annotations

import hashlib
import logging
import queue
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import partial

import numpy as np
from scipy import ndimage

from dex_bias.schema import settings_dataclass

logger = logging.getLogger(__name__)

AgeFunction = Callable[[np.ndarray], np.ndarray]
HIDE_MODES = ("mean", "zero", "blur")
FEATURE_SELECTIONS = ("auto", "none", "highest_weights", "forward_selection", "lasso_path")
#: What LIME explains: the model's expected age (years), or, as the dex-model-analysis article did,
#: the probability of the class the model ranks first on the unperturbed image.
TARGETS = ("expected_age", "top_class_probability")


def image_seed(run_seed: int | str, image_id: str) -> int:
    """A 32-bit seed for one image from the run seed and the image id.

    Stable across processes and Python versions (BLAKE2b of ``"<run_seed>/<image_id>"``), unlike
    ``hash()``, which is salted per process.
    """
    digest = hashlib.blake2b(f"{run_seed}/{image_id}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "little")


def compact_segments(segments: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Relabel a segment map to 0..k-1 (what lime_image assumes); returns (labels present, map)."""
    present, compact = np.unique(segments, return_inverse=True)
    return present, compact.reshape(segments.shape).astype(np.intp)


def hide_image(image: np.ndarray, segments: np.ndarray, hide: str = "mean", blur_sigma: float = 3.0) -> np.ndarray:
    """The image shown where a segment is switched off, (H, W, 3) uint8.

    ``mean``: each segment's mean colour, truncated to uint8 as lime_image does (its
    ``hide_color=None``); ``zero``: black (lime_image's ``hide_color=0``); ``blur``: a Gaussian
    blur of the whole image, ``blur_sigma`` pixels, which removes texture (wrinkles) but keeps
    the face's layout and colour.
    """
    if hide == "zero":
        return np.zeros_like(image)
    if hide == "blur":
        blurred = ndimage.gaussian_filter(image.astype(np.float64), sigma=(blur_sigma, blur_sigma, 0))
        return np.clip(np.rint(blurred), 0, 255).astype(np.uint8)
    if hide != "mean":
        raise ValueError(f"hide must be one of {HIDE_MODES}, got {hide!r}: set explain.lime.hide")
    flat = segments.ravel()
    counts = np.bincount(flat)
    means = np.stack([np.bincount(flat, weights=image[..., c].ravel().astype(np.float64)) for c in range(3)], axis=1)
    means = means / np.maximum(counts, 1)[:, None]
    return means.astype(np.uint8)[segments]  # truncation, as numpy assignment into uint8 does


def sample_masks(n_features: int, num_samples: int, seed: int) -> np.ndarray:
    """(num_samples, n_features) int 0/1 masks, first row all ones; lime_image's exact draw."""
    masks = np.random.RandomState(seed).randint(0, 2, num_samples * n_features).reshape((num_samples, n_features))
    masks[0, :] = 1
    return masks


def lime_kernel(distances: np.ndarray, kernel_width: float) -> np.ndarray:
    """lime_image's default similarity kernel on distances."""
    return np.sqrt(np.exp(-(distances**2) / kernel_width**2))


@settings_dataclass
class LimeSettings:
    """What one LIME explanation needs (``explain.lime``; lime_image's choices, but 1000 samples).

    ``num_samples`` perturbed images, ``kernel_width`` on ``distance_metric`` distances to the
    all-on mask, ``feature_selection`` of ``LimeBase``, ``num_features`` (``None``: every segment),
    what a hidden segment shows (``hide``: mean | zero | blur, ``blur_sigma`` pixels), model
    batches of ``batch_size``, and what is explained (``target``: expected_age |
    top_class_probability).
    """

    num_samples: int
    kernel_width: float
    feature_selection: str
    num_features: int | None
    hide: str
    blur_sigma: float
    batch_size: int
    distance_metric: str
    target: str

    def __post_init__(self) -> None:
        if self.target not in TARGETS:
            raise ValueError(f"target must be one of {TARGETS}, got {self.target!r}")
        if self.hide not in HIDE_MODES:
            raise ValueError(f"hide must be one of {HIDE_MODES}, got {self.hide!r}")
        if self.feature_selection not in FEATURE_SELECTIONS:
            raise ValueError(f"feature_selection must be one of {FEATURE_SELECTIONS}, got {self.feature_selection!r}")
        if self.num_samples < 2 or self.batch_size < 1:
            raise ValueError("num_samples must be >= 2 and batch_size >= 1")


@dataclass
class MaskedJob:
    """One image and the on/off masks whose predictions are wanted."""

    key: object
    image: np.ndarray  # (H, W, 3) uint8
    hidden: np.ndarray  # (H, W, 3) uint8, shown where a segment is off
    segments: np.ndarray  # (H, W) intp, 0..k-1
    masks: np.ndarray  # (n, k) 0/1
    context: dict = field(default_factory=dict)
    ages: np.ndarray = field(init=False)
    _next: int = field(default=0, init=False)
    _done: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self.ages = np.empty(len(self.masks), dtype=np.float64)


def _fill_batches(
    jobs: Iterable[MaskedJob], batch_size: int, free: queue.Queue[np.ndarray], n_buffers: int
) -> Iterator[tuple[np.ndarray | None, int, list, list[MaskedJob]]]:
    """Fill model batches with the perturbations of consecutive jobs.

    Yields (buffer, fill, pieces, started): ``buffer[:fill]`` holds the perturbed images,
    ``pieces`` says which rows of which job sit where, ``started`` lists the jobs whose first
    rows are in this batch (in input order). A buffer comes back through ``free`` once the
    model has read it; at most ``n_buffers`` are ever allocated. The last item has fill 0.
    """
    jobs = iter(jobs)
    current: MaskedJob | None = None
    shape: tuple | None = None
    allocated = 0
    exhausted = False
    while not exhausted:
        buffer, fill, pieces, started = None, 0, [], []
        while fill < batch_size:
            if current is None or current._next >= len(current.masks):
                current = next(jobs, None)
                if current is None:
                    exhausted = True
                    break
                started.append(current)
                if shape is None:
                    shape = current.image.shape
                elif current.image.shape != shape:
                    raise ValueError(
                        f"image {current.key!r} is {current.image.shape}, the others {shape}: "
                        "crops of one run must share one size"
                    )
                continue
            if buffer is None:
                if free.empty() and allocated < n_buffers:
                    allocated += 1
                    buffer = np.empty((batch_size, *shape), dtype=np.uint8)
                else:
                    buffer = free.get()
            take = min(len(current.masks) - current._next, batch_size - fill)
            rows = slice(current._next, current._next + take)
            target = buffer[fill : fill + take]
            # keep[i, y, x] = mask i keeps the segment at (y, x): one gather, no loop over segments
            keep = current.masks[rows].astype(bool)[:, current.segments]
            np.copyto(target, current.hidden)
            np.copyto(target, current.image, where=keep[..., None])
            pieces.append((current, rows.start, rows.stop, fill))
            current._next += take
            fill += take
        if fill or started:
            yield buffer, fill, pieces, started
    yield None, 0, [], []


def _in_background(items: Iterator, depth: int = 1) -> Iterator:
    """Run a generator in a thread, ``depth`` items ahead: perturbations are built while the
    model (which releases the GIL) runs on the previous batch. Exceptions are re-raised here."""
    handoff: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        handoff.put(("item", item), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            handoff.put(("end", done))
        except BaseException as error:  # handed to the consumer, raised there
            handoff.put(("error", error))

    worker = threading.Thread(target=produce, name="explain-perturbations", daemon=True)
    worker.start()
    try:
        while True:
            kind, value = handoff.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()


def predict_masked(
    jobs: Iterable[MaskedJob], age_function: AgeFunction, batch_size: int, prefetch: bool = True
) -> Iterator[MaskedJob]:
    """Predict the expected age of every masked image of every job; yield each job once done.

    Model batches are filled with the perturbations of as many consecutive jobs as needed, so
    the model always sees ``batch_size`` images (the last call excepted). With ``prefetch`` the
    next batch is built in a background thread while the model runs. Memory holds three batches
    of images plus the masks of the jobs in flight. Jobs come back in input order.
    """
    free: queue.Queue = queue.Queue()
    batches = _fill_batches(jobs, batch_size, free, n_buffers=3 if prefetch else 1)
    in_flight: deque[MaskedJob] = deque()
    for buffer, fill, pieces, started in _in_background(batches) if prefetch else batches:
        in_flight.extend(started)
        if fill:
            values = np.asarray(age_function(buffer[:fill]), dtype=np.float64)
            free.put(buffer)
            if values.shape[0] != fill:
                raise ValueError(f"age_function returned {values.shape[0]} values for a batch of {fill} images")
            for job, start, stop, at in pieces:
                rows = values[at : at + stop - start]
                if values.ndim == 2:
                    # Class probabilities: each job follows the class ranked first on its own
                    # unperturbed image (its mask row 0, which always comes first).
                    if start == 0:
                        job.context["target_class"] = int(np.argmax(rows[0]))
                    rows = rows[:, job.context["target_class"]]
                job.ages[start:stop] = rows.reshape(-1)
                job._done += stop - start
        while in_flight and in_flight[0]._done == len(in_flight[0].masks):
            yield in_flight.popleft()
    while in_flight:
        yield in_flight.popleft()


@dataclass
class SegmentExplanation:
    """A fitted LIME surrogate for one image over its segments."""

    key: object
    present: np.ndarray  # original segment labels, in feature order
    weights: np.ndarray  # (k,) surrogate coefficient per present segment (0 where not selected), years
    intercept: float
    score: float  # the surrogate's weighted R^2 on the samples
    model_age: float  # the model's expected age on the unperturbed image
    local_pred: float
    segments: np.ndarray = field(repr=False, default=None)  # compact (H, W) map
    context: dict = field(default_factory=dict)


def fit_surrogate(
    masks: np.ndarray, ages: np.ndarray, settings: LimeSettings, seed: int
) -> tuple[np.ndarray, float, float, float]:
    """Fit LimeBase to (masks, ages) as lime_image does; returns (weights, intercept, score, local_pred)."""
    import sklearn.metrics  # imported here: lime and scikit-learn are slow to import, seeds need neither
    from lime.lime_base import LimeBase

    distances = sklearn.metrics.pairwise_distances(
        masks, masks[0].reshape(1, -1), metric=settings.distance_metric
    ).ravel()
    base = LimeBase(partial(lime_kernel, kernel_width=float(settings.kernel_width)), random_state=seed)
    num_features = settings.num_features if settings.num_features is not None else 100000
    intercept, local_exp, score, local_pred = base.explain_instance_with_data(
        masks, ages.reshape(-1, 1), distances, 0, num_features, feature_selection=settings.feature_selection
    )
    weights = np.zeros(masks.shape[1], dtype=np.float64)
    for feature, weight in local_exp:
        weights[int(feature)] = weight
    return weights, float(intercept), float(score), float(np.ravel(local_pred)[0])


def lime_jobs(
    items: Iterable[tuple[object, np.ndarray, np.ndarray, int]],
    settings: LimeSettings,
    context: Callable[[object], dict] | None = None,
) -> Iterator[MaskedJob]:
    """Turn (key, image, segment map, seed) items into LIME sampling jobs."""
    for key, image, segments, seed in items:
        present, compact = compact_segments(segments)
        hidden = hide_image(image, compact, settings.hide, settings.blur_sigma)
        masks = sample_masks(len(present), settings.num_samples, seed)
        yield MaskedJob(
            key,
            image,
            hidden,
            compact,
            masks,
            context={"present": present, "seed": seed, **(context(key) if context else {})},
        )


def explain_images(
    items: Iterable[tuple[object, np.ndarray, np.ndarray, int]], age_function: AgeFunction, settings: LimeSettings
) -> Iterator[SegmentExplanation]:
    """LIME explanations of the expected age for a stream of images, in input order.

    Args:
        items: (key, crop (H, W, 3) uint8 RGB, segment map (H, W) int, seed) per image; the
            segment map is any labelling (``region_map``, quickshift), relabelled 0..k-1 inside.
        age_function: uint8 RGB batch (B, H, W, 3) -> expected ages (B,), applying the model's
            own preprocessing; for ``settings.target == "top_class_probability"``, -> class
            probabilities (B, K), of which each image's top-ranked class is explained (as
            ``lime_image`` does with ``top_labels=1``).
        settings: sampling, kernel, feature selection, hide mode, model batch size, target.

    Yields one ``SegmentExplanation`` per image as soon as its last sample is predicted;
    ``model_age`` is the explained value on the unperturbed image (years, or the top class's
    probability), and ``context["target_class"]`` names that class for the probability target.
    """
    for job in predict_masked(lime_jobs(items, settings), age_function, settings.batch_size):
        seed = job.context["seed"]
        weights, intercept, score, local_pred = fit_surrogate(job.masks, job.ages, settings, seed)
        yield SegmentExplanation(
            job.key,
            job.context["present"],
            weights,
            intercept,
            score,
            float(job.ages[0]),
            local_pred,
            segments=job.segments,
            context={k: v for k, v in job.context.items() if k == "target_class"},
        )


def region_weights(explanation: SegmentExplanation, n_regions: int) -> tuple[np.ndarray, np.ndarray]:
    """Scatter an explanation over region labels: (weights (n_regions,), empty flags (n_regions,)).

    A region absent from the image (cut off by the crop) gets weight 0 and ``empty`` True.
    """
    weights = np.zeros(n_regions, dtype=np.float64)
    empty = np.ones(n_regions, dtype=bool)
    weights[explanation.present] = explanation.weights
    empty[explanation.present] = False
    return weights, empty


def positive_pixel_shares(
    segment_weights: np.ndarray, segments: np.ndarray, region_map: np.ndarray, n_regions: int, top_k: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The article's region summary of a LIME explanation over arbitrary segments (quickshift).

    A pixel is "positively weighted" when its segment's weight is > 0 (among the ``top_k``
    largest when given: lime's ``get_image_and_mask(positive_only=True, num_features=5)`` kept 5).
    Per landmark region: ``activation`` = positive pixels in the region / the region's pixels,
    ``share`` = positive pixels in the region / all positive pixels (0 when there are none);
    ``empty`` where the region has no pixel (its activation is then 0, not NaN).
    """
    positive_segments = segment_weights > 0
    if top_k is not None:
        order = np.argsort(-segment_weights)
        keep = np.zeros_like(positive_segments)
        keep[order[:top_k]] = True
        positive_segments &= keep
    positive = positive_segments[segments]
    area = np.bincount(region_map.ravel(), minlength=n_regions)[:n_regions]
    positive_area = np.bincount(region_map.ravel(), weights=positive.ravel(), minlength=n_regions)[:n_regions]
    activation = np.divide(positive_area, area, out=np.zeros(n_regions), where=area > 0)
    total = positive_area.sum()
    share = positive_area / total if total > 0 else np.zeros(n_regions)
    return activation, share, area == 0


def quickshift_segments(
    image: np.ndarray, kernel_size: float = 4, max_dist: float = 200, ratio: float = 0.2, seed: int = 0
) -> np.ndarray:
    """lime_image's default segmentation: skimage quickshift through lime's wrapper, (H, W) int."""
    from lime.wrappers.scikit_image import SegmentationAlgorithm

    return SegmentationAlgorithm(
        "quickshift", kernel_size=kernel_size, max_dist=max_dist, ratio=ratio, random_seed=seed
    )(image)
