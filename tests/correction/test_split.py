"""The calibration / held-out split: disjoint, stratified by race × gender × band, seeded."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dex_bias.correction.split import CALIBRATION, HELD_OUT, calibration_split
from tests.correction.conftest import planted_predictions


def test_split_is_disjoint_covers_every_row_and_is_stratified():
    faces = planted_predictions(n=1500, seed=1)
    split = calibration_split(faces, 0.4, seed=3)
    assert list(split["image_id"]) == list(faces["image_id"])
    calibration = set(split.loc[split["correction_part"] == CALIBRATION, "image_id"])
    held_out = set(split.loc[split["correction_part"] == HELD_OUT, "image_id"])
    assert calibration.isdisjoint(held_out)
    assert calibration | held_out == set(faces["image_id"])
    per_stratum = split.groupby("stratum")["correction_part"].agg(
        n="size", calibration=lambda part: int((part == CALIBRATION).sum())
    )
    # Each stratum gets round(0.4 · n) calibration rows (at least one row on each side when n ≥ 2).
    expected = np.clip(np.round(0.4 * per_stratum["n"]), 1, per_stratum["n"] - 1)
    assert (per_stratum["calibration"] == expected.where(per_stratum["n"] >= 2, per_stratum["calibration"])).all()
    from dex_bias.utkface import age_bands

    expected_strata = (
        faces["race"].astype(str) + "|" + faces["gender"].astype(str) + "|" + age_bands(faces["age"]).astype(str)
    )
    assert (split["stratum"] == expected_strata).all()


def test_split_is_seeded_and_independent_of_row_order():
    faces = planted_predictions(n=600, seed=2)
    first = calibration_split(faces, 0.5, seed=11)
    again = calibration_split(faces, 0.5, seed=11)
    shuffled = calibration_split(faces.sample(frac=1.0, random_state=5), 0.5, seed=11)
    other_seed = calibration_split(faces, 0.5, seed=12)
    assert first.equals(again)
    by_id = shuffled.set_index("image_id").loc[first["image_id"], "correction_part"]
    assert (by_id.to_numpy() == first["correction_part"].to_numpy()).all()
    assert (other_seed["correction_part"] != first["correction_part"]).any()


def test_a_lone_row_is_held_out_and_bad_fractions_are_refused():
    faces = planted_predictions(n=40, seed=3)
    lone = faces.iloc[[0]].assign(image_id="88_1_4_20170000000999.jpg.chip.jpg", age=88, gender=1, race=4)
    split = calibration_split(pd.concat([faces[faces["race"] != 4], lone]), 0.3, seed=0)
    assert split.set_index("image_id").loc[lone["image_id"].iloc[0], "correction_part"] == HELD_OUT
    with pytest.raises(ValueError, match="calibration_fraction"):
        calibration_split(faces, 1.0, seed=0)
    # Two faces of different strata: both held out, nothing to fit on; said, not a crash later.
    with pytest.raises(ValueError, match="0 calibration and 2 held-out rows"):
        calibration_split(faces.iloc[:2].assign(race=[0, 1]), 0.3, seed=0)
