"""dex_bias.imaging: decoding by content, conversions to RGB uint8, reasons for bad files."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dex_bias.imaging import (
    FULL_SIZE,
    ImageDecodeError,
    Reduction,
    decode_image,
    load_rgb,
    load_rgb_reduced,
    probe_image,
)


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    """A smooth colour image (JPEG-friendly), 80 x 96."""
    y, x = np.mgrid[0:80, 0:96]
    return np.stack([x * 2.5, y * 3.0, (x + y) * 1.4], axis=-1).clip(0, 255).astype(np.uint8)


def _write_jpeg(path: Path, pixels: np.ndarray, **kwargs) -> Path:
    Image.fromarray(pixels).save(path, format="JPEG", quality=95, **kwargs)
    return path


def test_rgb_jpeg_decodes_to_rgb_uint8(tmp_path, photo):
    rgb = load_rgb(_write_jpeg(tmp_path / "a.jpg", photo))
    assert rgb.shape == (80, 96, 3) and rgb.dtype == np.uint8
    assert np.abs(rgb.astype(int) - photo).mean() < 3  # the same picture, up to JPEG loss


def test_png_named_jpg_is_read_by_content(tmp_path, photo):
    path = tmp_path / "30_0_0_20170101000000000.jpg"
    Image.fromarray(photo).save(path, format="PNG")
    rgb, info = decode_image(path)
    assert info.source_format == "PNG"
    np.testing.assert_array_equal(rgb, photo)  # lossless: exactly the pixels written


def test_grayscale_becomes_three_equal_channels(tmp_path, photo):
    gray = photo[:, :, 1]
    path = tmp_path / "g.png"
    Image.fromarray(gray, "L").save(path)
    rgb, info = decode_image(path)
    assert info.source_mode == "L" and rgb.shape == (80, 96, 3)
    for channel in range(3):
        np.testing.assert_array_equal(rgb[:, :, channel], gray)


def test_sixteen_bit_png_is_scaled_not_clipped(tmp_path, photo):
    gray8 = photo[:, :, 0]
    path = tmp_path / "deep.png"
    Image.fromarray(gray8.astype(np.uint16) * 257).save(path)  # 16-bit: 0..65535
    rgb, info = decode_image(path)
    assert info.source_mode.startswith("I")
    assert rgb.dtype == np.uint8
    np.testing.assert_array_equal(rgb[:, :, 0], gray8)  # clipping would make everything 255


def test_cmyk_jpeg_is_converted(tmp_path, photo):
    path = tmp_path / "print.jpg"
    Image.fromarray(photo).convert("CMYK").save(path, format="JPEG", quality=95)
    rgb, info = decode_image(path)
    assert info.source_mode == "CMYK" and rgb.shape == (80, 96, 3)
    assert np.abs(rgb.astype(int) - photo).mean() < 8


def test_alpha_is_composited_over_white(tmp_path, photo):
    rgba = np.dstack([photo, np.full(photo.shape[:2], 255, np.uint8)])
    rgba[:10, :10, 3] = 0  # a transparent corner whose stored colour must not show
    path = tmp_path / "cut.png"
    Image.fromarray(rgba, "RGBA").save(path)
    rgb = load_rgb(path)
    assert (rgb[:10, :10] == 255).all()
    np.testing.assert_array_equal(rgb[20:, 20:], photo[20:, 20:])


def test_palette_image_is_converted(tmp_path, photo):
    path = tmp_path / "pal.png"
    Image.fromarray(photo).convert("P").save(path)
    rgb, info = decode_image(path)
    assert info.source_mode == "P" and rgb.shape == (80, 96, 3)
    assert np.abs(rgb.astype(int) - photo).mean() < 20


def test_exif_orientation_is_applied(tmp_path, photo):
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    path = _write_jpeg(tmp_path / "phone.jpg", photo, exif=exif.tobytes())
    info = probe_image(path)
    assert (info.width, info.height) == (80, 96)
    assert load_rgb(path).shape == (96, 80, 3)


@pytest.mark.parametrize("keep", [0.5, 0.9])
def test_truncated_jpeg_is_refused(tmp_path, photo, keep):
    whole = _write_jpeg(tmp_path / "whole.jpg", photo).read_bytes()
    path = tmp_path / "cut.jpg"
    path.write_bytes(whole[: int(len(whole) * keep)])
    with pytest.raises(ImageDecodeError) as caught:
        load_rgb(path)
    assert caught.value.reason == "truncated"
    with pytest.raises(ImageDecodeError):
        probe_image(path)  # the cheap check decodes every pixel too


def test_corrupt_header_is_refused(tmp_path, photo):
    whole = bytearray(_write_jpeg(tmp_path / "whole.jpg", photo).read_bytes())
    whole[2:40] = b"\x00" * 38  # wipe the segment headers after the start marker
    path = tmp_path / "bad.jpg"
    path.write_bytes(bytes(whole))
    with pytest.raises(ImageDecodeError) as caught:
        load_rgb(path)
    assert caught.value.reason in {"corrupt", "truncated", "not_an_image"}


@pytest.mark.parametrize("content, reason", [(b"", "empty_file"), (b"this is a text file\n", "not_an_image")])
def test_files_that_are_not_images(tmp_path, content, reason):
    path = tmp_path / "30_0_0_20170101000000000.jpg"
    path.write_bytes(content)
    with pytest.raises(ImageDecodeError) as caught:
        load_rgb(path)
    error = caught.value
    assert error.reason == reason and error.path == str(path)
    message = str(error)
    assert str(path) in message and "What to do" in message  # names the file and the fix


def test_missing_file(tmp_path):
    with pytest.raises(ImageDecodeError) as caught:
        probe_image(tmp_path / "gone.jpg")
    assert caught.value.reason == "missing_file"


def test_tiny_image_is_too_small_with_a_configurable_threshold(tmp_path, photo):
    path = _write_jpeg(tmp_path / "tiny.jpg", photo[:31, :60])
    with pytest.raises(ImageDecodeError) as caught:
        load_rgb(path)
    assert caught.value.reason == "too_small" and "31" in caught.value.detail
    assert load_rgb(path, min_side=31).shape == (31, 60, 3)
    assert probe_image(_write_jpeg(tmp_path / "ok.jpg", photo[:32, :32])).width == 32


def test_huge_image_is_refused_before_decoding(tmp_path, photo):
    path = _write_jpeg(tmp_path / "big.jpg", photo)
    with pytest.raises(ImageDecodeError) as caught:
        probe_image(path, max_pixels=80 * 96 - 1)
    assert caught.value.reason == "too_large"
    assert probe_image(path, max_pixels=80 * 96).height == 80


def test_decode_error_survives_pickling(tmp_path):
    import pickle

    error = ImageDecodeError(tmp_path / "x.jpg", "truncated", "cut short")
    again = pickle.loads(pickle.dumps(error))
    assert (again.path, again.reason, again.detail, str(again)) == (error.path, error.reason, error.detail, str(error))


# --- decoding no larger than needed (JPEG DCT scaling) ----------------------------------------------


@pytest.mark.parametrize(
    "max_reduction, scale", [(1, 1), (1.9, 1), (2, 2), (3.9, 2), (4, 4), (7.5, 4), (8, 8), (50, 8)]
)
def test_a_jpeg_decodes_at_the_largest_dct_scale_not_above_the_reduction_asked(tmp_path, photo, max_reduction, scale):
    path = _write_jpeg(tmp_path / "a.jpg", photo)
    rgb, reduction = load_rgb_reduced(path, max_reduction)
    assert reduction == Reduction(scale) and rgb.dtype == np.uint8
    assert rgb.shape == (-(-80 // scale), -(-96 // scale), 3)
    # The same picture, smaller: the full decode box-averaged by the scale.
    full = np.asarray(Image.fromarray(load_rgb(path)).reduce(scale), dtype=int)
    assert np.abs(rgb.astype(int) - full).mean() < 2


def test_other_formats_decode_at_full_size(tmp_path, photo):
    path = tmp_path / "30_0_0_20170101000000000.jpg"
    Image.fromarray(photo).save(path, format="PNG")  # a PNG named .jpg: no DCT to scale
    rgb, reduction = load_rgb_reduced(path, 8)
    assert reduction == FULL_SIZE
    np.testing.assert_array_equal(rgb, photo)


@pytest.mark.parametrize("keep", [0.5, 0.9])
def test_a_truncated_jpeg_is_refused_when_decoded_smaller_too(tmp_path, photo, keep):
    whole = _write_jpeg(tmp_path / "whole.jpg", photo).read_bytes()
    path = tmp_path / "cut.jpg"
    path.write_bytes(whole[: int(len(whole) * keep)])
    for max_reduction in (2, 4, 8):
        with pytest.raises(ImageDecodeError) as caught:
            load_rgb_reduced(path, max_reduction)
        assert caught.value.reason == "truncated"


def test_a_corrupt_or_missing_file_keeps_its_reason_when_decoded_smaller(tmp_path, photo):
    whole = bytearray(_write_jpeg(tmp_path / "whole.jpg", photo).read_bytes())
    whole[2:40] = b"\x00" * 38
    path = tmp_path / "bad.jpg"
    path.write_bytes(bytes(whole))
    with pytest.raises(ImageDecodeError) as caught:
        load_rgb_reduced(path, 4)
    assert caught.value.reason in {"corrupt", "truncated", "not_an_image"}
    with pytest.raises(ImageDecodeError) as caught:
        load_rgb_reduced(tmp_path / "gone.jpg", 4)
    assert caught.value.reason == "missing_file"


def test_min_side_and_max_pixels_apply_to_the_full_size_image_when_decoded_smaller(tmp_path, photo):
    path = _write_jpeg(tmp_path / "small.jpg", photo[:40, :48])
    rgb, reduction = load_rgb_reduced(path, 4, min_side=32)  # decoded 10 x 12, but 40 x 48 is large enough
    assert rgb.shape == (10, 12, 3) and reduction.scale == 4
    with pytest.raises(ImageDecodeError) as caught:
        load_rgb_reduced(path, 4, min_side=41)
    assert caught.value.reason == "too_small" and "40" in caught.value.detail
    with pytest.raises(ImageDecodeError) as caught:
        load_rgb_reduced(path, 4, max_pixels=40 * 48 - 1)
    assert caught.value.reason == "too_large"


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied_when_decoded_smaller(tmp_path, photo, orientation):
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = _write_jpeg(tmp_path / "phone.jpg", photo, exif=exif.tobytes())
    upright = load_rgb(path)
    rgb, reduction = load_rgb_reduced(path, 2)
    assert reduction.scale == 2 and rgb.shape == (upright.shape[0] // 2, upright.shape[1] // 2, 3)
    full = np.asarray(Image.fromarray(upright).reduce(2), dtype=int)
    assert np.abs(rgb.astype(int) - full).mean() < 2  # upright, not the stored way round


@pytest.mark.parametrize("layout", ["cmyk", "grayscale", "progressive"])
def test_cmyk_grayscale_and_progressive_jpegs_decode_smaller_to_rgb(tmp_path, photo, layout):
    path = tmp_path / f"{layout}.jpg"
    image = Image.fromarray(photo)
    if layout == "cmyk":
        image.convert("CMYK").save(path, quality=95)
    elif layout == "grayscale":
        image.convert("L").save(path, quality=95)
    else:
        image.save(path, quality=95, progressive=True)
    rgb, reduction = load_rgb_reduced(path, 4)
    assert reduction.scale == 4 and rgb.shape == (20, 24, 3) and rgb.dtype == np.uint8
    full = np.asarray(Image.fromarray(load_rgb(path)).reduce(4), dtype=int)
    assert np.abs(rgb.astype(int) - full).mean() < 2
