"""Synthetic predictions tables for the statistics tests (no images, no model)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

from tests.conftest import base_parameters


def scipy_interval(samples, statistic, *, n_resamples: int, seed: int, paired: bool = False, vectorized=None):
    """scipy's percentile-bootstrap interval of ``statistic`` over ``samples``: the reference every
    bootstrap interval of the audit is checked against (``.low``, ``.high``)."""
    return st.bootstrap(
        samples,
        statistic,
        paired=paired,
        vectorized=vectorized,
        n_resamples=n_resamples,
        method="percentile",
        rng=np.random.default_rng(seed),
    ).confidence_interval


def assert_interval_near(low: float, high: float, reference, tolerance: float) -> None:
    """``(low, high)`` equals scipy's ``reference`` interval up to Monte Carlo error ``tolerance``."""
    assert low == pytest.approx(reference.low, abs=tolerance)
    assert high == pytest.approx(reference.high, abs=tolerance)


def verification_settings(overrides: dict | None = None):
    """conf/base's ``report.age_verification`` with ``overrides`` (keys under it, dotted) changed."""
    changed = {f"report.age_verification.{key}": value for key, value in (overrides or {}).items()}
    return base_parameters(changed).report.age_verification


def synthetic_predictions(
    n: int = 1500, seed: int = 0, race_bias: dict[int, float] | None = None, noise: float = 6.0
) -> pd.DataFrame:
    """UTKFace-named predictions: ages 0-89, Gaussian error, plus ``race_bias`` years per race."""
    rng = np.random.default_rng(seed)
    age = rng.integers(0, 90, n)
    gender = rng.integers(0, 2, n)
    race = rng.integers(0, 5, n)
    bias = np.array([(race_bias or {}).get(int(r), 0.0) for r in race])
    predicted = np.clip(age + rng.normal(0, noise, n) + bias, 0, None)
    ids = [f"{a}_{g}_{r}_2017{i:010d}.jpg.chip.jpg" for i, (a, g, r) in enumerate(zip(age, gender, race))]
    return pd.DataFrame({"image_id": ids, "age": age, "gender": gender, "race": race, "predicted_age": predicted})


@pytest.fixture
def predictions() -> pd.DataFrame:
    return synthetic_predictions()


#: A declared second model for the comparison tests (an ONNX classifier of 101 ages).
VENDOR = {
    "format": "onnx",
    "file": "vendor.onnx",
    "input": {"size": 64},
    "age": {"classes": {"count": 101}},
    "gender": None,
}


def two_models() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """``(trained, vendor, attributions)`` for the model comparison: 800 faces; the vendor's
    estimates are noisier and 6 years older for race 3, and miss the last 100 faces; region
    weights for the first 60 faces."""
    trained = synthetic_predictions(800, seed=1, noise=4.0)
    vendor = trained.assign(
        predicted_age=np.clip(
            trained["age"] + np.random.default_rng(2).normal(0, 9, len(trained)) + 6.0 * (trained["race"] == 3), 0, None
        )
    )
    vendor = vendor.iloc[:700]
    rng = np.random.default_rng(3)
    attributions = pd.DataFrame(
        [
            (i, "regions", region, rng.normal())
            for i in trained["image_id"][:60]
            for region in ("nose", "mouth", "chin")
        ],
        columns=["image_id", "method", "region", "weight"],
    )
    return trained, vendor, attributions


def synthetic_landmarks(image_ids, seed: int = 0, scale=None, yaw=None) -> pd.DataFrame:
    """A landmarks table (``image_id``, ``x_00``…``y_67`` in pixels) from a rough 68-point face.

    ``scale`` (per image, default uniform 0.6-1.4) sizes the face, so the interocular distance is
    about 40 px × scale; ``yaw`` (per image, default N(0, 0.1)) moves the nose tip sideways by that
    share of the half face width, so the yaw index is about ``yaw``.
    """
    rng = np.random.default_rng(seed)
    ids = list(image_ids)
    n = len(ids)
    scale = rng.uniform(0.6, 1.4, n) if scale is None else np.asarray(scale, float)
    yaw = rng.normal(0, 0.1, n) if yaw is None else np.asarray(yaw, float)
    template = np.zeros((68, 2))
    t = np.linspace(0, np.pi, 17)
    template[0:17] = np.column_stack([-50 * np.cos(t), 10 + 50 * np.sin(t)])  # jaw, image left to right
    template[17:27] = np.column_stack([np.linspace(-40, 40, 10), np.full(10, -25)])  # brows
    template[27:36] = np.column_stack(
        [np.r_[np.zeros(4), np.linspace(-8, 8, 5)], np.r_[np.linspace(-15, 10, 4), np.full(5, 14)]]
    )
    for start, centre in ((36, -20.0), (42, 20.0)):  # eyes
        angle = np.linspace(0, 2 * np.pi, 6, endpoint=False)
        template[start : start + 6] = np.column_stack([centre + 8 * np.cos(angle), -12 + 3 * np.sin(angle)])
    angle = np.linspace(0, 2 * np.pi, 20, endpoint=False)
    template[48:68] = np.column_stack([15 * np.cos(angle), 35 + 5 * np.sin(angle)])  # mouth
    points = template[None] * scale[:, None, None] + 100.0
    half_width = np.abs(template[30, 0] - template[2, 0]) * scale
    points[:, 30, 0] += yaw * half_width
    points += rng.normal(0, 0.3, points.shape)
    table = {"image_id": ids}
    table.update({f"x_{i:02d}": points[:, i, 0] for i in range(68)})
    table.update({f"y_{i:02d}": points[:, i, 1] for i in range(68)})
    return pd.DataFrame(table)
