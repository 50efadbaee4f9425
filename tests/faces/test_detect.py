"""dlib alignment of one image: margin arithmetic, crop transforms (clamp, eye alignment),
coordinate bookkeeping through the padded and shrunk detection stages, failure reasons, and
detection + landmarks on synthetic and real faces."""

from __future__ import annotations

import math
import random
import sys

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from dex_bias.faces import crop_image, landmarks_in_crop
from dex_bias.faces.columns import LANDMARK_X_COLUMNS, LANDMARK_Y_COLUMNS
from dex_bias.faces.detect import (
    Detection,
    DetectionStage,
    NoFaceFound,
    align_chunk,
    align_image,
    crop_box,
    crop_transform,
    shape_predictor_path,
)
from tests.conftest import base_align_settings as align_settings
from tests.conftest import base_settings


def box(left, top, right, bottom) -> Detection:
    return Detection(left=left, top=top, right=right, bottom=bottom, score=1.0, face_count=1)


def points_of(row: dict) -> np.ndarray:
    return np.stack([[row[c] for c in LANDMARK_X_COLUMNS], [row[c] for c in LANDMARK_Y_COLUMNS]], axis=1)


def test_margin_adds_its_fraction_of_width_and_height_on_each_side():
    # A 40-wide, 50-high box (dlib boxes include their right and bottom pixels).
    detection = box(10, 20, 49, 69)
    assert crop_box(detection, 0.4) == pytest.approx((9.5 - 16, 19.5 - 20, 49.5 + 16, 69.5 + 20))
    assert crop_box(detection, 0.0) == pytest.approx((9.5, 19.5, 49.5, 69.5))
    transform = crop_transform(detection, 0.4)
    np.testing.assert_allclose(transform, [[40 * 1.8, 0, 9.5 - 16], [0, 50 * 1.8, 19.5 - 20]])


def test_zero_margin_crop_is_exactly_the_box_pixels():
    image = np.random.default_rng(0).integers(0, 256, (90, 120, 3), dtype=np.uint8)
    detection = box(30, 12, 69, 51)  # 40 x 40
    crop = crop_image(image, crop_transform(detection, 0.0), 40)
    np.testing.assert_array_equal(crop, image[12:52, 30:70])


def test_clamp_cuts_the_box_at_the_image_edge_and_pad_keeps_it():
    detection = box(0, 50, 39, 89)  # touches the left edge; the margin reaches beyond it
    clamped = crop_transform(detection, 0.4, image_size=(100, 100), edge="clamp")
    padded = crop_transform(detection, 0.4, image_size=(100, 100), edge="pad")
    assert clamped[0, 2] == pytest.approx(-0.5)  # starts at the image's left edge
    assert clamped[0, 0] + clamped[0, 2] == pytest.approx(39.5 + 16)  # right side unchanged
    assert clamped[1, 2] + clamped[1, 1] == pytest.approx(99.5)  # bottom cut at the image
    assert padded[0, 2] == pytest.approx(-0.5 - 16)
    with pytest.raises(ValueError, match="outside"):
        crop_transform(box(300, 300, 339, 339), 0.4, image_size=(100, 100), edge="clamp")


def test_settings_refuse_clamp_with_eye_alignment_and_bad_values():
    with pytest.raises(ValueError, match="edge"):
        align_settings(alignment="eyes", edge="clamp")
    with pytest.raises(ValueError, match="margin"):
        align_settings(margin=-0.1)
    with pytest.raises(ValueError, match="alignment"):
        align_settings(alignment="affine")


def test_eye_alignment_levels_the_eyes_in_the_crop():
    angle = math.radians(25)
    centre = np.array([100.0, 100.0])
    # Eye points on a line tilted by 25 degrees (subject's right eye on the image left).
    right_eye = centre + 20 * np.array([-math.cos(angle), -math.sin(angle)])
    left_eye = centre + 20 * np.array([math.cos(angle), math.sin(angle)])
    transform = crop_transform(box(60, 60, 140, 140), 0.4, eyes=(right_eye, left_eye))  # centre (100, 100)
    assert math.atan2(transform[1, 0], transform[0, 0]) == pytest.approx(angle)
    table = pd.DataFrame(
        {
            **{c: [v] for c, v in zip(("crop_a", "crop_b", "crop_c", "crop_d", "crop_e", "crop_f"), transform.ravel())},
            **{x: [right_eye[0] if k < 42 else left_eye[0]] for k, x in enumerate(LANDMARK_X_COLUMNS)},
            **{y: [right_eye[1] if k < 42 else left_eye[1]] for k, y in enumerate(LANDMARK_Y_COLUMNS)},
        }
    )
    in_crop = landmarks_in_crop(table, 224)[0]
    assert in_crop[36, 1] == pytest.approx(in_crop[42, 1])  # level
    assert in_crop[36, 0] < in_crop[42, 0]  # not mirrored
    assert in_crop[36:48, 0].mean() == pytest.approx(111.5)  # box centre stays the crop centre


