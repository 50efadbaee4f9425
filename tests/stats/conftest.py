"""Synthetic predictions tables for the statistics tests (no images, no model)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest


def synthetic_predictions(n: int = 1500, seed: int = 0, race_bias: dict[int, float] | None = None,
                          noise: float = 6.0) -> pd.DataFrame:
    """UTKFace-named predictions: ages 0-89, Gaussian error, plus ``race_bias`` years per race."""
    rng = np.random.default_rng(seed)
    age = rng.integers(0, 90, n)
    gender = rng.integers(0, 2, n)
    race = rng.integers(0, 5, n)
    bias = np.array([(race_bias or {}).get(int(r), 0.0) for r in race])
    predicted = np.clip(age + rng.normal(0, noise, n) + bias, 0, None)
    ids = [f"{a}_{g}_{r}_2017{i:010d}.jpg.chip.jpg" for i, (a, g, r) in enumerate(zip(age, gender, race))]
    return pd.DataFrame({"image_id": ids, "age": age, "gender": gender, "race": race,
                         "predicted_age": predicted})


@pytest.fixture
def predictions() -> pd.DataFrame:
    return synthetic_predictions()
