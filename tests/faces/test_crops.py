"""Crops cut on demand: exact sampling, padding at every edge and corner (never wrapping),
transform round trips, streaming batches."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from dex_bias.faces import (
    CROP_COLUMNS,
    LANDMARK_X_COLUMNS,
    LANDMARK_Y_COLUMNS,
    crop_image,
    crop_to_image,
    crop_transforms,
    cut_crops,
    iter_crop_batches,
    landmarks_in_crop,
    transform_to_columns,
)
from dex_bias.imaging import ImageDecodeError

SIDE = 60


def coded_image(side: int = SIDE) -> np.ndarray:
    """Channel 0 encodes the column, channel 1 the row, channel 2 is constant: every pixel
    says where it came from, so a wrapped-around sample is caught."""
    image = np.zeros((side, side, 3), dtype=np.uint8)
    image[..., 0] = (np.arange(side) * 4)[None, :]
    image[..., 1] = (np.arange(side) * 4)[:, None]
    image[..., 2] = 77
    return image


def pixel_aligned(left: float, top: float, side: int) -> np.ndarray:
    """A transform whose crop pixel (j, i) lands exactly on image pixel (left + j, top + i)."""
    return np.array([[side, 0.0, left - 0.5], [0.0, side, top - 0.5]])


EDGES_AND_CORNERS = [(dx, dy) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dx, dy) != (0, 0)]


@pytest.mark.parametrize("dx,dy", EDGES_AND_CORNERS)
def test_edge_padding_replicates_the_nearest_edge_and_never_wraps(dx, dy):
    image = coded_image()
    # A crop as large as the image, shifted half-way out through an edge or a corner.
    left, top = dx * SIDE // 2, dy * SIDE // 2
    crop = crop_image(image, pixel_aligned(left, top, SIDE), SIDE, padding="edge")
    cols = np.clip(left + np.arange(SIDE), 0, SIDE - 1)
    rows = np.clip(top + np.arange(SIDE), 0, SIDE - 1)
    expected = image[np.ix_(rows, cols)]
    np.testing.assert_array_equal(crop, expected)
    # Wrap-around would bring in the far side's columns/rows, absent from the expected crop.
    far_cols = set(range(SIDE)) - set(cols.tolist())
    assert not far_cols & set((crop[..., 0] // 4).ravel().tolist())


@pytest.mark.parametrize("dx,dy", EDGES_AND_CORNERS)
def test_constant_padding_fills_outside_with_the_fill_colour(dx, dy):
    image = coded_image()
    left, top = dx * SIDE // 2, dy * SIDE // 2
    fill = (9, 200, 31)
    crop = crop_image(image, pixel_aligned(left, top, SIDE), SIDE, padding="constant", fill=fill)
    cols = left + np.arange(SIDE)
    rows = top + np.arange(SIDE)
    inside = ((rows >= 0) & (rows < SIDE))[:, None] & ((cols >= 0) & (cols < SIDE))[None, :]
    assert 0 < inside.sum() < SIDE * SIDE
    np.testing.assert_array_equal(crop[~inside], np.broadcast_to(fill, (int((~inside).sum()), 3)))
    expected = image[np.ix_(np.clip(rows, 0, SIDE - 1), np.clip(cols, 0, SIDE - 1))]
    np.testing.assert_array_equal(crop[inside], expected[inside])


def test_crop_entirely_outside_is_all_fill_or_all_edge():
    image = coded_image()
    far_right = pixel_aligned(3 * SIDE, 10, 20)
    assert (crop_image(image, far_right, 20, padding="constant", fill=5) == 5).all()
    edge = crop_image(image, far_right, 20, padding="edge")
    assert (edge[..., 0] == image[0, -1, 0]).all()  # the last column, never column 0


def test_bilinear_halfway_between_pixels_is_the_mean():
    image = coded_image()
    # Shifted by half a pixel: each sample sits midway between two columns.
    crop = crop_image(image, pixel_aligned(10.5, 10, 8), 8)
    np.testing.assert_array_equal(crop[0, :, 0], (np.arange(10, 18) * 4 + 2).astype(np.uint8))


def test_strong_downscale_averages_instead_of_aliasing():
    # A one-pixel checkerboard sampled at a 4x shrink would alias to solid black or white.
    checker = ((np.indices((64, 64)).sum(axis=0) % 2) * 255).astype(np.uint8)
    image = np.repeat(checker[..., None], 3, axis=2)
    crop = crop_image(image, pixel_aligned(0, 0, 64), 16)
    assert np.abs(crop.astype(int) - 128).max() <= 2


def test_rotated_transform_turns_the_image():
    image = coded_image()
    # u runs down the image, v runs right: the crop is the image transposed.
    transposed = np.array([[0.0, SIDE, -0.5], [SIDE, 0.0, -0.5]])
    crop = crop_image(image, transposed, SIDE)
    np.testing.assert_array_equal(crop, image.transpose(1, 0, 2))


def landmark_table(transforms: np.ndarray, points: np.ndarray, paths: list[str] | None = None) -> pd.DataFrame:
    columns = dict(transform_to_columns(transforms))
    columns.update({LANDMARK_X_COLUMNS[k]: points[:, k, 0] for k in range(points.shape[1])})
    columns.update({LANDMARK_Y_COLUMNS[k]: points[:, k, 1] for k in range(points.shape[1])})
    table = pd.DataFrame(columns)
    if paths is not None:
        table.insert(0, "path", paths)
    return table


def test_landmarks_in_crop_inverts_a_known_rotation_and_scale():
    rng = np.random.default_rng(3)
    angle, scale, size = np.deg2rad(20.0), 150.0, 112
    rotation = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    transform = np.concatenate([rotation, [[40.0], [-12.0]]], axis=1)[None]
    crop_points = rng.uniform(0, size - 1, size=(1, 68, 2))
    # Forward by hand: crop pixel p -> u = (p + 0.5) / size -> image = A u + t.
    unit = (crop_points + 0.5) / size
    image_points = unit @ rotation.T + transform[0, :, 2]
    table = landmark_table(transform, image_points)
    np.testing.assert_allclose(landmarks_in_crop(table, size), crop_points, atol=1e-9)
    np.testing.assert_allclose(crop_to_image(crop_points, transform, size), image_points, atol=1e-9)
    np.testing.assert_allclose(crop_transforms(table)[0], transform[0])


def test_a_landmark_pixel_is_where_its_colour_lands_in_the_crop():
    image = coded_image()
    transform = pixel_aligned(7, 13, 30)[None]
    point = np.array([[[20.0, 25.0]]])  # image column 20, row 25
    ((px, py),) = np.rint(landmarks_in_crop(landmark_table(transform, np.repeat(point, 68, 1)), 30)[0, :1]).astype(int)
    crop = crop_image(image, transform[0], 30)
    assert (crop[py, px, 0], crop[py, px, 1]) == (20 * 4, 25 * 4)


def test_missing_crop_columns_are_named():
    with pytest.raises(KeyError, match="crop_c"):
        crop_transforms(pd.DataFrame({c: [1.0] for c in CROP_COLUMNS if c != "crop_c"}))


@pytest.fixture
def image_files(tmp_path) -> list[str]:
    paths = []
    for k in range(7):
        image = coded_image()
        image[..., 2] = 10 * k  # tells the files apart
        path = tmp_path / f"{k}.png"
        Image.fromarray(image).save(path)
        paths.append(str(path))
    return paths


def test_cut_crops_matches_crop_image_per_file_with_and_without_threads(image_files):
    transforms = np.stack([pixel_aligned(k, 2 * k, 24) for k in range(len(image_files))])
    serial = cut_crops(image_files, transforms, 24)
    threaded = cut_crops(image_files, transforms, 24, workers=3)
    assert serial.shape == (7, 24, 24, 3) and serial.dtype == np.uint8
    np.testing.assert_array_equal(serial, threaded)
    for k, _path in enumerate(image_files):
        assert (serial[k, ..., 2] == 10 * k).all()
        np.testing.assert_array_equal(serial[k, 0, 0, :2], [4 * k, 8 * k])


def test_iter_crop_batches_streams_in_order_and_reports_bad_files(image_files, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not an image at all")
    paths = image_files[:3] + [str(broken)] + image_files[3:]
    transforms = np.stack([pixel_aligned(0, 0, 16)] * len(paths))
    table = pd.DataFrame(transform_to_columns(transforms)).assign(
        path=paths, image_id=[f"id{k}" for k in range(len(paths))]
    )

    failures = []
    batches = list(iter_crop_batches(table, 16, 3, on_error=lambda row, exc: failures.append((row["image_id"], exc))))
    assert [len(rows) for rows, _ in batches] == [3, 2, 2]
    kept = pd.concat([rows for rows, _ in batches])
    assert kept["image_id"].tolist() == [f"id{k}" for k in range(8) if k != 3]
    crops = np.concatenate([crops for _, crops in batches])
    np.testing.assert_array_equal(crops[:, 0, 0, 2], [0, 10, 20, 30, 40, 50, 60])
    assert [(image_id, type(exc)) for image_id, exc in failures] == [("id3", ImageDecodeError)]

    with pytest.raises(ImageDecodeError, match="broken.jpg"):
        list(iter_crop_batches(table, 16, 3))
