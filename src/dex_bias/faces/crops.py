"""Face crops cut on demand from an image and its stored crop transform.

Alignment stores, per face, an affine map from the crop's unit square to image pixels
(the ``landmarks`` columns ``crop_a`` … ``crop_f``)::

    x = a·u + b·v + c
    y = d·u + e·v + f        u, v ∈ [0, 1]  (u to the right, v down)

Coordinate conventions (the same as dlib's): an image pixel's *centre* sits at integer
coordinates, so column ``i`` covers ``x ∈ [i - 0.5, i + 0.5]`` and the image spans
``[-0.5, W - 0.5] × [-0.5, H - 0.5]``. The crop's unit square spans its whole area, so crop
pixel ``j`` (of ``size``) has its centre at ``u = (j + 0.5) / size``, and a point at crop
pixel coordinate ``p`` has ``u = (p + 0.5) / size``.

Sampling is bilinear. Pixels outside the image are padded — by replicating the edge pixel
(``padding="edge"``) or with a constant colour (``padding="constant"``) — and never wrapped
around: a crop near the left edge never shows pixels from the right edge (the crop of the
dex-model-analysis study did, through negative indices). When a crop shrinks the image by
2× or more, the image is first box-averaged by the integer factor (Pillow ``reduce``), so
the bilinear sample does not alias.

Files are decoded no larger than their crops need (:func:`read_image_reduced`): a JPEG whose crop
samples it every 2, 4 or 8 pixels or more is decoded at 1/2, 1/4 or 1/8 of its size by libjpeg
itself (never below the crop's own sampling density), and the crop transform is moved into the
smaller image (:func:`reduced_transform`); box-averaging and bilinear sampling then go on as above.
On 400 UTKFace chips (200 px JPEGs) the pixels move a little: a face-sized 140 px box cut at
64 px differs from the crop of the full decode by 0.3 grey levels a pixel on average; the whole
chip at 64 px (decoded at 1/2, where the full decode was box-averaged by 3) by 1.6, as it is
smoothed less (``tests/faces/test_crops.py`` bounds both). dlib chips are cut from the full-size
image (:func:`dex_bias.faces.views.decode_reduction`).

Nothing here is stored per run: later pipelines call :func:`iter_crop_batches` (streaming,
flat memory) or :func:`cut_crops` on the rows they need.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from os import PathLike

import numpy as np
import pandas as pd
from PIL import Image

from dex_bias.faces.columns import CROP_COLUMNS, LANDMARK_X_COLUMNS, LANDMARK_Y_COLUMNS
from dex_bias.imaging import FULL_SIZE, Reduction, load_rgb_reduced

PADDING_MODES = ("edge", "constant")


def read_image_reduced(path: str | PathLike, max_reduction: float) -> tuple[np.ndarray, Reduction]:
    """Decode ``path`` at up to ``max_reduction`` times smaller (a JPEG; see :func:`crop_reduction`).

    Returns the (h, w, 3) uint8 RGB array and its :class:`dex_bias.imaging.Reduction`, which
    :func:`reduced_transform` applies to a crop transform. Raises
    :class:`dex_bias.imaging.ImageDecodeError` with a reason code (:func:`dex_bias.imaging.load_rgb`'s).
    """
    return load_rgb_reduced(path, max_reduction)


def crop_reduction(transform: np.ndarray, size: int) -> float:
    """The crop's sample spacing: source pixels between neighbouring crop pixels, along its denser axis.

    It is how many times smaller the image may be decoded for this (size × size) crop (decoded up
    to that many times smaller, the image still holds at least one pixel per crop pixel along both
    of the crop's axes), and :func:`crop_image` box-averages by its whole part first.
    """
    (a, b, _), (d, e, _) = np.asarray(transform, dtype=np.float64).reshape(2, 3)
    return float(min(np.hypot(a, d), np.hypot(b, e)) / size)


def reduced_transform(transform: np.ndarray, reduction: Reduction | int) -> np.ndarray:
    """A crop transform of the full-size image moved into the image decoded or box-averaged ``reduction`` smaller.

    A reduced pixel ``k`` covers full-size pixels ``[k·s, (k+1)·s)``, so with pixel centres at
    integers ``x' = (x + 0.5) / s - 0.5`` (plus the :class:`~dex_bias.imaging.Reduction`'s
    offsets on an axis that EXIF orientation mirrored).
    """
    if not isinstance(reduction, Reduction):
        reduction = Reduction(int(reduction))
    transform = np.asarray(transform, dtype=np.float64).reshape(2, 3)
    if reduction == FULL_SIZE:
        return transform
    scale = reduction.scale
    moved = transform / scale
    moved[:, 2] += 0.5 / scale - 0.5
    moved[0, 2] += reduction.offset_x
    moved[1, 2] += reduction.offset_y
    return moved


def crop_transforms(landmarks: pd.DataFrame) -> np.ndarray:
    """The (N, 2, 3) float64 crop transforms ``[[a, b, c], [d, e, f]]`` of a ``landmarks`` table.

    Raises ``KeyError`` naming the missing ``crop_*`` columns.
    """
    missing = [c for c in CROP_COLUMNS if c not in landmarks.columns]
    if missing:
        raise KeyError(
            f"the table has no crop transform columns {missing}; pass the `landmarks` dataset "
            "made by the align pipeline (or a table merged with it)"
        )
    return landmarks.loc[:, list(CROP_COLUMNS)].to_numpy(dtype=np.float64).reshape(-1, 2, 3)


def transform_to_columns(transforms: np.ndarray) -> dict[str, np.ndarray]:
    """The inverse of :func:`crop_transforms`: (N, 2, 3) → ``{"crop_a": (N,), …}``."""
    flat = np.asarray(transforms, dtype=np.float64).reshape(-1, 6)
    return {name: flat[:, k] for k, name in enumerate(CROP_COLUMNS)}


def _sample_grid(transform: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Image coordinates (x, y), each (size, size), of the crop's pixel centres."""
    centres = (np.arange(size, dtype=np.float64) + 0.5) / size
    u, v = centres[None, :], centres[:, None]  # u varies along columns, v along rows
    (a, b, c), (d, e, f) = transform
    return a * u + b * v + c, d * u + e * v + f


def _corners(coordinates: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Coordinates clipped to ``[0, length - 1]``: the pixel below, the pixel above (the same at
    the last) and the weight of the one above."""
    coordinates = np.clip(coordinates, 0.0, length - 1.0)
    low = coordinates.astype(np.intp)  # floor: the coordinates are not negative
    return low, np.minimum(low + 1, length - 1), coordinates - low


def _bilinear(image: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Bilinear sample of ``image`` (H, W, C) at (x, y), each (n, m), as (n, m, C) float64; coordinates
    are clipped to the image, so anything outside takes the nearest edge value (no wrap-around by
    construction). Only the pixels around the samples are read, each channel gathered as one
    plane (``np.take``: several times faster than fancy-indexing (H, W, C) rows)."""
    height, width, channels = image.shape
    x0, x1, wx = _corners(x, width)
    y0, y1, wy = _corners(y, height)
    left, top, right, bottom = x0.min(), y0.min(), x1.max() + 1, y1.max() + 1
    window = right - left
    planes = np.ascontiguousarray(np.moveaxis(image[top:bottom, left:right], 2, 0)).reshape(channels, -1)

    def at(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        return np.take(planes, (rows - top) * window + (cols - left), axis=1)

    upper = at(y0, x0) * (1.0 - wx) + at(y0, x1) * wx
    lower = at(y1, x0) * (1.0 - wx) + at(y1, x1) * wx
    return np.moveaxis(upper * (1.0 - wy) + lower * wy, 0, -1)


def _bilinear_separable(image: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """:func:`_bilinear` on the grid ``x`` (m,) × ``y`` (n,) of an axis-aligned crop, as (n, m, C):
    the same arithmetic, on the two rows each crop row needs."""
    height, width = image.shape[:2]
    x0, x1, wx = _corners(x, width)
    y0, y1, wy = _corners(y, height)
    wx, wy = wx[None, :, None], wy[:, None, None]
    above, below = image[y0], image[y1]  # (n, W, C)
    upper = np.take(above, x0, axis=1) * (1.0 - wx) + np.take(above, x1, axis=1) * wx
    lower = np.take(below, x0, axis=1) * (1.0 - wx) + np.take(below, x1, axis=1) * wx
    return upper * (1.0 - wy) + lower * wy


def crop_image(
    image: np.ndarray,
    transform: np.ndarray,
    size: int,
    *,
    padding: str = "edge",
    fill: int | tuple[int, int, int] = 0,
) -> np.ndarray:
    """Cut one (size, size, 3) uint8 crop from an (H, W, 3) uint8 image.

    ``transform`` is the (2, 3) map from the crop's unit square to image pixels. ``padding``:
    ``"edge"`` replicates the nearest edge pixel outside the image, ``"constant"`` fills with
    ``fill`` (an RGB triple or one grey level). Never wraps around.
    """
    if padding not in PADDING_MODES:
        raise ValueError(f"padding must be one of {PADDING_MODES}, not {padding!r}")
    if size < 1:
        raise ValueError(f"crop size must be a positive number of pixels, not {size}")
    transform = np.asarray(transform, dtype=np.float64).reshape(2, 3)
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) RGB image, got shape {image.shape}")

    # Source pixels per crop pixel along u and v; at 2x or more, box-average first.
    factor = int(math.floor(crop_reduction(transform, size)))
    if factor >= 2:
        image = np.asarray(Image.fromarray(image).reduce(factor))
        # A reduced pixel k covers original pixels [k·f, (k+1)·f): x' = (x + 0.5) / f - 0.5.
        transform = reduced_transform(transform, factor)

    shift = 0.0
    if padding == "constant":
        # A one-pixel frame of the fill colour: coordinates beyond it clip onto the frame, and
        # the image edge blends smoothly into the fill.
        colour = np.broadcast_to(np.asarray(fill, dtype=image.dtype), (3,))
        framed = np.empty((image.shape[0] + 2, image.shape[1] + 2, 3), dtype=image.dtype)
        framed[...] = colour
        framed[1:-1, 1:-1] = image
        image, shift = framed, 1.0
    if transform[0, 1] == 0.0 and transform[1, 0] == 0.0:
        # Axis-aligned (align's default `box` crops, margin boxes): x depends on the column only.
        centres = (np.arange(size, dtype=np.float64) + 0.5) / size
        x = transform[0, 0] * centres + transform[0, 2] + shift
        y = transform[1, 1] * centres + transform[1, 2] + shift
        sampled = _bilinear_separable(image, x, y)
    else:
        x, y = _sample_grid(transform, size)
        sampled = _bilinear(image, x + shift, y + shift)
    return np.clip(np.rint(sampled), 0, 255).astype(np.uint8)


def cut_crops(
    paths: Sequence[str | PathLike],
    transforms: np.ndarray,
    size: int,
    *,
    padding: str = "edge",
    fill: int | tuple[int, int, int] = 0,
    workers: int | None = None,
) -> np.ndarray:
    """Cut one crop per image: (N, size, size, 3) uint8 RGB.

    ``paths[i]`` is decoded with :func:`read_image_reduced` (no larger than the crop needs) and
    sampled bilinearly through ``transforms[i]`` (N, 2, 3; see the module docstring), the same
    pixels as :func:`iter_crop_batches` cuts. ``workers`` > 1 decodes on
    a thread pool (Pillow and numpy release the GIL). Raises
    :class:`dex_bias.imaging.ImageDecodeError` for an image that cannot be decoded.
    """
    transforms = np.asarray(transforms, dtype=np.float64).reshape(-1, 2, 3)
    if len(paths) != len(transforms):
        raise ValueError(f"{len(paths)} paths but {len(transforms)} transforms; give one transform per image")
    crops = np.empty((len(paths), size, size, 3), dtype=np.uint8)

    def cut(index: int) -> None:
        transform = transforms[index]
        image, reduction = read_image_reduced(paths[index], crop_reduction(transform, size))
        crops[index] = crop_image(image, reduced_transform(transform, reduction), size, padding=padding, fill=fill)

    if workers and workers > 1 and len(paths) > 1:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(cut, range(len(paths))))
    else:
        for index in range(len(paths)):
            cut(index)
    return crops


def iter_crop_batches(
    table: pd.DataFrame,
    size: int,
    batch_size: int,
    *,
    padding: str = "edge",
    fill: int | tuple[int, int, int] = 0,
    workers: int = 4,
    on_error: Callable[[pd.Series, Exception], None] | None = None,
) -> Iterator[tuple[pd.DataFrame, np.ndarray]]:
    """Stream ``(rows, crops)`` batches for a table with ``path`` and ``crop_a``…``crop_f``.

    ``rows`` is the slice of ``table`` (index kept) whose crops are ``crops``
    (len(rows), size, size, 3) uint8 RGB, in table order. Memory stays flat as the table
    grows: at most two batches are held (the one yielded, and the next one, decoded on a
    pool of ``workers`` threads while the caller works on the current one).

    ``on_error``: ``None`` raises on the first image that cannot be decoded; otherwise it is
    called as ``on_error(row, exception)`` and that row is left out of its batch, so the
    caller can record it (e.g. as an ``inference_failures`` row) — nothing is dropped silently.
    The stored crop is one view of :func:`dex_bias.faces.views.iter_view_batches`.
    """
    from dex_bias.faces.views import STORED_CROP, iter_view_batches

    for rows, (crops,) in iter_view_batches(
        table, [(STORED_CROP, size)], batch_size, padding=padding, fill=fill, workers=workers, on_error=on_error
    ):
        yield rows, crops


def landmarks_in_crop(landmarks: pd.DataFrame, size: int, transforms: np.ndarray | None = None) -> np.ndarray:
    """The 68 landmarks of each row in its (size × size) crop's pixel coordinates: (N, 68, 2).

    ``[..., 0]`` is x (column), ``[..., 1]`` is y (row); pixel centres at integers, as in
    the image. Each point is mapped through the inverse of its row's crop transform: the stored
    one, or ``transforms`` (N, 2, 3), e.g. a model's view from
    :func:`dex_bias.faces.views.view_transforms`.
    """
    missing = [c for c in LANDMARK_X_COLUMNS + LANDMARK_Y_COLUMNS if c not in landmarks.columns]
    if missing:
        raise KeyError(f"the table lacks landmark columns ({missing[:3]}…); pass the `landmarks` dataset")
    transforms = crop_transforms(landmarks) if transforms is None else transforms
    points = np.stack(
        [
            landmarks.loc[:, list(LANDMARK_X_COLUMNS)].to_numpy(np.float64),
            landmarks.loc[:, list(LANDMARK_Y_COLUMNS)].to_numpy(np.float64),
        ],
        axis=-1,
    )
    return image_to_crop(points, transforms, size)


def image_to_crop(points: np.ndarray, transforms: np.ndarray, size: int) -> np.ndarray:
    """Map image points (N, K, 2) into crop pixel coordinates through transforms (N, 2, 3)."""
    transforms = np.asarray(transforms, dtype=np.float64).reshape(-1, 2, 3)
    linear = transforms[:, :, :2]
    offset = transforms[:, :, 2]
    relative = np.asarray(points, dtype=np.float64) - offset[:, None, :]
    unit = np.einsum("nij,nkj->nki", np.linalg.inv(linear), relative)
    return unit * size - 0.5


def crop_to_image(points: np.ndarray, transforms: np.ndarray, size: int) -> np.ndarray:
    """Map crop pixel coordinates (N, K, 2) back to image pixels through transforms (N, 2, 3)."""
    transforms = np.asarray(transforms, dtype=np.float64).reshape(-1, 2, 3)
    unit = (np.asarray(points, dtype=np.float64) + 0.5) / size
    return np.einsum("nij,nkj->nki", transforms[:, :, :2], unit) + transforms[:, None, :, 2]
