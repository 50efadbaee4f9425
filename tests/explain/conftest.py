"""Landmarks for explain tests: dex_bias.demo's drawn 68-point template placed in a crop."""

from __future__ import annotations

import numpy as np
import pytest

from dex_bias.demo.template import FaceProportions, template_landmarks


def crop_landmarks(size: int = 64, shift=(0.0, 0.0), scale: float = 1.0) -> np.ndarray:
    """(68, 2) x, y crop pixels of a frontal template face filling the middle of the crop."""
    face_units = template_landmarks(FaceProportions.from_cues(0.2, 0.3))
    half_width = 0.28 * size * scale  # jaw 0 to 16 spans ~56 % of the crop, as with a 40 % margin
    centre = np.array([size / 2 - 0.5, size * 0.36]) + np.asarray(shift, dtype=float) * size
    return centre + face_units * half_width


@pytest.fixture
def points64() -> np.ndarray:
    return crop_landmarks(64)
