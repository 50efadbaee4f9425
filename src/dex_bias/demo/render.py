"""Draw one synthetic face: a shaded face on the 68-point template, with age, race and
gender cues, at a given pose. Pure NumPy + Pillow, a few milliseconds a face.

The drawing is made at ``SUPERSAMPLE`` times the output size and reduced with a box filter,
which anti-aliases every edge; dlib's HOG detector is trained on photographs and finds
smooth, shaded faces far more reliably than hard-edged cartoons.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from dex_bias.demo.template import (
    JAW,
    LEFT_BROW,
    LEFT_EYE,
    NOSTRILS,
    OUTER_LIPS,
    RIGHT_BROW,
    RIGHT_EYE,
    FaceProportions,
    head_outline,
    landmark_depth,
    template_landmarks,
)

SUPERSAMPLE = 2

#: Mean skin tone (sRGB) by UTKFace race code; each face jitters around it.
SKIN_TONES: dict[int, tuple[float, float, float]] = {
    0: (232, 192, 168),  # White
    1: (118, 80, 60),  # Black
    2: (226, 190, 152),  # Asian
    3: (172, 122, 92),  # Indian
    4: (196, 150, 116),  # Others
}
#: Hair tones (sRGB) by race code; one is drawn per face.
HAIR_TONES: dict[int, tuple[tuple[float, float, float], ...]] = {
    0: ((92, 62, 38), (150, 112, 64), (60, 42, 30), (196, 160, 100)),
    1: ((28, 22, 20), (40, 30, 26)),
    2: ((22, 20, 22), (38, 32, 30)),
    3: ((26, 22, 20), (48, 36, 28)),
    4: ((52, 38, 28), (34, 28, 24), (80, 56, 36)),
}
GREY_HAIR = (205, 205, 208)


@dataclass(frozen=True)
class FaceLook:
    """Everything that decides one face's drawing.

    ``youth``, ``ageing`` and ``greying`` are the age cues in [0, 1]; ``wrinkles`` scales the
    number and contrast of wrinkle lines. Pose: ``roll``/``yaw``/``pitch`` in degrees, ``scale``
    in pixels per face unit, ``centre`` (x, y) of the eye midpoint in pixels.
    """

    youth: float
    ageing: float
    greying: float
    wrinkles: float
    skin: tuple[float, float, float]
    hair: tuple[float, float, float]
    long_hair: bool
    background: tuple[tuple[float, float, float], tuple[float, float, float]]
    light: float  # -1 light from image left … 1 from the right
    roll: float
    yaw: float
    pitch: float
    scale: float
    centre: tuple[float, float]
    iris: tuple[float, float, float]


def posed_points(points: np.ndarray, depth: np.ndarray, look: FaceLook, size: int) -> np.ndarray:
    """Face units → output pixels: turn (yaw, pitch), roll, scale and place the points."""
    yaw, pitch, roll = np.radians([look.yaw, look.pitch, look.roll])
    x, y, z = points[:, 0], points[:, 1], depth
    x, z = x * np.cos(yaw) + z * np.sin(yaw), -x * np.sin(yaw) + z * np.cos(yaw)
    y = y * np.cos(pitch) - z * np.sin(pitch)
    c, s = np.cos(roll), np.sin(roll)
    xr, yr = c * x - s * y, s * x + c * y
    return np.column_stack([look.centre[0] + look.scale * xr, look.centre[1] + look.scale * yr])


def _poly(points: np.ndarray) -> list[tuple[float, float]]:
    return [(float(x), float(y)) for x, y in points * SUPERSAMPLE]


def _smooth_closed(points: np.ndarray, repeats: int = 2) -> np.ndarray:
    """Chaikin corner cutting: rounds a polygon so its outline has no sharp corners."""
    for _ in range(repeats):
        nxt = np.roll(points, -1, axis=0)
        points = np.column_stack([0.75 * points + 0.25 * nxt, 0.25 * points + 0.75 * nxt]).reshape(-1, 2)
    return points


def _tone(colour, factor: float) -> tuple[int, int, int]:
    return tuple(int(np.clip(round(c * factor), 0, 255)) for c in colour)


def render_face(look: FaceLook, rng: np.random.Generator, size: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """Draw one face; returns the (size, size, 3) uint8 RGB image and its 68 landmarks (68, 2)
    in output pixels (where the template put them: dlib's predictor lands within a few pixels).

    Colour shapes are drawn at ``SUPERSAMPLE`` x and reduced; the soft shading (face-edge
    fall-off, side light, shadows, wrinkles) is computed at the output size, where blurs are
    four times cheaper, and multiplied over the face.
    """
    big = size * SUPERSAMPLE
    props = FaceProportions.from_cues(look.youth, look.ageing)
    landmarks = posed_points(template_landmarks(props), landmark_depth(), look, size)
    outline = head_outline(props)
    head = posed_points(outline, np.full(len(outline), 0.2), look, size)

    def to_px(u: np.ndarray, depth: float = 0.3) -> np.ndarray:
        u = np.atleast_2d(u)
        return posed_points(u, np.full(len(u), depth), look, size)

    # Background: a vertical gradient between two tones.
    top, bottom = np.array(look.background[0], np.float32), np.array(look.background[1], np.float32)
    ramp = np.linspace(0.0, 1.0, big, dtype=np.float32)[:, None]
    column = np.ascontiguousarray((top * (1 - ramp) + bottom * ramp).astype(np.uint8)[:, None, :])
    image = Image.fromarray(column, "RGB").resize((big, big), Image.Resampling.NEAREST)
    draw = ImageDraw.Draw(image)

    hair_colour = tuple((1 - look.greying) * h + look.greying * g for h, g in zip(look.hair, GREY_HAIR))
    # Hair behind the head: long hair falls past the chin, short hair stops at the ears.
    hair_bottom = props.chin_y + 0.9 if look.long_hair else 0.15
    back = np.vstack(
        [
            to_px(np.array([[1.22, hair_bottom]])),
            posed_points(outline * np.array([1.18, 1.0]) + np.array([0.0, -0.08]), np.zeros(len(outline)), look, size),
            to_px(np.array([[-1.22, hair_bottom]])),
        ]
    )
    draw.polygon(_poly(_smooth_closed(back)), fill=_tone(hair_colour, 0.85))

    # Neck and shoulders.
    neck = to_px(np.array([[-0.45, 0.6], [0.45, 0.6], [0.5, props.chin_y + 1.2], [-0.5, props.chin_y + 1.2]]), 0.0)
    draw.polygon(_poly(neck), fill=_tone(look.skin, 0.78))
    shoulders = to_px(
        np.array(
            [
                [-2.4, props.chin_y + 2.4],
                [-1.6, props.chin_y + 0.95],
                [1.6, props.chin_y + 0.95],
                [2.4, props.chin_y + 2.4],
            ]
        ),
        0.0,
    )
    draw.polygon(_poly(_smooth_closed(shoulders, 1)), fill=tuple(int(v) for v in rng.integers(40, 200, 3)))

    # Face: the jaw line (left to right) closed over the crown (right to left).
    face = _smooth_closed(np.vstack([landmarks[JAW], head[1:-1]]))
    draw.polygon(_poly(face), fill=_tone(look.skin, 1.0))

    # Hair on top: a cap over the crown down to a hairline on the forehead.
    hairline_y = props.brow_y - 0.40 - 0.12 * look.youth
    cap_outline = outline * np.array([1.06, 1.0]) + np.array([0.0, -0.06])
    above = cap_outline[cap_outline[:, 1] < hairline_y - 0.05]
    hairline = np.column_stack(
        [
            np.linspace(-1.0, 1.0, 9),
            hairline_y + 0.12 * np.abs(np.linspace(-1.0, 1.0, 9)) ** 3,  # recedes at the temples
        ]
    )
    cap = np.vstack([posed_points(above, np.full(len(above), 0.2), look, size), to_px(hairline, 0.5)])
    draw.polygon(_poly(_smooth_closed(cap)), fill=_tone(hair_colour, 1.0))

    # Features: brows, eyes, nostrils, lips.
    brow_width = max(2, int(round((0.07 + 0.02 * (1 - look.youth)) * look.scale * SUPERSAMPLE)))
    brow_grey = look.greying * 0.6
    brow_colour = _tone(tuple((1 - brow_grey) * h + brow_grey * g for h, g in zip(look.hair, GREY_HAIR)), 0.8)
    for brow in (landmarks[LEFT_BROW], landmarks[RIGHT_BROW]):
        draw.line(_poly(brow), fill=brow_colour, width=brow_width, joint="curve")
    for eye in (landmarks[LEFT_EYE], landmarks[RIGHT_EYE]):
        _draw_eye(image, eye, look)
        draw.line(_poly(eye[:4]), fill=(30, 22, 20), width=max(2, int(0.04 * look.scale * SUPERSAMPLE)), joint="curve")
    for k in (0, 4):
        wing = landmarks[NOSTRILS][k] * 0.55 + landmarks[NOSTRILS][2] * 0.45
        draw.ellipse(_box(wing, 0.05 * look.scale, 0.03 * look.scale), fill=_tone(look.skin, 0.35))
    lip = tuple(0.72 * c + 0.28 * r for c, r in zip(look.skin, (170, 60, 60)))
    draw.polygon(_poly(_smooth_closed(landmarks[OUTER_LIPS], 1)), fill=_tone(lip, 0.82))
    draw.line(
        _poly(landmarks[[48, 61, 62, 63, 54]]),
        fill=_tone(lip, 0.38),
        width=max(1, int(0.03 * look.scale * SUPERSAMPLE)),
        joint="curve",
    )
    small = np.asarray(image.resize((size, size), Image.Resampling.BOX), dtype=np.float32)

    # Shading at the output size (0 = no darkening … 255 = black), inside the face only.
    face_mask = Image.new("L", (size, size), 0)
    ImageDraw.Draw(face_mask).polygon(_flat(face), fill=255)
    edge_blur = face_mask.filter(ImageFilter.GaussianBlur(0.28 * look.scale))
    shade = Image.new("L", (size, size), 0)
    sdraw = ImageDraw.Draw(shade)
    for eye in (landmarks[LEFT_EYE], landmarks[RIGHT_EYE]):  # eye sockets
        sdraw.ellipse(_box(eye.mean(axis=0), 0.34 * look.scale, 0.2 * look.scale, 1), fill=60)
    nose_side = np.array([[-0.12, 0.1], [-props.nose_half_width, props.nose_tip_y + 0.05]])
    for side in (-1, 1):
        sdraw.line(_flat(to_px(nose_side * np.array([side, 1]), 0.7)), fill=80, width=max(1, int(0.09 * look.scale)))
    sdraw.ellipse(
        _box(to_px(np.array([0.0, props.nose_tip_y + 0.16]), 0.8)[0], 0.22 * look.scale, 0.06 * look.scale, 1), fill=70
    )
    sdraw.ellipse(
        _box(
            to_px(np.array([0.0, props.mouth_y + props.lip_height + 0.14]), 0.6)[0],
            0.22 * look.scale,
            0.06 * look.scale,
            1,
        ),
        fill=60,
    )
    shade = shade.filter(ImageFilter.GaussianBlur(0.07 * look.scale))
    lines = _wrinkle_lines(props, look, to_px, size)

    mask = np.asarray(face_mask, dtype=np.float32) / 255.0
    falloff = 1.0 - 0.28 * mask * (1.0 - np.asarray(edge_blur, dtype=np.float32) / 255.0)
    across = (np.arange(size, dtype=np.float32) - look.centre[0]) / (look.scale * 1.1)
    side_light = 1.0 + 0.10 * look.light * np.clip(across, -1, 1)[None, :] * mask
    darkening = (np.asarray(shade, dtype=np.float32) + np.asarray(lines, dtype=np.float32)) * (mask / 255.0)
    factor = falloff * side_light * (1.0 - 0.55 * np.minimum(darkening, 1.0))
    pixels = small * factor[:, :, None]
    pixels += 3.0 * rng.standard_normal(pixels.shape, dtype=np.float32)  # sensor noise
    return np.clip(pixels, 0, 255).astype(np.uint8), landmarks


def _draw_eye(image: Image.Image, eye: np.ndarray, look: FaceLook) -> None:
    """Sclera, then iris and pupil clipped to the eye opening (drawn in a small box)."""
    outline = _smooth_closed(eye, 2)
    centre = eye.mean(axis=0)
    radius = 0.55 * (eye[:, 1].max() - eye[:, 1].min()) + 0.02 * look.scale
    left = int(np.floor((min(outline[:, 0].min(), centre[0] - radius) - 1) * SUPERSAMPLE))
    top = int(np.floor((min(outline[:, 1].min(), centre[1] - radius) - 1) * SUPERSAMPLE))
    right = int(np.ceil((max(outline[:, 0].max(), centre[0] + radius) + 1) * SUPERSAMPLE))
    bottom = int(np.ceil((max(outline[:, 1].max(), centre[1] + radius) + 1) * SUPERSAMPLE))
    offset = np.array([left, top]) / SUPERSAMPLE
    width, height = right - left, bottom - top
    region = image.crop((left, top, right, bottom))
    opening = Image.new("L", (width, height), 0)
    ImageDraw.Draw(opening).polygon(_poly(outline - offset), fill=255)
    region.paste((236, 232, 226), (0, 0), opening)
    iris = region.copy()
    idraw = ImageDraw.Draw(iris)
    local = centre - offset
    idraw.ellipse(_box(local, radius, radius), fill=tuple(int(c) for c in look.iris))
    idraw.ellipse(_box(local, radius * 0.45, radius * 0.45), fill=(12, 10, 10))
    region.paste(iris, (0, 0), opening)
    image.paste(region, (left, top))


def _wrinkle_lines(props: FaceProportions, look: FaceLook, to_px, size: int) -> Image.Image:
    """Forehead lines, crow's feet, eye bags, nasolabial and marionette lines as a darkening
    layer (output size); their number and contrast grow with ``look.wrinkles``."""
    lines = Image.new("L", (size, size), 0)
    ldraw = ImageDraw.Draw(lines)
    strength = look.wrinkles
    width = max(1, int(round(0.035 * look.scale)))
    if strength > 0.02:
        contrast = int(40 + 140 * strength)
        for k in range(int(round(1 + 4 * strength))):  # forehead
            y0 = props.brow_y - 0.16 - 0.11 * k
            xs = np.linspace(-0.5 + 0.05 * k, 0.5 - 0.05 * k, 6)
            ldraw.line(
                _flat(to_px(np.column_stack([xs, y0 - 0.03 * np.cos(xs * 2.0)]), 0.6)), fill=contrast, width=width
            )
        for side in (-1, 1):
            corner = np.array([side * (props.eye_half_gap + props.eye_width / 2 + 0.04), 0.0])
            for k in range(int(round(1 + 3 * strength))):  # crow's feet
                angle = np.radians(-25 + 25 * k)
                tip = corner + 0.16 * np.array([side * np.cos(angle), np.sin(angle)])
                ldraw.line(_flat(to_px(np.vstack([corner, tip]), 0.45)), fill=contrast, width=width)
            bag = np.column_stack(
                [
                    side * props.eye_half_gap + np.linspace(-0.14, 0.14, 5),
                    props.eye_opening / 2 + 0.06 + 0.03 * np.sin(np.linspace(0, np.pi, 5)),
                ]
            )
            ldraw.line(_flat(to_px(bag, 0.45)), fill=int(contrast * 0.8), width=width)
            if strength > 0.45:  # marionette lines below the mouth corners
                mc = np.array([side * (props.mouth_half_width + 0.03), props.mouth_y + 0.03])
                ldraw.line(_flat(to_px(np.vstack([mc, mc + [side * 0.03, 0.22]]), 0.6)), fill=contrast, width=width)
    # Nasolabial folds: faint in children, deep in old age.
    fold = int(35 + 120 * strength)
    for side in (-1, 1):
        wing = np.array([side * (props.nose_half_width + 0.05), props.nose_tip_y + 0.02])
        corner = np.array([side * (props.mouth_half_width + 0.06), props.mouth_y + 0.04])
        mid = (wing + corner) / 2 + np.array([side * 0.05, 0.0])
        ldraw.line(_flat(to_px(np.vstack([wing, mid, corner]), 0.6)), fill=fold, width=width)
    return lines.filter(ImageFilter.GaussianBlur(0.5))


def _flat(points: np.ndarray) -> list[tuple[float, float]]:
    """Points at the output size (no supersampling)."""
    return [(float(x), float(y)) for x, y in points]


def _box(centre: np.ndarray, rx: float, ry: float, scale: int = SUPERSAMPLE) -> list[float]:
    """Bounding box of an ellipse, at ``scale`` x the output size."""
    cx, cy = float(centre[0]), float(centre[1])
    return [scale * (cx - rx), scale * (cy - ry), scale * (cx + rx), scale * (cy + ry)]
