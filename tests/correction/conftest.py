"""Synthetic predictions with a planted, known bias (no images, no model)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def planted_predictions(
    n: int = 1200,
    seed: int = 0,
    race_offset: dict[int, float] | None = None,
    gender_offset: float = 0.0,
    noise: float = 3.0,
) -> pd.DataFrame:
    """UTKFace-named rows, ages 1-89; predicted = age + offset(race) + gender_offset·female + N(0, noise).

    The offsets are what a correction must take back: the true correction of race r is
    ``-race_offset[r]`` years.
    """
    rng = np.random.default_rng(seed)
    age = rng.integers(1, 90, n)
    gender = rng.integers(0, 2, n)
    race = rng.integers(0, 5, n)
    offset = np.array([(race_offset or {}).get(int(r), 0.0) for r in race]) + gender_offset * gender
    predicted = age + offset + rng.normal(0.0, noise, n)
    ids = [f"{a}_{g}_{r}_2017{i:010d}.jpg.chip.jpg" for i, (a, g, r) in enumerate(zip(age, gender, race))]
    return pd.DataFrame(
        {
            "image_id": ids,
            "age": age,
            "gender": gender,
            "race": race,
            "predicted_age": predicted,
            "model_name": "synthetic",
            "model_version": "v0",
        }
    )
