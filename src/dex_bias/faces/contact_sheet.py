"""A contact sheet of aligned crops: a grid of faces, for a glance and for Kedro-Viz previews."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from dex_bias.faces.crops import crop_transforms, cut_crops, landmarks_in_crop
from dex_bias.schema import settings_dataclass
from dex_bias.utkface import GENDER_NAMES, RACE_NAMES


@settings_dataclass
class ContactSheetSettings:
    """``align.contact_sheet``: ``count`` crops of ``crop_size`` px drawn at random (``seed``), in
    ``columns``; ``padding`` (edge | constant) where a crop leaves its image; ``draw_landmarks``."""

    count: int
    columns: int
    crop_size: int
    padding: str
    draw_landmarks: bool
    seed: int


def contact_sheet(
    crops: np.ndarray,
    titles: Sequence[str],
    *,
    points: np.ndarray | None = None,
    columns: int = 8,
    heading: str = "",
    tile_inches: float = 1.4,
) -> Figure:
    """Lay out (N, S, S, 3) uint8 crops on a grid of ``columns``, each titled, with optional
    landmarks (N, 68, 2) in crop pixels drawn as dots. An empty set gives a sheet that says so."""
    count = len(crops)
    columns = max(1, min(columns, count)) if count else 1
    rows = max(1, int(np.ceil(count / columns)))
    figure = Figure(figsize=(columns * tile_inches, rows * tile_inches + 0.5), dpi=100)
    if heading:
        figure.suptitle(heading, fontsize=9)
    if count == 0:
        figure.text(0.5, 0.5, "no aligned faces to show", ha="center", va="center")
        return figure
    axes = figure.subplots(rows, columns, squeeze=False)
    for index, axis in enumerate(axes.ravel()):
        axis.set_axis_off()
        if index >= count:
            continue
        axis.imshow(crops[index], interpolation="nearest")
        if points is not None:
            axis.scatter(points[index, :, 0], points[index, :, 1], s=1.5, c="#00e5ff", linewidths=0)
        axis.set_title(titles[index], fontsize=6)
    figure.tight_layout(rect=(0, 0, 1, 0.97 if heading else 1))
    return figure


def aligned_faces_sheet(
    faces: pd.DataFrame, landmarks: pd.DataFrame, sheet: ContactSheetSettings, margin: float
) -> Figure:
    """A seeded sample of ``sheet.count`` aligned crops (``landmarks``' crop transforms, images from
    ``faces``), each titled with its labels (age, gender, race) or, without them, its id; the
    heading names the crop ``margin`` and the seed."""
    count = min(sheet.count, len(landmarks))
    size = sheet.crop_size
    sample = landmarks.sample(n=count, random_state=sheet.seed) if count else landmarks.head(0)
    sample = sample.merge(faces.astype({"image_id": str}), on="image_id", how="left", validate="one_to_one")
    crops = cut_crops(sample["path"].tolist(), crop_transforms(sample), size, padding=sheet.padding)
    points = landmarks_in_crop(sample, size) if sheet.draw_landmarks else None
    titles = [
        f"{row.age} {GENDER_NAMES.get(row.gender, '?')} {RACE_NAMES.get(row.race, '?')}"
        if {"age", "gender", "race"} <= set(sample.columns)
        else str(row.image_id)[:16]
        for row in sample.itertuples()
    ]
    heading = f"{count} of {len(landmarks)} aligned faces (margin {margin}, seed {sheet.seed})"
    return contact_sheet(crops, titles, points=points, columns=sheet.columns, heading=heading)
