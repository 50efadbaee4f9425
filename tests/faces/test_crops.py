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
from dex_bias.faces.crops import crop_reduction, read_image_reduced, reduced_transform
from dex_bias.imaging import ImageDecodeError, Reduction, load_rgb

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


# --- crops from an image decoded smaller (JPEG DCT scaling) -----------------------------------------


def structured_image(height: int = 157, width: int = 203) -> np.ndarray:
    """Waves of different periods in each channel: a crop sampled half a pixel off shows."""
    y, x = np.mgrid[0:height, 0:width]
    waves = [np.sin(2 * np.pi * x / 24) * 100, np.sin(2 * np.pi * y / 30) * 100, np.sin(2 * np.pi * (x + y) / 34) * 80]
    return (128 + np.stack(waves, axis=-1)).round().astype(np.uint8)


ROTATED = np.array([[140 * np.cos(0.3), -140 * np.sin(0.3), 40.0], [140 * np.sin(0.3), 140 * np.cos(0.3), 5.0]])


def test_the_decode_reduction_is_the_crops_sample_spacing():
    assert crop_reduction(pixel_aligned(0, 0, 64), 64) == pytest.approx(1.0)
    assert crop_reduction(np.array([[200.0, 0, -0.5], [0, 200.0, -0.5]]), 64) == pytest.approx(3.125)
    assert crop_reduction(np.array([[150.0, 0, 0], [0, 120.0, 0]]), 60) == pytest.approx(2.0)  # the denser axis
    assert crop_reduction(ROTATED, 32) == pytest.approx(140 / 32)


def test_reduced_transform_puts_reduced_pixel_centres_where_box_averaging_puts_them():
    # Box-averaged by 4, pixel k is the mean of pixels 4k .. 4k+3: centre 4k + 1.5 in the image.
    image = coded_image(SIDE)
    reduced = np.asarray(Image.fromarray(image).reduce(4))
    transform = reduced_transform(pixel_aligned(1.5, 5.5, 60), 4)  # image pixel 1.5 -> reduced pixel 0
    np.testing.assert_allclose(transform, [[15.0, 0.0, -0.125], [0.0, 15.0, 0.875]])
    # A 4 px crop, 4 image pixels a crop pixel, centred on x = 1.5 + 4j, y = 5.5 + 4i: reduced (i + 1, j).
    every_fourth = np.array([[16.0, 0.0, -0.5], [0.0, 16.0, 3.5]])
    crop = crop_image(reduced, reduced_transform(every_fourth, 4), 4)
    np.testing.assert_array_equal(crop, reduced[1:5, :4])
    mirrored = reduced_transform(np.eye(2, 3), Reduction(4, 0.25, 0.75))
    np.testing.assert_allclose(mirrored[:, 2], [0.125 - 0.5 + 0.25, 0.125 - 0.5 + 0.75])


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize(
    "transform, size, scale", [(np.array([[150.0, 0, 20], [0, 120.0, 15]]), 60, 2), (ROTATED, 32, 4)]
)
def test_a_crop_from_the_jpeg_decoded_smaller_matches_the_crop_from_the_full_decode(
    tmp_path, orientation, transform, size, scale
):
    """Every EXIF orientation, on a side that is not a multiple of the scale (the mirrored axes'
    part-filled last block comes first): the crop lands on the same pixels, within JPEG and
    resampling noise, while a transform without the half-pixel term or the mirror offsets is
    several grey levels off."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / "waves.jpg"
    Image.fromarray(structured_image()).save(path, quality=95, subsampling=0, exif=exif.tobytes())
    full = crop_image(load_rgb(path), transform, size).astype(int)

    (fast,) = cut_crops([str(path)], transform[None], size)  # the pipeline's own path
    small, reduction = read_image_reduced(path, crop_reduction(transform, size))
    assert reduction.scale == scale
    np.testing.assert_array_equal(fast, crop_image(small, reduced_transform(transform, reduction), size))
    error = np.abs(fast - full).mean()
    assert error < 3.5

    def error_of(moved: np.ndarray) -> float:
        return np.abs(crop_image(small, moved, size) - full).mean()

    assert error_of(transform / scale) > max(6.0, 2 * error)  # scaled, without the half-pixel term
    if reduction != Reduction(scale):  # a mirrored axis: without its offset
        assert error_of(reduced_transform(transform, Reduction(scale))) > max(6.0, 2 * error)


def test_crops_of_real_chips_decoded_smaller_stay_close_to_the_full_decode(utkface_dir):
    """300 UTKFace chips (200 px JPEGs): the infer benchmark's whole-chip 64 px crop (decoded at
    1/2, where the full decode was box-averaged by 3) and a face-sized 140 px box at 64 px."""
    paths = sorted(str(p) for p in utkface_dir.glob("*.jpg.chip.jpg"))[::30][:300]
    assert len(paths) == 300
    for transform, bound in [
        (np.array([[200.0, 0, -0.5], [0, 200.0, -0.5]]), 2.5),
        (np.array([[140.0, 0, 29.5], [0, 140.0, 29.5]]), 0.6),
    ]:
        fast = cut_crops(paths, np.repeat(transform[None], len(paths), axis=0), 64, workers=2).astype(int)
        full = np.stack([crop_image(load_rgb(path), transform, 64) for path in paths])
        assert read_image_reduced(paths[0], crop_reduction(transform, 64))[1].scale == 2
        assert np.abs(fast - full).mean() < bound
