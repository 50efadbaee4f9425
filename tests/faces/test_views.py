"""Views: dlib face chips as dlib cuts them, their geometry in our crop convention, margin boxes, streaming."""

from __future__ import annotations

import dlib
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from dex_bias.faces import crop_image, crop_to_image, crop_transforms, cut_crops, landmarks_in_crop
from dex_bias.faces.detect import align_image, five_point_model
from dex_bias.faces.views import (
    STORED_CROP,
    CropSpec,
    chip_details,
    chip_transform,
    decode_reduction,
    iter_view_batches,
    margin_box_transforms,
    view_transforms,
)
from tests.conftest import base_align_settings, base_settings


@pytest.fixture(scope="module")
def demo_table(tmp_path_factory):
    """Three aligned demo faces as a faces + landmarks table (files on disk)."""
    from dex_bias.demo.generate import plan_demo, render_demo_face

    folder = tmp_path_factory.mktemp("views")
    settings = base_align_settings()
    rows = []
    for index, (face, rng) in enumerate(plan_demo(base_settings("ingest.demo", count=3, seed=5))):
        image, _ = render_demo_face(face, rng, 200)
        path = folder / f"face_{index}.png"
        Image.fromarray(image).save(path)
        rows.append(
            {"image_id": path.name, "path": str(path), "width": 200, "height": 200, **align_image(image, settings)}
        )
    return pd.DataFrame(rows)


def five_points(row: pd.Series) -> np.ndarray:
    return np.stack([[row[f"x5_{k}"] for k in range(5)], [row[f"y5_{k}"] for k in range(5)]], axis=1)


def test_a_dlib_chip_is_the_chip_dlib_cuts_from_the_same_five_points(demo_table):
    crop = CropSpec(style="dlib_chip", padding=0.2, landmarks=5)
    _, (ours,) = next(iter_view_batches(demo_table, [(crop, 64)], 8))
    for index, row in demo_table.iterrows():
        image = np.asarray(Image.open(row["path"]).convert("RGB"))
        # dlib's own chain: the 5-point model in the upsample-0 box, then get_face_chip_details.
        box = dlib.get_frontal_face_detector()(image, 0)[0]
        shape = five_point_model()(image, box)
        theirs = np.asarray(dlib.extract_image_chip(image, dlib.get_face_chip_details(shape, 64, 0.2)))
        np.testing.assert_array_equal(ours[index], theirs)
        assert row["five_point_box"] == "upsample_0"


def test_chip_geometry_in_our_convention_maps_pixels_where_dlib_samples_them(demo_table):
    # Images whose value is their own x (or y) coordinate: a bilinear sample of a ramp is exact, so
    # dlib's chip of them says, pixel by pixel, which image point dlib read (no pyramid at this size).
    ramp_x = np.tile(np.arange(400, dtype=np.float32), (400, 1))
    points = five_points(demo_table.iloc[0]) + 100.0  # well inside the 400 px ramp
    details = chip_details(points, 150, 0.2)
    theirs = np.stack(
        [
            np.asarray(dlib.extract_image_chip(ramp_x, details)),
            np.asarray(dlib.extract_image_chip(np.ascontiguousarray(ramp_x.T), details)),
        ],
        axis=-1,
    )
    rows, columns = np.mgrid[0:150, 0:150]
    centres = np.stack([columns.ravel(), rows.ravel()], axis=1).astype(float)
    ours = crop_to_image(centres[None], chip_transform(details)[None], 150)[0].reshape(150, 150, 2)
    np.testing.assert_allclose(ours, theirs, atol=2e-3)
    # Without dlib's pyramid (a chip larger than its rectangle), the two samplers agree too.
    row = demo_table.iloc[0]
    image = np.asarray(Image.open(row["path"]).convert("RGB"))
    details = chip_details(five_points(row), 300, 0.2)
    theirs = np.asarray(dlib.extract_image_chip(image, details)).astype(float)
    ours = crop_image(image, chip_transform(details), 300, padding="constant").astype(float)
    assert np.abs(ours - theirs)[20:-20, 20:-20].mean() < 1.0


