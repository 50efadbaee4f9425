"""Crops as each model expects them, cut on demand from what align stored.

A *view* is a crop style and a side in pixels (:class:`CropSpec`, ``size``). Two styles:

- ``margin_box``: the detection box grown by a margin on each side (DEX and yu4u's models).
  With ``margin: None`` the crop align stored (``crop_a`` … ``crop_f``: ``align.crop``'s
  margin, eye levelling and edge); with a margin, the axis-aligned box from ``box_*``, padded
  (``edge: pad``) or cut at the image edge and stretched (``edge: clamp``, as yu4u's demo does).
  Cut by :func:`dex_bias.faces.crops.crop_image` (bilinear, box-averaged first when shrinking 2×
  or more), from the image decoded no larger than the crop needs (:func:`decode_reduction`).
- ``dlib_chip``: dlib's aligned face chip, ``get_face_chip_details(shape, size, padding)`` of the
  5-point (``x5_*``, ``y5_*``) or 68-point landmarks, cut by dlib's own ``extract_image_chip``
  (an image pyramid, then bilinear; black outside the image). dlib's networks were trained on
  exactly these pixels: cut with our sampler instead, the same chip geometry moved dlib's age
  estimate by a median 0.9 years on 197 UTKFace chips, so the vendor's sampler is kept.

:func:`view_transforms` gives each row's crop as an affine map from the crop's unit square to
image pixels (the convention of :mod:`dex_bias.faces.crops`), for every style, so that
landmarks can be drawn in any model's crop (explain's facial regions).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd

from dex_bias.faces.columns import (
    FIVE_POINT_X_COLUMNS,
    FIVE_POINT_Y_COLUMNS,
    LANDMARK_X_COLUMNS,
    LANDMARK_Y_COLUMNS,
)
from dex_bias.faces.crops import crop_image, crop_reduction, crop_transforms, read_image_reduced, reduced_transform
from dex_bias.imaging import Reduction

BOX_COLUMNS = ("box_left", "box_top", "box_right", "box_bottom")


@dataclass(frozen=True)
class CropSpec:
    """The face crop a model was trained on (see the module docstring).

    ``style``: ``margin_box`` or ``dlib_chip``; ``margin`` (``margin_box``; ``None`` = align's
    stored crop) and ``edge`` (``pad`` or ``clamp``); ``padding`` and ``landmarks`` (5 or 68)
    (``dlib_chip``).
    """

    style: str = "margin_box"
    margin: float | None = None
    edge: str = "pad"
    padding: float = 0.2
    landmarks: int = 5

    def describe(self) -> str:
        if self.style == "dlib_chip":
            return f"dlib face chip (padding {self.padding:g}, {self.landmarks}-point landmarks)"
        if self.margin is None:
            return "detection box with align's stored margin"
        return f"detection box + {self.margin:g} margin ({self.edge})"


#: The crop train, infer and explain have always used: align's stored transform.
STORED_CROP = CropSpec()
View = tuple[CropSpec, int]


def _landmark_points(table: pd.DataFrame, landmarks: int) -> np.ndarray:
    """(N, K, 2) landmark points of the rows, K = 5 or 68."""
    xs, ys = (
        (FIVE_POINT_X_COLUMNS, FIVE_POINT_Y_COLUMNS) if landmarks == 5 else (LANDMARK_X_COLUMNS, LANDMARK_Y_COLUMNS)
    )
    missing = [c for c in (*xs, *ys) if c not in table.columns]
    if missing:
        raise KeyError(
            f"dlib_chip crops from {landmarks}-point landmarks need the landmarks columns {missing[:4]}…, which "
            "this landmarks table lacks. Re-run align with align.five_point.enabled: true "
            "(kedro run --pipelines=align), or declare the model's crop with landmarks: 68."
        )
    points = np.stack(
        [table.loc[:, list(xs)].to_numpy(np.float64), table.loc[:, list(ys)].to_numpy(np.float64)], axis=-1
    )
    if np.isnan(points).any():
        bad = table["image_id"].iloc[np.flatnonzero(np.isnan(points).any(axis=(1, 2)))[:3]].tolist()
        raise ValueError(f"{landmarks}-point landmarks are missing for some faces (e.g. {bad}); re-run align")
    return points


def chip_details(points: np.ndarray, size: int, padding: float):
    """``dlib.chip_details`` of one face: ``get_face_chip_details`` of its landmark points (K, 2)."""
    import dlib

    parts = dlib.points([dlib.point(int(round(x)), int(round(y))) for x, y in points])
    shape = dlib.full_object_detection(dlib.rectangle(0, 0, 1, 1), parts)  # the box is not used
    return dlib.get_face_chip_details(shape, size, padding)


def chip_transform(details) -> np.ndarray:
    """The (2, 3) unit-square-to-image map of a dlib chip.

    dlib maps chip pixel centres ``(0, 0)``, ``(cols - 1, 0)``, ``(cols - 1, rows - 1)`` onto the
    chip rectangle's corners turned by ``angle`` about its centre; our crops place pixel ``j``'s
    centre at ``u = (j + 0.5) / size``, so the two differ by half a pixel and the scale.
    """
    rect, angle = details.rect, details.angle
    cx, cy = (rect.left() + rect.right()) / 2.0, (rect.top() + rect.bottom()) / 2.0
    cos, sin = math.cos(angle), math.sin(angle)

    def turned(x: float, y: float) -> np.ndarray:
        dx, dy = x - cx, y - cy
        return np.array([cx + cos * dx - sin * dy, cy + sin * dx + cos * dy])

    top_left, top_right = turned(rect.left(), rect.top()), turned(rect.right(), rect.top())
    bottom_right = turned(rect.right(), rect.bottom())
    per_column = (top_right - top_left) / (details.cols - 1)
    per_row = (bottom_right - top_right) / (details.rows - 1)
    linear = np.stack([per_column * details.cols, per_row * details.rows], axis=1)
    offset = top_left - 0.5 * (per_column + per_row)
    return np.concatenate([linear, offset[:, None]], axis=1)


def _image_sizes(table: pd.DataFrame) -> np.ndarray:
    """(N, 2) ``(height, width)`` of each row's image: the ``faces`` columns, else the file headers."""
    if {"width", "height"} <= set(table.columns) and table[["width", "height"]].notna().all().all():
        return table[["height", "width"]].to_numpy(np.float64)
    from PIL import Image

    sizes = []
    for path in table["path"]:
        with Image.open(path) as image:
            sizes.append((image.height, image.width))
    return np.asarray(sizes, dtype=np.float64).reshape(-1, 2)


