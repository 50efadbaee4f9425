"""UTKFace label codes, file-name parsing and age bands.

UTKFace (Zhang, Song & Qi, CVPR 2017) names each image
``[age]_[gender]_[race]_[date&time].jpg`` (in-the-wild) or
``[age]_[gender]_[race]_[date&time].jpg.chip.jpg`` (aligned and cropped chips), with
age 0-116, gender 0 male / 1 female, race 0 White, 1 Black, 2 Asian, 3 Indian, 4 Others.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

GENDER_NAMES: dict[int, str] = {0: "male", 1: "female"}
RACE_NAMES: dict[int, str] = {0: "White", 1: "Black", 2: "Asian", 3: "Indian", 4: "Others"}
AGE_MIN, AGE_MAX = 0, 116

CHIP_SUFFIX = ".jpg.chip.jpg"
WILD_SUFFIX = ".jpg"

#: Inclusive ``(low, high)`` bands of whole years of age, in age order (the ``age_bands`` parameters).
AgeBands = tuple[tuple[int, int], ...]
#: Default audit bands (inclusive, in years): child, teen, young adult, adult, middle age, older.
DEFAULT_AGE_BANDS: tuple[tuple[int, int], ...] = (
    (0, 12),
    (13, 17),
    (18, 24),
    (25, 39),
    (40, 59),
    (60, AGE_MAX),
)
#: The bands of the dex-model-analysis article (inclusive, on true age).
PAPER_AGE_BANDS: tuple[tuple[int, int], ...] = ((0, 12), (13, 18), (19, 25), (26, 100))

_NAME = re.compile(r"^(?P<age>\d+)_(?P<gender>\d+)_(?P<race>\d+)_(?P<stamp>\d+)$")


class LabelError(ValueError):
    """A UTKFace file name that cannot be turned into labels; ``reason`` is a short code."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class FaceLabels:
    """Labels coded from one UTKFace file name."""

    age: int
    gender: int
    race: int
    stamp: str
    kind: str  # "chip" (aligned crop) or "wild" (in-the-wild image)


def parse_utkface_name(name: str) -> FaceLabels:
    """Parse a UTKFace file name (no folder) into coded labels.

    Raises ``LabelError`` with ``reason`` one of ``not_utkface_name`` (wrong suffix),
    ``stray_whitespace``, ``missing_dot`` (``...357jpg.chip.jpg``), ``missing_field``,
    ``malformed_name``, ``age_out_of_range``, ``gender_out_of_range``, ``race_out_of_range``.
    """
    if name.endswith("jpg.chip.jpg") and not name.endswith(CHIP_SUFFIX):
        raise LabelError("missing_dot", f"{name!r}: the stamp runs into 'jpg' with no dot before it")
    if name.endswith(CHIP_SUFFIX):
        stem, kind = name[: -len(CHIP_SUFFIX)], "chip"
    elif name.endswith(WILD_SUFFIX):
        stem, kind = name[: -len(WILD_SUFFIX)], "wild"
    else:
        raise LabelError("not_utkface_name", f"{name!r} does not end in {CHIP_SUFFIX!r} or {WILD_SUFFIX!r}")
    if stem != stem.strip() or any(c.isspace() for c in stem):
        raise LabelError("stray_whitespace", f"{name!r} has white space inside its name")
    fields = stem.split("_")
    if len(fields) < 4:
        raise LabelError(
            "missing_field",
            f"{name!r} has {len(fields)} of the 4 fields age_gender_race_datetime",
        )
    match = _NAME.match(stem)
    if match is None:
        raise LabelError("malformed_name", f"{name!r}: fields must be age_gender_race_datetime, all digits")
    age, gender, race = int(match["age"]), int(match["gender"]), int(match["race"])
    if not AGE_MIN <= age <= AGE_MAX:
        raise LabelError("age_out_of_range", f"{name!r}: age {age} outside {AGE_MIN}-{AGE_MAX}")
    if gender not in GENDER_NAMES:
        raise LabelError("gender_out_of_range", f"{name!r}: gender {gender} is not 0 (male) or 1 (female)")
    if race not in RACE_NAMES:
        raise LabelError("race_out_of_range", f"{name!r}: race {race} is not one of 0-4")
    return FaceLabels(age=age, gender=gender, race=race, stamp=match["stamp"], kind=kind)


def face_row(path: Path, labels: FaceLabels, split: str = "test") -> dict[str, object]:
    """A ``faces`` row for the chip at ``path``: ``image_id`` (its file name), ``path``, the coded
    labels and ``split``."""
    return {
        "image_id": path.name,
        "path": str(path),
        "age": labels.age,
        "gender": labels.gender,
        "race": labels.race,
        "split": split,
    }


def band_label(low: int, high: int) -> str:
    """Label of an inclusive band: ``'13-17'``, or ``'60+'`` when it runs to the oldest age."""
    return f"{low}+" if high >= AGE_MAX else f"{low}-{high}"


def age_bands(ages: Sequence[float] | pd.Series, bands: Sequence[Sequence[int]] = DEFAULT_AGE_BANDS) -> pd.Series:
    """Assign each age (years) to an inclusive band; ages outside every band get ``<NA>``.

    Bands are ``(low, high)`` pairs, inclusive at both ends, on whole years; the result is an
    ordered categorical so that tables and figures keep the bands in age order.
    """
    values = np.asarray(ages, dtype=float)
    labels = [band_label(int(lo), int(hi)) for lo, hi in bands]
    out = np.full(values.shape, None, dtype=object)
    for (lo, hi), label in zip(bands, labels):
        out[(values >= lo) & (values <= hi)] = label
    index = ages.index if isinstance(ages, pd.Series) else None
    return pd.Series(pd.Categorical(out, categories=labels, ordered=True), index=index, name="age_band")
