"""Decode any image file to 8-bit RGB, with a reason for what cannot be decoded.

Files are decoded by their content, never by their extension: a PNG named ``.jpg`` is read as
the PNG it is. Every colour layout Pillow reads is converted to RGB ``uint8``:

- grayscale (``1``, ``L``), palette (``P``) and ``YCbCr``/``LAB``/``HSV`` through Pillow;
- ``CMYK`` (print JPEGs) through Pillow's CMYK→RGB conversion;
- alpha (``RGBA``, ``LA``, ``PA``, palette transparency) composited over white, because
  transparent pixels carry arbitrary colour values that would otherwise show;
- 16-bit grayscale (``I;16*``, ``I``) scaled by 255/65535 (Pillow's own conversion clips it);
  32-bit float (``F``) read as 0-1 when its maximum is ≤ 1, else as 0-255;
- EXIF orientation applied, so that a phone photo's face is upright;
- multi-frame files (GIF, TIFF): the first frame.

:func:`load_rgb_reduced` decodes a JPEG at 1/2, 1/4 or 1/8 of its size where the caller can use
that (libjpeg's DCT scaling: cheaper than decoding every pixel and shrinking afterwards), with
the same checks, and says in a :class:`Reduction` where the full-size pixels went.

What cannot be decoded raises :class:`ImageDecodeError` with a short ``reason`` code (see
:data:`DECODE_REASONS`); its message names the file, what is wrong and what to do.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

#: Images with a side shorter than this (pixels) hold too little face to detect or to age.
DEFAULT_MIN_SIDE = 32
#: Images with more pixels than this are refused before decoding (memory: 4 bytes a pixel).
DEFAULT_MAX_PIXELS = 50_000_000

#: Reason codes of :class:`ImageDecodeError`, with what to do about each.
DECODE_REASONS: dict[str, str] = {
    "missing_file": "check the path; the file may have been moved or deleted after the scan",
    "unreadable": "check the file's permissions and the disk",
    "empty_file": "re-copy the file from its source, or remove it from the image folder",
    "not_an_image": "remove it from the image folder, or replace it with the image it should be",
    "truncated": "re-copy or re-download the file (it was cut short), or remove it from the image folder",
    "corrupt": "re-copy or re-download the file, or remove it from the image folder",
    "unsupported_mode": "convert it to an 8-bit RGB JPEG or PNG (e.g. with Pillow or ImageMagick)",
    "too_small": "use a larger image of the face, or lower the minimum side (ingest.decode.min_side)",
    "too_large": "downscale the image, or raise the pixel limit (ingest.decode.max_pixels)",
}


class ImageDecodeError(ValueError):
    """An image file that cannot be turned into RGB pixels.

    Attributes: ``path`` (the file), ``reason`` (a key of :data:`DECODE_REASONS`) and
    ``detail`` (what was found, e.g. the decoder's own message or the image size).
    """

    def __init__(self, path: str | os.PathLike, reason: str, detail: str):
        self.path = str(path)
        self.reason = reason
        self.detail = detail
        fix = DECODE_REASONS.get(reason, "check the file")
        super().__init__(f"cannot use image {self.path} ({reason}): {detail}. What to do: {fix}.")

    def __reduce__(self):  # picklable across process pools (Dask, multiprocessing)
        return (type(self), (self.path, self.reason, self.detail))


@dataclass(frozen=True)
class ImageInfo:
    """What a decodable image file holds: size after EXIF orientation (pixels), the format
    found in its content (``JPEG``, ``PNG``, ...) and Pillow's mode before conversion."""

    width: int
    height: int
    source_format: str
    source_mode: str


@dataclass(frozen=True)
class Reduction:
    """Where a full-size (upright) pixel coordinate lies in an array decoded at ``1/scale`` of the size.

    Pixel centres at integer coordinates (as in :mod:`dex_bias.faces.crops`): decoded pixel ``k``
    covers full-size pixels ``[k·scale, (k+1)·scale)`` of the stored image, so full-size ``x`` lies at
    ``(x + 0.5) / scale - 0.5 + offset_x`` (``y`` likewise). The offsets are non-zero only on an axis
    that EXIF orientation mirrors and whose side is not a multiple of ``scale``: the part-filled
    last block of the stored image then comes first.
    """

    scale: int = 1
    offset_x: float = 0.0
    offset_y: float = 0.0


#: A decode at full size.
FULL_SIZE = Reduction()
#: The reductions JPEG decoding applies itself (DCT scaling), largest first.
JPEG_DRAFT_SCALES = (8, 4, 2)
#: EXIF orientations that mirror the upright image's (x, y) axes (ImageOps.exif_transpose's transposes).
_MIRRORED = {2: (True, False), 3: (True, True), 4: (False, True), 6: (True, False), 7: (True, True), 8: (False, True)}
_TURNED = (5, 6, 7, 8)


def _open(path: Path, max_pixels: int) -> Image.Image:
    """Open (header only) with the decode errors mapped to reason codes."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise ImageDecodeError(path, "missing_file", "no such file") from None
    except OSError as exc:
        raise ImageDecodeError(path, "unreadable", str(exc)) from None
    if size == 0:
        raise ImageDecodeError(path, "empty_file", "the file has 0 bytes")
    try:
        with warnings.catch_warnings():
            # Our own pixel limit is checked below with a clear message; Pillow's global
            # bomb warning would only add noise.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path)
    except UnidentifiedImageError:
        raise ImageDecodeError(
            path, "not_an_image", f"its {size} bytes are not in any image format Pillow reads"
        ) from None
    except Image.DecompressionBombError as exc:
        raise ImageDecodeError(path, "too_large", str(exc)) from None
    except PermissionError as exc:
        raise ImageDecodeError(path, "unreadable", str(exc)) from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageDecodeError(path, "corrupt", f"the header cannot be read ({exc})") from None
    width, height = image.size
    if width * height > max_pixels:
        image.close()
        raise ImageDecodeError(
            path, "too_large", f"{width}x{height} = {width * height:,} pixels, above the limit of {max_pixels:,}"
        )
    return image


def _decode(path: Path, image: Image.Image) -> Image.Image:
    """Decode all pixel data (first frame) and apply EXIF orientation."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image.load()
            return ImageOps.exif_transpose(image)
    except Image.DecompressionBombError as exc:
        raise ImageDecodeError(path, "too_large", str(exc)) from None
    except OSError as exc:
        message = str(exc)
        reason = "truncated" if "truncated" in message or "premature end" in message.lower() else "corrupt"
        raise ImageDecodeError(path, reason, f"decoding stopped: {message}") from None
    except (SyntaxError, ValueError, EOFError, IndexError, TypeError) as exc:
        raise ImageDecodeError(path, "corrupt", f"decoding failed: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - format plugins raise odd types (struct.error...); one bad file must not stop a run
        raise ImageDecodeError(path, "corrupt", f"decoding failed: {type(exc).__name__}: {exc}") from None


def _draft(image: Image.Image, max_reduction: float) -> int:
    """Ask a JPEG's decoder for the largest DCT scaling 1/s (s ≤ ``max_reduction``) before decoding: s."""
    width, height = image.size
    scale = next((s for s in JPEG_DRAFT_SCALES if s <= max_reduction and min(width, height) >= s), 1)
    if scale == 1 or image.format != "JPEG":
        return 1
    drafted = image.draft(None, (width // scale, height // scale))
    # Pillow picks the scale from the requested size; read back the one it chose.
    return 1 if drafted is None else round(width / drafted[1][2])


def _check_size(path: Path, size: tuple[int, int], min_side: int) -> None:
    width, height = size
    if min(width, height) < min_side:
        raise ImageDecodeError(
            path, "too_small", f"{width}x{height} pixels; the shorter side must be at least {min_side}"
        )


def _to_rgb(path: Path, image: Image.Image) -> np.ndarray:
    """Convert any decoded Pillow image to an (H, W, 3) uint8 RGB array."""
    mode = image.mode
    if mode == "RGB":
        return np.asarray(image, dtype=np.uint8)
    if mode.startswith("I;16") or mode == "I":
        # 16-bit (or 32-bit integer) luminance: scale the full 16-bit range to 8 bits.
        values = np.asarray(image).astype(np.float64)
        if mode == "I" and values.max(initial=0) <= 255:
            gray = values
        else:
            gray = values * (255.0 / 65535.0)
        gray = np.clip(np.rint(gray), 0, 255).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if mode == "F":
        values = np.asarray(image, dtype=np.float64)
        scale = 255.0 if values.max(initial=0) <= 1.0 else 1.0
        gray = np.clip(np.rint(values * scale), 0, 255).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in image.info)
    try:
        if has_alpha:
            rgba = image.convert("RGBA")
            white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            converted = Image.alpha_composite(white, rgba).convert("RGB")
        else:
            converted = image.convert("RGB")
    except (ValueError, OSError) as exc:
        raise ImageDecodeError(
            path, "unsupported_mode", f"Pillow mode {mode!r} cannot be converted to RGB ({exc})"
        ) from None
    return np.asarray(converted, dtype=np.uint8)


@contextmanager
def _decoded(
    path: Path, min_side: int, max_pixels: int, max_reduction: float = 1
) -> Iterator[tuple[Image.Image, ImageInfo, Reduction]]:
    """The file's first frame fully decoded, upright and at least ``min_side`` pixels a side,
    with its :class:`ImageInfo` (full-size) and, where the format allowed decoding it up to
    ``max_reduction`` times smaller, its :class:`Reduction`; the file stays open while the
    ``with`` block uses the pixels."""
    image = _open(path, max_pixels)
    with image:
        # Read from the header, before decoding: the file's own format, mode and size.
        source_format, source_mode = image.format or "unknown", image.mode
        stored_size = image.size
        scale = _draft(image, max_reduction) if max_reduction >= 2 else 1
        decoded = _decode(path, image)
        reduction = FULL_SIZE
        if scale == 1:
            width, height = decoded.size
        else:
            orientation = image.getexif().get(0x0112, 1)  # what exif_transpose just applied
            width, height = stored_size[::-1] if orientation in _TURNED else stored_size
            mirrored_x, mirrored_y = _MIRRORED.get(orientation, (False, False))
            reduction = Reduction(
                scale,
                decoded.width - width / scale if mirrored_x else 0.0,
                decoded.height - height / scale if mirrored_y else 0.0,
            )
        _check_size(path, (width, height), min_side)
        info = ImageInfo(width=width, height=height, source_format=source_format, source_mode=source_mode)
        yield decoded, info, reduction


def probe_image(
    path: str | os.PathLike,
    *,
    min_side: int = DEFAULT_MIN_SIDE,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> ImageInfo:
    """Check that ``path`` decodes fully and is usable; return its size, format and mode.

    Every pixel is decoded (a truncated JPEG's header alone looks fine), but nothing is
    converted or kept, so this is the cheap check for ingest. Raises :class:`ImageDecodeError`.
    """
    with _decoded(Path(path), min_side, max_pixels) as (_, info, _):
        return info


def decode_image(
    path: str | os.PathLike,
    *,
    min_side: int = DEFAULT_MIN_SIDE,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> tuple[np.ndarray, ImageInfo]:
    """Decode ``path`` to an (H, W, 3) uint8 RGB array together with its :class:`ImageInfo`."""
    path = Path(path)
    with _decoded(path, min_side, max_pixels) as (decoded, info, _):
        return _to_rgb(path, decoded), info


def load_rgb(
    path: str | os.PathLike,
    *,
    min_side: int = DEFAULT_MIN_SIDE,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """Decode an image file by its content to an (H, W, 3) ``uint8`` RGB array.

    Grayscale, palette, alpha, CMYK and 16-bit images are converted (see the module
    docstring); EXIF orientation is applied. Raises :class:`ImageDecodeError` (``reason``:
    ``missing_file``, ``unreadable``, ``empty_file``, ``not_an_image``, ``truncated``,
    ``corrupt``, ``unsupported_mode``, ``too_small`` when the shorter side is below
    ``min_side`` pixels, ``too_large`` above ``max_pixels`` pixels).
    """
    return decode_image(path, min_side=min_side, max_pixels=max_pixels)[0]


def load_rgb_reduced(
    path: str | os.PathLike,
    max_reduction: float,
    *,
    min_side: int = DEFAULT_MIN_SIDE,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> tuple[np.ndarray, Reduction]:
    """:func:`load_rgb`, decoded up to ``max_reduction`` times smaller where the format does it cheaply.

    A JPEG is decoded at 1/s of its size, s the largest of 8, 4, 2 not above ``max_reduction``
    (libjpeg's DCT scaling, through Pillow's ``draft``); any other file, or ``max_reduction`` < 2,
    at full size. Returns the (h, w, 3) uint8 RGB array and its :class:`Reduction` (``scale`` 1
    at full size). The checks and reasons are :func:`load_rgb`'s: every block is still decoded
    (a truncated file is refused), EXIF orientation is applied, ``min_side`` and ``max_pixels``
    apply to the full-size image.
    """
    path = Path(path)
    with _decoded(path, min_side, max_pixels, max_reduction) as (decoded, _, reduction):
        return _to_rgb(path, decoded), reduction