def margin_box_transforms(table: pd.DataFrame, margin: float, edge: str = "pad") -> np.ndarray:
    """(N, 2, 3) axis-aligned crops: the box (inclusive pixels) + ``margin`` × its side, padded or clamped."""
    missing = [c for c in BOX_COLUMNS if c not in table.columns]
    if missing:
        raise KeyError(f"margin crops need the detection box columns {missing}; pass the `landmarks` dataset")
    left, top, right, bottom = (table[c].to_numpy(np.float64) for c in BOX_COLUMNS)
    width, height = right - left + 1.0, bottom - top + 1.0
    x0, y0 = left - 0.5 - margin * width, top - 0.5 - margin * height
    x1, y1 = right + 0.5 + margin * width, bottom + 0.5 + margin * height
    if edge == "clamp":
        sizes = _image_sizes(table)
        x0, x1 = np.maximum(x0, -0.5), np.minimum(x1, sizes[:, 1] - 0.5)
        y0, y1 = np.maximum(y0, -0.5), np.minimum(y1, sizes[:, 0] - 0.5)
    transforms = np.zeros((len(table), 2, 3))
    transforms[:, 0, 0], transforms[:, 0, 2] = x1 - x0, x0
    transforms[:, 1, 1], transforms[:, 1, 2] = y1 - y0, y0
    return transforms


def view_transforms(table: pd.DataFrame, crop: CropSpec, size: int) -> np.ndarray:
    """Each row's crop of ``crop`` style at ``size`` px as (N, 2, 3) unit-square-to-image maps."""
    if crop.style == "dlib_chip":
        points = _landmark_points(table, crop.landmarks)
        return (
            np.stack([chip_transform(chip_details(p, size, crop.padding)) for p in points])
            if len(points)
            else np.zeros((0, 2, 3))
        )
    if crop.margin is None:
        return crop_transforms(table)
    return margin_box_transforms(table, crop.margin, crop.edge)


Cutter = Callable[[np.ndarray, Reduction, int], np.ndarray]