def test_landmarks_are_drawn_in_any_models_crop(demo_table):
    crop = CropSpec(style="dlib_chip", padding=0.2, landmarks=5)
    transforms = view_transforms(demo_table, crop, 64)
    points = landmarks_in_crop(demo_table, 64, transforms)
    assert points.shape == (3, 68, 2)
    # The chip is centred on the eyes and nose: those landmarks land well inside it.
    eyes_and_nose = points[:, [36, 39, 42, 45, 30]]
    assert ((eyes_and_nose > 5) & (eyes_and_nose < 59)).all()
    np.testing.assert_allclose(
        landmarks_in_crop(demo_table, 64, view_transforms(demo_table, STORED_CROP, 64)),
        landmarks_in_crop(demo_table, 64),
    )


@pytest.mark.parametrize("edge", ["pad", "clamp"])
def test_margin_boxes_are_aligns_own_crop_transform(edge):
    from dex_bias.faces.detect import Detection, crop_transform

    boxes = [(50.0, 60.0, 89.0, 109.0), (10.0, 20.0, 49.0, 69.0), (-30.0, 0.0, 109.0, 139.0)]
    table = pd.DataFrame(boxes, columns=["box_left", "box_top", "box_right", "box_bottom"]).assign(
        width=120, height=150
    )
    ours = margin_box_transforms(table, 0.4, edge)
    for transform, (left, top, right, bottom) in zip(ours, boxes):
        detection = Detection(left=left, top=top, right=right, bottom=bottom, score=1.0, face_count=1)
        np.testing.assert_allclose(transform, crop_transform(detection, 0.4, image_size=(150, 120), edge=edge))


def test_missing_five_points_name_the_fix(demo_table):
    without = demo_table.drop(columns=[c for c in demo_table.columns if c.startswith(("x5_", "y5_"))])
    with pytest.raises(KeyError, match="align.five_point.enabled: true"):
        view_transforms(without, CropSpec(style="dlib_chip"), 64)


def test_views_stream_every_view_of_each_image_once_and_report_bad_files(demo_table, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not an image")
    table = pd.concat([demo_table, demo_table.iloc[[0]].assign(image_id="broken", path=str(broken))], ignore_index=True)
    failures = []
    views = [(CropSpec(style="dlib_chip"), 64), (CropSpec(style="dlib_chip"), 32), (STORED_CROP, 48)]
    batches = list(iter_view_batches(table, views, 2, on_error=lambda row, exc: failures.append(row["image_id"])))
    rows = pd.concat([rows for rows, _ in batches])
    assert rows["image_id"].tolist() == demo_table["image_id"].tolist() and failures == ["broken"]
    shapes = {tuple(crops.shape[1:]) for _, views_ in batches for crops in views_}
    assert shapes == {(64, 64, 3), (32, 32, 3), (48, 48, 3)}


def test_a_dlib_chip_gets_the_full_size_image_even_beside_a_view_that_allows_less(demo_table, tmp_path):
    """JPEG files: the 32 px stored crop alone would decode them at 1/4 (200 px → 50 px); with a
    dlib chip in the same views every image is decoded at full size, and the chip is dlib's own."""
    table = demo_table.copy()
    for index, row in table.iterrows():
        path = tmp_path / f"face_{index}.jpg"
        Image.open(row["path"]).save(path, quality=95)
        table.loc[index, "path"] = str(path)
    chip = CropSpec(style="dlib_chip", padding=0.2, landmarks=5)
    assert decode_reduction(chip, 64) == 1.0
    stored = crop_transforms(table)
    assert all(decode_reduction(STORED_CROP, 32, transform) >= 2 for transform in stored)

    _, (chips, alone_and_beside) = next(iter_view_batches(table, [(chip, 64), (STORED_CROP, 32)], 8))
    _, (alone,) = next(iter_view_batches(table, [(STORED_CROP, 32)], 8))
    for index, row in table.iterrows():
        image = np.asarray(Image.open(row["path"]).convert("RGB"))
        theirs = dlib.extract_image_chip(image, chip_details(five_points(row), 64, 0.2))
        np.testing.assert_array_equal(chips[index], np.asarray(theirs))
        # Beside the chip, the stored crop is cut from the full-size image.
        np.testing.assert_array_equal(alone_and_beside[index], crop_image(image, stored[index], 32))
    # Alone, it is decoded smaller: cut_crops cuts the same pixels, close to the full-size crop.
    np.testing.assert_array_equal(alone, cut_crops(table["path"].tolist(), stored, 32))
    assert np.abs(alone.astype(int) - alone_and_beside).mean() < 3
