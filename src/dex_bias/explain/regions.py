"""Facial regions from dlib's 68 landmarks, in the aligned crop's pixel frame.

The dex-model-analysis article summarised LIME explanations over thirteen facial regions drawn
from dlib's 68-point landmarks (the iBUG 300-W markup: jaw 0-16, brows 17-26, nose 27-35,
eyes 36-47, mouth 48-67). This module draws the same thirteen, plus ``background``, as one
integer label map per face, in which every pixel belongs to exactly one region.

Left and right are the SUBJECT's: in an unmirrored photo the subject's right eye is on the
image's left, and it is dlib's points 36-41.

How the map is drawn (each step only labels pixels that the steps before left unlabelled,
except step 1, whose regions overwrite one another in the order listed, so that a later, more
specific region wins where two polygons overlap):

1. The specific regions are rasterised as polygons (``skimage.draw.polygon``), in priority
   order from lowest to highest: cheeks, chin, nose, mouth, eye areas, inner eyes.
   - ``*_cheek``: jaw points 1-5 (or 11-15), the mouth corner, the nose base, the lower eyelid.
   - ``chin``: jaw points 5-11 and the lower lip's outer contour.
   - ``nose``: the inner eye corners, the bridge and the nostril base (27-35).
   - ``mouth``: the outer lip contour 48-59, grown by ``mouth_margin`` of the mouth height.
   - ``*_eye_area``: the convex hull of the brow and the eye, the eye copied down by
     ``eye_area_drop`` eye widths (the under-eye skin that ages first).
   - ``*_inner_eye``: the eye opening 36-41 (42-47), grown about its centre by ``inner_eye_scale``.
2. The rest of the face outline (jaw 0-16 then brows 26-17) takes the label of the nearest
   pixel labelled in step 1 (a Euclidean distance transform): the gaps between polygons, such
   as the philtrum, belong to the region they touch.
3. The ring within ``band_width`` face widths outside the outline is split into four bands by
   which part of the outline is nearest: brows -> ``top_band``; jaw 0-4 -> ``right_band``
   (subject's right, the image's left); jaw 12-16 -> ``left_band``; jaw 5-11 -> ``bottom_band``.
4. Everything else is ``background``.

A region can be empty on a face whose landmarks leave the crop; callers flag it
(``region_empty``) rather than divide by its zero area.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict

import numpy as np
from scipy import ndimage
from scipy.spatial import ConvexHull, cKDTree
from skimage.draw import polygon as fill_polygon

from dex_bias.explain.attributions import REGION_NAMES
from dex_bias.schema import settings_dataclass

#: Label i is ``REGION_NAMES[i]`` (defined with the attributions table, which names regions so).
REGION_INDEX: dict[str, int] = {name: i for i, name in enumerate(REGION_NAMES)}
N_REGIONS = len(REGION_NAMES)
BACKGROUND = REGION_INDEX["background"]

# dlib 68-point index groups (0-based). "right" = subject's right = image left.
_JAW = np.arange(0, 17)
_RIGHT_BROW, _LEFT_BROW = np.arange(17, 22), np.arange(22, 27)
_RIGHT_EYE, _LEFT_EYE = np.arange(36, 42), np.arange(42, 48)
_OUTER_LIPS = np.arange(48, 60)
_FACE_OUTLINE = np.concatenate([_JAW, np.arange(26, 16, -1)])


def _rasterise(points_xy: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of the pixels whose centres fall inside a polygon (clipped to the crop)."""
    return fill_polygon(points_xy[:, 1], points_xy[:, 0], shape=(size, size))


def _hull(points_xy: np.ndarray) -> np.ndarray:
    """Convex hull vertices, in order; the points themselves when they are degenerate."""
    try:
        return points_xy[ConvexHull(points_xy).vertices]
    except Exception:  # collinear or repeated points: rasterise what we have
        return points_xy


def _grow(points_xy: np.ndarray, scale: float) -> np.ndarray:
    centre = points_xy.mean(axis=0)
    return centre + (points_xy - centre) * scale


