"""Safe decoding of an uploaded photo into an upright sRGB uint8 array.

Everything a phone, camera or scanner produces goes through `decode_image`: the format is sniffed
from the bytes and only that format's Pillow plugin may open them; the pixel count is checked from
the header before any pixel is decoded; the whole image is decoded (so truncated files fail here,
not later); EXIF orientation is applied; ICC profiles and CMYK become sRGB; 16-bit is scaled, not
clipped; palette and alpha images are composited on neutral grey; animations give the first frame.
Every refusal is an `ImageError` with a stable code.
"""

from __future__ import annotations

import functools
import io
import logging
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageCms, UnidentifiedImageError, features

from shared.codes.errors import ErrorCode
from shared.codes.imagetypes import CORE_FORMATS, sniff_format
from worker.render.imaging.errors import ImageError

log = logging.getLogger(__name__)

# The background that transparent pixels are composited on: mid grey draws no attention and
# is what the face models see least of as a "colour".
BACKGROUND = (128, 128, 128)

# Pillow plugin names allowed to open each sniffed format (MPO is how Pillow names multi-picture
# JPEGs from cameras; HEIF is pillow-heif's plugin).
_PILLOW_FORMATS: dict[str, list[str]] = {
    "jpeg": ["JPEG", "MPO"],
    "png": ["PNG"],
    "webp": ["WEBP"],
    "bmp": ["BMP", "DIB"],
    "tiff": ["TIFF"],
    "gif": ["GIF"],
    "heic": ["HEIF"],
    "avif": ["AVIF", "HEIF"],
}

_ORIENTATION_TAG = 0x0112
_SIXTEEN_BIT_MODES = {"I;16", "I;16L", "I;16B", "I;16N"}
# EXIF orientation -> the operation that makes the stored pixels upright.
_UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


@dataclass(frozen=True)
class DecodedImage:
    """An upright RGB photo and what was learned decoding it."""

    rgb: np.ndarray  # [H, W, 3] uint8, C-contiguous, sRGB, EXIF orientation already applied
    format: str  # canonical name from shared.codes.imagetypes ("jpeg", "png", ...)
    mode: str  # Pillow mode as stored ("RGB", "CMYK", "I;16", "P", ...)
    stored_size: tuple[int, int]  # (width, height) as stored, before orientation
    orientation: int  # EXIF orientation tag that was applied (1 = none)
    n_frames: int  # frames in the file; only the first is decoded
    icc_converted: bool  # an embedded ICC profile was converted to sRGB

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of `rgb`, i.e. as displayed."""
        return self.rgb.shape[1], self.rgb.shape[0]

    def to_pil(self) -> Image.Image:
        return Image.fromarray(self.rgb, "RGB")


@functools.cache
def _heif_plugin() -> bool:
    """Register pillow-heif's opener once if it is installed (optional dependency)."""
    try:
        import pillow_heif  # type: ignore[import-not-found]
    except ImportError:
        return False
    pillow_heif.register_heif_opener()
    return True


@functools.cache
def decodable_formats() -> frozenset[str]:
    """The formats this worker can decode, HEIC/AVIF included only when a plugin reads them."""
    found = set(CORE_FORMATS)
    if features.check("avif"):
        found.add("avif")
    if _heif_plugin():
        found.add("heic")
    return frozenset(found)


def decode_image(data: bytes, max_pixels: int) -> DecodedImage:
    """Decode `data` to an upright sRGB uint8 array, or raise `ImageError`.

    `max_pixels` bounds width * height, checked from the header before decoding. Pillow's own
    global decompression-bomb limit (Image.MAX_IMAGE_PIXELS) is left untouched as a backstop:
    changing it per call would race with other threads.
    """
    if not data:
        raise ImageError(ErrorCode.EMPTY_FILE, "zero bytes")
    fmt = sniff_format(data)
    if fmt is None:
        raise ImageError(ErrorCode.UNSUPPORTED_FORMAT, f"unrecognised header {bytes(data[:8])!r}")
    if fmt not in decodable_formats():
        raise ImageError(ErrorCode.UNSUPPORTED_FORMAT, f"{fmt} is not decodable on this worker")

    try:
        im = Image.open(io.BytesIO(data), formats=_PILLOW_FORMATS[fmt])
    except Image.DecompressionBombError as exc:
        raise ImageError(ErrorCode.TOO_LARGE, str(exc)) from exc
    except UnidentifiedImageError as exc:
        # The magic bytes matched but the plugin could not parse the header.
        raise ImageError(ErrorCode.CORRUPT_IMAGE, str(exc)) from exc
    except Exception as exc:  # Pillow raises many types on malformed headers
        raise ImageError(ErrorCode.CORRUPT_IMAGE, f"{type(exc).__name__}: {exc}") from exc

    with im:
        width, height = im.size
        if width <= 0 or height <= 0:
            raise ImageError(ErrorCode.CORRUPT_IMAGE, f"size {width}x{height}")
        if width * height > max_pixels:
            raise ImageError(
                ErrorCode.TOO_LARGE, f"{width}x{height} = {width * height} px > {max_pixels}"
            )
        n_frames = getattr(im, "n_frames", 1)
        try:
            if n_frames > 1:
                im.seek(0)
            im.load()  # the full decode: truncated data raises here
            orientation = _orientation(im)
            mode = im.mode
            rgb_image, icc_converted = _to_srgb(im)
        except ImageError:
            raise
        except Image.DecompressionBombError as exc:
            raise ImageError(ErrorCode.TOO_LARGE, str(exc)) from exc
        except Exception as exc:
            raise ImageError(ErrorCode.CORRUPT_IMAGE, f"{type(exc).__name__}: {exc}") from exc

    if orientation != 1:
        rgb_image = _apply_orientation(rgb_image, orientation)
    rgb = np.ascontiguousarray(np.asarray(rgb_image, dtype=np.uint8))
    return DecodedImage(
        rgb=rgb,
        format=fmt,
        mode=mode,
        stored_size=(width, height),
        orientation=orientation,
        n_frames=n_frames,
        icc_converted=icc_converted,
    )


