"""A parametric 68-point face template in dlib's (iBUG 300-W) landmark order.

Coordinates are in *face units*: the origin is midway between the eye centres, x runs to the
image's right, y downwards, and one unit is half the face's width at the cheeks. The template
is drawn here from simple proportions (not fitted to any image set), with two age cues:

- ``youth`` (0 adult … 1 infant): a child's face is rounder and relatively wider, its eyes
  larger and set lower in the head (a taller cranium above them), its nose and lower face
  shorter (the "baby schema"; Lorenz 1943, Alley 1981);
- ``ageing`` (0 young adult … 1 about 80): the jaw line sags into jowls, the chin drops, the
  eyelids droop and the nose widens a little.

Index ranges (dlib's): jaw 0-16 (image left to right through the chin), brows 17-21 and
22-26, nose bridge 27-30, nostrils 31-35, eyes 36-41 and 42-47, outer lips 48-59, inner
lips 60-67.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

JAW = slice(0, 17)
LEFT_BROW, RIGHT_BROW = slice(17, 22), slice(22, 27)
NOSE_BRIDGE, NOSTRILS = slice(27, 31), slice(31, 36)
LEFT_EYE, RIGHT_EYE = slice(36, 42), slice(42, 48)
OUTER_LIPS, INNER_LIPS = slice(48, 60), slice(60, 68)


@dataclass(frozen=True)
class FaceProportions:
    """Template proportions in face units (see the module docstring)."""

    eye_half_gap: float  # half the distance between eye centres
    eye_width: float
    eye_opening: float
    brow_y: float
    nose_tip_y: float
    nose_half_width: float
    mouth_y: float
    mouth_half_width: float
    lip_height: float
    chin_y: float
    head_top_y: float
    cheek_half_width: float
    jaw_squareness: float  # superellipse exponent of the jaw: 2 round, larger squarer
    jowl: float  # outward/downward sag of the lower jaw line

    @classmethod
    def from_cues(cls, youth: float, ageing: float) -> FaceProportions:
        """Proportions for age cues ``youth`` and ``ageing``, each in [0, 1]."""
        return cls(
            eye_half_gap=0.40 + 0.02 * youth,
            eye_width=0.34 + 0.12 * youth,
            eye_opening=(0.12 + 0.08 * youth) * (1.0 - 0.30 * ageing),
            brow_y=-0.30 - 0.05 * youth + 0.03 * ageing,
            nose_tip_y=0.58 - 0.22 * youth + 0.03 * ageing,
            nose_half_width=0.19 - 0.03 * youth + 0.04 * ageing,
            mouth_y=0.92 - 0.28 * youth + 0.06 * ageing,
            mouth_half_width=0.33 - 0.07 * youth + 0.02 * ageing,
            lip_height=0.10 + 0.02 * youth - 0.03 * ageing,
            chin_y=1.38 - 0.40 * youth + 0.10 * ageing,
            head_top_y=-1.45 - 0.30 * youth,
            cheek_half_width=1.0 + 0.06 * youth,
            jaw_squareness=2.0 + 0.6 * (1.0 - youth),
            jowl=0.10 * ageing,
        )


def _superellipse(t: np.ndarray, exponent: float) -> tuple[np.ndarray, np.ndarray]:
    c, s = np.cos(t), np.sin(t)
    power = 2.0 / exponent
    return np.sign(c) * np.abs(c) ** power, np.sign(s) * np.abs(s) ** power


def template_landmarks(p: FaceProportions) -> np.ndarray:
    """The 68 landmarks (68, 2) in face units, in dlib's order."""
    points = np.zeros((68, 2))
    jaw_top = -0.05
    t = np.linspace(0.0, np.pi, 17)
    cx, sy = _superellipse(t, p.jaw_squareness)
    jaw_x = -cx * p.cheek_half_width
    jaw_y = jaw_top + sy * (p.chin_y - jaw_top)
    # Jowls: the lower-middle jaw (points 4-6 and 10-12) bulges out and down with age.
    bulge = np.exp(-((np.abs(np.arange(17) - 8) - 3.5) ** 2) / 2.0)
    jaw_x += np.sign(jaw_x) * p.jowl * 0.6 * bulge
    jaw_y += p.jowl * bulge
    points[JAW] = np.column_stack([jaw_x, jaw_y])

    # Brows: an arch over each eye; dlib orders both brows from image left to right.
    u = np.linspace(0.0, 1.0, 5)
    for side, sl in ((-1, LEFT_BROW), (1, RIGHT_BROW)):
        outer, inner = side * (p.eye_half_gap + 0.30), side * 0.12
        x = outer + (inner - outer) * u
        y = p.brow_y - 0.07 * np.sin(np.pi * (0.3 + 0.6 * u))
        order = np.argsort(x)
        points[sl] = np.column_stack([x[order], y[order]])

    # Nose bridge from between the eyes to the tip; nostril base under it.
    points[NOSE_BRIDGE] = np.column_stack([np.zeros(4), np.linspace(0.02, p.nose_tip_y, 4)])
    w = p.nose_half_width
    points[NOSTRILS] = np.array(
        [
            [-w, p.nose_tip_y + 0.06],
            [-w / 2, p.nose_tip_y + 0.10],
            [0.0, p.nose_tip_y + 0.12],
            [w / 2, p.nose_tip_y + 0.10],
            [w, p.nose_tip_y + 0.06],
        ]
    )

    # Eyes, each from its image-left corner over the upper lid to the right corner and back
    # under the lower lid (dlib: 36 outer, 39 inner; 42 inner, 45 outer).
    for side, sl in ((-1, LEFT_EYE), (1, RIGHT_EYE)):
        c, hw, h = side * p.eye_half_gap, p.eye_width / 2, p.eye_opening / 2
        points[sl] = np.array(
            [
                [c - hw, 0.0],
                [c - hw / 3, -h],
                [c + hw / 3, -h],
                [c + hw, 0.0],
                [c + hw / 3, h * 0.8],
                [c - hw / 3, h * 0.8],
            ]
        )

    # Lips: outer contour from the left corner over the upper lip and back under the lower.
    m, mw, lh = p.mouth_y, p.mouth_half_width, p.lip_height
    points[OUTER_LIPS] = np.array(
        [
            [-mw, m],
            [-mw * 0.6, m - lh * 0.8],
            [-mw * 0.25, m - lh],
            [0.0, m - lh * 0.8],
            [mw * 0.25, m - lh],
            [mw * 0.6, m - lh * 0.8],
            [mw, m],
            [mw * 0.6, m + lh * 0.9],
            [mw * 0.25, m + lh * 1.1],
            [0.0, m + lh * 1.15],
            [-mw * 0.25, m + lh * 1.1],
            [-mw * 0.6, m + lh * 0.9],
        ]
    )
    points[INNER_LIPS] = np.array(
        [
            [-mw * 0.85, m],
            [-mw * 0.3, m - lh * 0.15],
            [0.0, m - lh * 0.1],
            [mw * 0.3, m - lh * 0.15],
            [mw * 0.85, m],
            [mw * 0.3, m + lh * 0.15],
            [0.0, m + lh * 0.1],
            [-mw * 0.3, m + lh * 0.15],
        ]
    )
    return points


def landmark_depth() -> np.ndarray:
    """A rough depth (towards the camera, face units) of each landmark, for turning the head."""
    z = np.zeros(68)
    z[JAW] = 0.25 * np.sin(np.linspace(0.0, np.pi, 17)) ** 2
    z[LEFT_BROW] = z[RIGHT_BROW] = 0.55
    z[NOSE_BRIDGE] = np.linspace(0.6, 1.0, 4)
    z[NOSTRILS] = [0.7, 0.8, 0.85, 0.8, 0.7]
    z[LEFT_EYE] = z[RIGHT_EYE] = 0.45
    z[OUTER_LIPS] = z[INNER_LIPS] = 0.65
    return z


def head_outline(p: FaceProportions, n: int = 24) -> np.ndarray:
    """The top of the head (n, 2) from the right ear over the crown to the left ear (face units)."""
    jaw_top = -0.05
    t = np.linspace(0.0, np.pi, n)
    cx, sy = _superellipse(t, 2.2)
    x = cx * p.cheek_half_width * 1.02
    y = jaw_top - sy * (jaw_top - p.head_top_y)
    return np.column_stack([x, y])