def decode_reduction(crop: CropSpec, size: int, transform: np.ndarray | None = None) -> float:
    """How many times smaller an image may be decoded to cut this view from it: the one place that decides.

    ``margin_box``: the crop's sample spacing (:func:`dex_bias.faces.crops.crop_reduction`, from
    its ``transform``): never fewer image pixels than crop pixels. ``dlib_chip``: 1, dlib's own
    sampler gets the full-size image (its networks were trained on exactly those pixels). An image
    cut into several views is decoded for the least of theirs.
    """
    if crop.style == "dlib_chip":
        return 1.0
    if transform is None:
        raise ValueError("a margin_box view's reduction depends on its crop transform; pass it")
    return crop_reduction(transform, size)


def _cutters(table: pd.DataFrame, views: Sequence[View], padding: str, fill) -> tuple[list[Cutter], np.ndarray]:
    """One ``cut(image, reduction, row_position) -> crop`` per view, with the per-row geometry computed
    once, and (N,) how many times smaller each row's image may be decoded for all of them."""
    cutters = []
    reductions = np.full(len(table), np.inf)
    for crop, size in views:
        if crop.style == "dlib_chip":
            points = _landmark_points(table, crop.landmarks)
            reductions = np.minimum(reductions, decode_reduction(crop, size))

            def cut(image, reduction, index, points=points, size=size, crop=crop):
                import dlib

                if reduction.scale != 1:
                    raise ValueError("a dlib chip is cut from the full-size image; decode it at full size")
                chip = dlib.extract_image_chip(
                    np.ascontiguousarray(image), chip_details(points[index], size, crop.padding)
                )
                return np.asarray(chip, dtype=np.uint8)
        else:
            transforms = view_transforms(table, crop, size)
            reductions = np.minimum(reductions, [decode_reduction(crop, size, t) for t in transforms])

            def cut(image, reduction, index, transforms=transforms, size=size):
                transform = reduced_transform(transforms[index], reduction)
                return crop_image(image, transform, size, padding=padding, fill=fill)

        cutters.append(cut)
    return cutters, reductions


def _cut_views_batch(
    batch: pd.DataFrame,
    views: Sequence[View],
    padding: str,
    fill,
    pool: ThreadPoolExecutor,
    on_error: Callable[[pd.Series, Exception], None] | None,
) -> tuple[pd.DataFrame, list[np.ndarray]]:
    cutters, reductions = _cutters(batch, views, padding, fill)
    paths = batch["path"].tolist()

    def cut(index: int):
        try:
            image, reduction = read_image_reduced(paths[index], reductions[index])
            return [cutter(image, reduction, index) for cutter in cutters]
        except Exception as exc:  # reported below, per row, or re-raised
            if on_error is None:
                raise
            return exc

    results = list(pool.map(cut, range(len(paths))))
    keep = []
    for index, result in enumerate(results):
        if isinstance(result, Exception):
            on_error(batch.iloc[index], result)
        else:
            keep.append(index)
    crops = [
        np.stack([results[i][v] for i in keep]) if keep else np.empty((0, size, size, 3), np.uint8)
        for v, (_, size) in enumerate(views)
    ]
    return batch.iloc[keep], crops


def iter_view_batches(
    table: pd.DataFrame,
    views: Sequence[View],
    batch_size: int,
    *,
    padding: str = "edge",
    fill: int | tuple[int, int, int] = 0,
    workers: int = 4,
    on_error: Callable[[pd.Series, Exception], None] | None = None,
) -> Iterator[tuple[pd.DataFrame, list[np.ndarray]]]:
    """Stream ``(rows, [crops of each view])`` for a table with ``path`` and the landmarks columns.

    Each image is decoded once per batch and cut into every view ((len(rows), size, size, 3)
    uint8 RGB each), in table order. At most two batches are held (the one yielded, and the
    next, cut on ``workers`` threads meanwhile), so memory stays flat as the table grows.
    ``on_error``: ``None`` raises on the first image that cannot be decoded or cut; otherwise it
    is called as ``on_error(row, exception)`` and the row is left out of its batch.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, not {batch_size}")
    if "path" not in table.columns:
        raise KeyError("the table has no `path` column; merge `landmarks` with `faces` on image_id first")
    _cutters(table.head(0), views, padding, fill)  # fail early, naming missing columns
    starts = range(0, len(table), batch_size)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool, ThreadPoolExecutor(max_workers=1) as prefetch:

        def submit(start: int) -> Future:
            return prefetch.submit(
                _cut_views_batch, table.iloc[start : start + batch_size], views, padding, fill, pool, on_error
            )

        pending: Future | None = submit(starts[0]) if len(starts) else None
        for position in range(len(starts)):
            current = pending
            pending = submit(starts[position + 1]) if position + 1 < len(starts) else None
            yield current.result()