def _orientation(im: Image.Image) -> int:
    """The EXIF orientation tag (1..8), 1 when missing or unreadable (broken EXIF is common)."""
    try:
        value = int(im.getexif().get(_ORIENTATION_TAG, 1))
    except Exception:
        return 1
    return value if 1 <= value <= 8 else 1


def _apply_orientation(im: Image.Image, orientation: int) -> Image.Image:
    """Rotate/flip to upright, the way ImageOps.exif_transpose reads the tag."""
    return im.transpose(_UPRIGHT[orientation])


def _to_srgb(im: Image.Image) -> tuple[Image.Image, bool]:
    """Any Pillow mode -> 8-bit sRGB "RGB", converting an embedded ICC profile when present."""
    mode = im.mode
    if mode in _SIXTEEN_BIT_MODES or mode == "I":
        return Image.fromarray(_scale_high_depth(np.asarray(im)), "L").convert("RGB"), False
    if mode == "F":
        values = np.asarray(im, dtype=np.float32)
        # Float images are usually normalised to [0, 1]; anything else is taken as 0..255.
        scale = 255.0 if float(np.nanmax(values, initial=0.0)) <= 1.0 else 1.0
        values = np.nan_to_num(values * scale, nan=0.0)
        return Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8), "L").convert(
            "RGB"
        ), False

    # Reduce every other mode to RGB, RGBA or CMYK (the modes an ICC transform takes).
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in im.info
    if mode in ("RGB", "CMYK") and not has_alpha:
        work = im
    elif mode == "RGBA" or has_alpha:
        work = im.convert("RGBA")
    else:
        work = im.convert("RGB")

    icc_converted = False
    icc = im.info.get("icc_profile")
    if icc and work.mode in ("RGB", "RGBA", "CMYK") and mode not in ("L", "LA", "P", "PA", "1"):
        converted = _convert_icc(work, icc)
        if converted is not None:
            work, icc_converted = converted, True

    if work.mode == "RGBA":
        background = Image.new("RGB", work.size, BACKGROUND)
        background.paste(work, mask=work.getchannel("A"))
        work = background
    elif work.mode != "RGB":
        work = work.convert("RGB")  # CMYK without a profile: Pillow's plain formula
    return work, icc_converted


def _scale_high_depth(values: np.ndarray) -> np.ndarray:
    """16-bit (or 32-bit integer) greyscale -> uint8 by scaling the full 16-bit range."""
    values = values.astype(np.float64)
    top = float(values.max(initial=0.0))
    # "I" mode is 32-bit; real files put 16-bit data in it. Only beyond 16 bits scale by the max.
    full = 65535.0 if top <= 65535.0 else top
    return np.clip(np.rint(values * (255.0 / full)), 0, 255).astype(np.uint8)


def _convert_icc(im: Image.Image, icc: bytes) -> Image.Image | None:
    """Convert `im` from its embedded profile to sRGB; None (keep as is) when the profile is bad."""
    out_mode = "RGBA" if im.mode == "RGBA" else "RGB"
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        target = ImageCms.createProfile("sRGB")
        return ImageCms.profileToProfile(
            im, source, target, renderingIntent=ImageCms.Intent.PERCEPTUAL, outputMode=out_mode
        )
    except Exception as exc:  # broken or mismatched profiles are common in the wild
        log.info("ignoring unusable ICC profile (%s: %s)", type(exc).__name__, exc)
        return None