def _specific_polygons(
    p: np.ndarray, eye_area_drop: float, inner_eye_scale: float, mouth_margin: float
) -> list[tuple[int, np.ndarray]]:
    """(label, polygon) pairs, lowest priority first; ``p`` is (68, 2) x, y."""
    polygons: list[tuple[int, np.ndarray]] = []
    polygons.append((REGION_INDEX["right_cheek"], p[[1, 2, 3, 4, 5, 48, 31, 39, 40, 41, 36]]))
    polygons.append((REGION_INDEX["left_cheek"], p[[15, 14, 13, 12, 11, 54, 35, 42, 47, 46, 45]]))
    polygons.append((REGION_INDEX["chin"], p[[5, 6, 7, 8, 9, 10, 11, 54, 55, 56, 57, 58, 59, 48]]))
    polygons.append((REGION_INDEX["nose"], p[[39, 27, 42, 35, 34, 33, 32, 31]]))
    mouth_height = np.ptp(p[_OUTER_LIPS, 1]) or 1.0
    mouth_width = np.ptp(p[_OUTER_LIPS, 0]) or 1.0
    growth = 1.0 + mouth_margin * mouth_height / max(mouth_width, mouth_height)
    polygons.append((REGION_INDEX["mouth"], _grow(p[_OUTER_LIPS], growth)))
    for side, brow, eye in (("right", _RIGHT_BROW, _RIGHT_EYE), ("left", _LEFT_BROW, _LEFT_EYE)):
        eye_pts = p[eye]
        drop = np.array([0.0, eye_area_drop * (np.ptp(eye_pts[:, 0]) or 1.0)])
        polygons.append((REGION_INDEX[f"{side}_eye_area"], _hull(np.concatenate([p[brow], eye_pts, eye_pts + drop]))))
    for side, eye in (("right", _RIGHT_EYE), ("left", _LEFT_EYE)):
        polygons.append((REGION_INDEX[f"{side}_inner_eye"], _grow(p[eye], inner_eye_scale)))
    return polygons


def _dense_outline(outline_xy: np.ndarray, owner: np.ndarray, step: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Points every ``step`` px along the closed outline, each with the band of its edge's start."""
    starts, ends = outline_xy, np.roll(outline_xy, -1, axis=0)
    lengths = np.linalg.norm(ends - starts, axis=1)
    counts = np.maximum(np.ceil(lengths / step).astype(int), 1)
    edge = np.repeat(np.arange(len(starts)), counts)
    t = (np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)) / np.repeat(counts, counts)
    dense = starts[edge] + (ends[edge] - starts[edge]) * t[:, None]
    return dense, owner[edge]


@settings_dataclass
class RegionShape:
    """``explain.regions``: the shape constants of :func:`region_map` (its keyword arguments)."""

    band_width: float
    eye_area_drop: float
    inner_eye_scale: float
    mouth_margin: float

    def keywords(self) -> dict[str, float]:
        """As :func:`region_map`'s keyword arguments."""
        return asdict(self)


def region_map(
    points68: np.ndarray,
    size: int,
    *,
    band_width: float = 0.25,
    eye_area_drop: float = 0.35,
    inner_eye_scale: float = 1.4,
    mouth_margin: float = 0.3,
) -> np.ndarray:
    """Label every pixel of a ``size`` x ``size`` aligned crop with its facial region.

    Args:
        points68: (68, 2) float, dlib landmarks as x (column), y (row) pixel coordinates in the
            crop (``dex_bias.faces.landmarks_in_crop``); pixel centres are at integer coordinates.
        size: crop side in pixels.
        band_width: width of the outer bands, as a fraction of the face width (jaw point 0 to 16);
            ``float("inf")`` runs the bands to the crop edge (``background`` then stays empty).
        eye_area_drop, inner_eye_scale, mouth_margin: region shape constants (module docstring).

    Returns:
        (size, size) int16 map; value i means region ``REGION_NAMES[i]``. Every pixel carries
        exactly one label. The drawing order is the module docstring's.
    """
    p = np.asarray(points68, dtype=float)
    if p.shape != (68, 2) or not np.all(np.isfinite(p)):
        raise ValueError(f"region_map needs (68, 2) finite landmarks, got shape {p.shape}")
    labels = np.full((size, size), -1, dtype=np.int16)
    for label, poly in _specific_polygons(p, eye_area_drop, inner_eye_scale, mouth_margin):
        rows, cols = _rasterise(poly, size)
        labels[rows, cols] = label

    face = np.zeros((size, size), dtype=bool)
    rows, cols = _rasterise(p[_FACE_OUTLINE], size)
    face[rows, cols] = True
    specific = labels >= 0
    gaps = face & ~specific
    if gaps.any() and specific.any():
        # Nearest labelled pixel for every gap pixel: the philtrum joins the nose or mouth, etc.
        _, (near_r, near_c) = ndimage.distance_transform_edt(~specific, return_indices=True)
        labels[gaps] = labels[near_r[gaps], near_c[gaps]]
    inside = labels >= 0

    face_width = float(np.linalg.norm(p[16] - p[0])) or 1.0
    band_px = band_width * face_width
    outside = ~inside
    if inside.any():
        distance = ndimage.distance_transform_edt(outside)
        ring = outside & (distance <= band_px)
    else:  # the face lies wholly outside the crop: nothing to measure a band from
        ring = np.zeros_like(outside)
    labels[outside & ~ring] = BACKGROUND
    if ring.any():
        owner = np.empty(len(_FACE_OUTLINE), dtype=np.int16)
        owner[:] = REGION_INDEX["top_band"]  # the brow edges, and the edge from point 16 to 26
        owner[[0, 1, 2, 3, 4]] = REGION_INDEX["right_band"]  # edges starting at jaw 0-4
        owner[[5, 6, 7, 8, 9, 10, 11]] = REGION_INDEX["bottom_band"]
        owner[[12, 13, 14, 15]] = REGION_INDEX["left_band"]
        owner[16] = REGION_INDEX["left_band"]  # edge 16 -> 26 runs up the subject's left temple
        owner[len(_FACE_OUTLINE) - 1] = REGION_INDEX["right_band"]  # edge 17 -> 0, the right temple
        dense, dense_owner = _dense_outline(p[_FACE_OUTLINE], owner)
        ring_r, ring_c = np.nonzero(ring)
        ring_xy = np.stack([ring_c, ring_r], axis=1).astype(float)
        _, nearest = cKDTree(dense).query(ring_xy)
        labels[ring_r, ring_c] = dense_owner[nearest]
    return labels