def test_landmark_model_is_found_without_importing_its_package():
    sys.modules.pop("face_recognition_models", None)
    path = shape_predictor_path()
    assert path.name == "shape_predictor_68_face_landmarks.dat" and path.stat().st_size > 90_000_000
    assert "face_recognition_models" not in sys.modules


@pytest.fixture(scope="module")
def demo_faces() -> list[tuple[np.ndarray, np.ndarray]]:
    from dex_bias.demo.generate import plan_demo, render_demo_face

    demo = base_settings("ingest.demo", count=10, seed=7)
    return [render_demo_face(face, rng, 200) for face, rng in plan_demo(demo)]


def test_synthetic_faces_are_found_with_landmarks_near_the_template(demo_faces):
    errors = []
    for image, template in demo_faces:
        try:
            row = align_image(image, align_settings())
        except NoFaceFound:
            continue
        errors.append(np.median(np.linalg.norm(points_of(row) - template, axis=1)))
        assert row["face_count"] >= 1 and row["box_left"] < template[:, 0].mean() < row["box_right"]
    assert len(errors) >= 8, f"only {len(errors)} of 10 synthetic faces found"
    assert np.median(errors) < 4.0, f"landmarks off the template by {np.round(errors, 1)} px"


def test_padded_stage_reports_boxes_and_landmarks_in_unpadded_pixels(demo_faces):
    image = demo_faces[0][0]
    plain = align_image(image, align_settings(stages=(DetectionStage("plain", 1, 0.0),)))
    padded = align_image(image, align_settings(stages=(DetectionStage("padded", 1, 0.3),)))
    assert padded["detection_stage"] == "padded" and padded["border_pad"] == 60
    # The same face found on a bigger canvas: HOG's window grid shifts, so allow a few pixels.
    for side in ("box_left", "box_top", "box_right", "box_bottom"):
        assert abs(padded[side] - plain[side]) <= 8, side
    assert np.median(np.linalg.norm(points_of(padded) - points_of(plain), axis=1)) < 3


def test_large_images_are_shrunk_for_detection_but_landmarked_at_full_size(demo_faces):
    image, template = demo_faces[1]
    big = np.asarray(Image.fromarray(image).resize((600, 600), Image.BICUBIC))
    row = align_image(big, align_settings(max_side=200))
    full_template = (template + 0.5) * 3 - 0.5
    assert np.median(np.linalg.norm(points_of(row) - full_template, axis=1)) < 10
    small = align_image(image, align_settings())
    assert row["box_left"] == pytest.approx((small["box_left"] + 0.5) * 3 - 0.5, abs=3)


def test_no_face_and_unreadable_files_become_failures_with_reasons(tmp_path, demo_faces):
    blank = tmp_path / "blank.png"
    Image.fromarray(np.full((120, 120, 3), 128, np.uint8)).save(blank)
    face = tmp_path / "face.png"
    Image.fromarray(demo_faces[2][0]).save(face)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(Image.open(face).tobytes()[:500])
    aligned, failed = align_chunk(
        ["blank", "face", "broken", "gone"],
        [str(blank), str(face), str(broken), str(tmp_path / "gone.jpg")],
        align_settings(),
    )
    assert [row["image_id"] for row in aligned] == ["face"]
    assert {row["image_id"]: row["reason"] for row in failed} == {
        "blank": "no_face_found",
        "broken": "image_unreadable",
        "gone": "image_unreadable",
    }
    assert "missing_file" in next(row["detail"] for row in failed if row["image_id"] == "gone")


def test_real_chips_are_found_with_plausible_landmarks(utkface_dir):
    chips = sorted(p for p in utkface_dir.iterdir() if p.name.count("_") == 3)
    sample = random.Random(11).sample(chips, 8)
    found = 0
    for path in sample:
        image = np.asarray(Image.open(path).convert("RGB"))
        try:
            row = align_image(image, align_settings())
        except NoFaceFound:
            continue
        found += 1
        points = points_of(row)
        eyes_y = points[36:48, 1].mean()
        assert eyes_y < points[30, 1] < points[48:68, 1].mean() < points[8, 1], path.name  # eyes, nose, mouth, chin
        assert row["box_left"] < points[30, 0] < row["box_right"], path.name
    assert found >= 7
