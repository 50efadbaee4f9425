"""The model's crop frame: where a face's regions are drawn, and where group maps are painted.

Explanations are made in the crop the model sees (its declared view: crop style and size). Group
maps average many faces in that frame, on the region map of the mean landmark template
(:mod:`dex_bias.explain.groups`); the frame travels between the explain nodes as a small dict,
``{"size": pixels, "crop": CropSpec, "template": 68 × 2 points or None}``.

The face modules are imported where they are used, so that Dask workers importing
:mod:`dex_bias.explain.tasks` (which reads landmarks through :func:`points_in_view`) load them
only when they cut crops.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from dex_bias.explain.regions import BACKGROUND, RegionShape, mean_template, region_figure, region_map

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from dex_bias.faces.views import View


def model_view(age_model) -> View:
    """The view (crop style, size) of the model's age input, as its declaration states."""
    from dex_bias.models.runtime import as_estimator

    return as_estimator(age_model).spec.input.view


def points_in_view(targets: pd.DataFrame, view: View) -> np.ndarray:
    """The 68 landmarks of each target in the model's crop (N, 68, 2)."""
    from dex_bias.faces import landmarks_in_crop
    from dex_bias.faces.views import view_transforms

    crop, size = view
    return landmarks_in_crop(targets, size, view_transforms(targets, crop, size))


def crop_frame(targets: pd.DataFrame, view: View) -> dict[str, Any]:
    """The frame the group maps are painted in: the view's size and crop, and the mean landmark
    template of ``targets`` in it (None when there is no target)."""
    crop, size = view
    template = mean_template(points_in_view(targets, view)).tolist() if len(targets) else None
    return {"size": size, "crop": crop, "template": template}


def template_region_map(frame: dict[str, Any], regions: RegionShape) -> np.ndarray:
    """The region map of the frame's mean template; all background when there is no template."""
    if frame.get("template") is None:
        return np.full((frame["size"],) * 2, BACKGROUND)
    return region_map(np.asarray(frame["template"]), frame["size"], **regions.keywords())


def first_face_regions_figure(
    targets: pd.DataFrame, frame: dict[str, Any], regions: RegionShape, padding: str
) -> Figure:
    """The facial regions drawn on the first target face, in the model's crop (a glance at what
    each region covers); a figure that says so when there is no face."""
    from matplotlib.figure import Figure

    from dex_bias.faces.views import STORED_CROP, iter_view_batches

    size = frame["size"]
    if targets.empty:
        figure = Figure(figsize=(4, 2))
        figure.text(0.5, 0.5, "no face to draw regions on", ha="center")
        return figure
    first = targets.iloc[[0]]
    view = (frame.get("crop") or STORED_CROP, size)
    _, (crops,) = next(iter_view_batches(first, [view], 1, padding=padding))
    points = points_in_view(first, view)[0]
    return region_figure(
        crops[0],
        region_map(points, size, **regions.keywords()),
        points,
        title=f"facial regions ({first['image_id'].iloc[0]})",
    )