def region_areas(label_map: np.ndarray) -> np.ndarray:
    """(N_REGIONS,) pixel count of each region in one label map."""
    return np.bincount(label_map.ravel(), minlength=N_REGIONS)[:N_REGIONS]


def mean_template(points: np.ndarray) -> np.ndarray:
    """The mean landmark template, (68, 2): the common aligned frame for group maps.

    ``points`` is (N, 68, 2) landmarks in crop pixels; faces with any non-finite point are left out.
    """
    points = np.asarray(points, dtype=float)
    finite = np.isfinite(points).all(axis=(1, 2))
    if not finite.any():
        raise ValueError("mean_template: no face has 68 finite landmarks")
    return points[finite].mean(axis=0)


def paint_regions(values: Sequence[float] | np.ndarray, label_map: np.ndarray) -> np.ndarray:
    """Paint one value per region (``REGION_NAMES`` order) onto a label map: (H, W) float."""
    values = np.asarray(values, dtype=float)
    if values.shape[-1] != N_REGIONS:
        raise ValueError(f"paint_regions needs {N_REGIONS} values per map, got {values.shape[-1]}")
    return values[..., label_map]


def region_figure(
    crop: np.ndarray, label_map: np.ndarray, points68: np.ndarray | None = None, title: str | None = None
):
    """A matplotlib figure of the regions drawn over a face crop, with a legend of names."""
    from matplotlib import colormaps
    from matplotlib.figure import Figure  # the object API: no pyplot state kept alive per figure
    from matplotlib.patches import Patch
    from skimage.segmentation import find_boundaries

    colours = colormaps["tab20"](np.arange(N_REGIONS) % 20)
    # Draw on a nearest-neighbour enlargement so that boundaries stay thin on 64 px crops.
    zoom = max(1, 256 // label_map.shape[0])
    crop = np.repeat(np.repeat(crop, zoom, axis=0), zoom, axis=1)
    label_map = np.repeat(np.repeat(label_map, zoom, axis=0), zoom, axis=1)
    if points68 is not None:
        points68 = (np.asarray(points68) + 0.5) * zoom - 0.5
    fig = Figure(figsize=(9, 4.6))
    axes = fig.subplots(1, 2)
    axes[0].imshow(crop)
    boundaries = find_boundaries(label_map, mode="inner")
    overlay = crop.astype(float) / 255.0 * 0.55 + colours[label_map, :3] * 0.45
    overlay[boundaries] = 0.0
    axes[1].imshow(overlay)
    if points68 is not None:
        for ax in axes:
            ax.scatter(points68[:, 0], points68[:, 1], s=4, c="yellow")
    for ax in axes:
        ax.set_axis_off()
    axes[0].set_title("aligned crop")
    axes[1].set_title(title or "facial regions")
    handles = [Patch(color=colours[i], label=name) for i, name in enumerate(REGION_NAMES)]
    fig.legend(handles=handles, loc="center right", fontsize=8, frameon=False)
    fig.subplots_adjust(right=0.78, wspace=0.05)
    return fig
