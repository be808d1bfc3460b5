"""Conversions between images as the models see them and images as people download them.

The generator renders ``[N, 3, R, R]`` float tensors in about [-1, 1]; the encoder reads the same
range. Stored results are PNG (lossless; previews and finals) or JPEG bytes, and with the
recipe's ``keep_format`` a final in its upload's format (``final_media_type``). Arrays are
``[H, W, 3]`` uint8 RGB, C-contiguous.
"""

from __future__ import annotations

import io

import numpy as np
import torch
from PIL import Image

PNG = "image/png"
JPEG = "image/jpeg"
WEBP = "image/webp"
FINAL_JPEG_QUALITY = 92
FINAL_WEBP_QUALITY = 92
# Upload types a final can be written back in; any other upload (BMP, TIFF, GIF, HEIC, AVIF)
# gets a PNG: lossless, and readable everywhere.
_KEPT_TYPES = frozenset({JPEG, PNG, WEBP})


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """``[N, 3, H, W]`` in about [-1, 1] -> ``[N, H, W, 3]`` uint8 (clamped, rounded)."""
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"expected [N, 3, H, W] images, got {tuple(images.shape)}")
    x = images.detach().float()
    if x.device.type != "cpu":  # on the device: a quarter of the bytes cross to the host
        x = ((x.clamp(-1.0, 1.0) + 1.0) * 127.5).round().to(torch.uint8)
        return np.ascontiguousarray(x.permute(0, 2, 3, 1).cpu().numpy())
    # On the CPU in numpy (the same float32 steps, bit-exact): torch would split these small
    # elementwise ops over its threads, each split waiting for a time slice on a busy host.
    a = x.permute(0, 2, 3, 1).numpy()
    return np.rint((np.clip(a, -1.0, 1.0) + 1.0) * 127.5).astype(np.uint8, order="C")


def from_uint8(rgb: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """``[H, W, 3]`` or ``[N, H, W, 3]`` uint8 -> ``[N, 3, H, W]`` float32 in [-1, 1]."""
    arr = np.asarray(rgb)
    if arr.ndim == 3:
        arr = arr[None]
    if arr.ndim != 4 or arr.shape[-1] != 3 or arr.dtype != np.uint8:
        raise ValueError(f"expected [..., H, W, 3] uint8, got {arr.shape} {arr.dtype}")
    x = torch.from_numpy(np.array(arr, order="C")).to(device)  # a copy: inputs may be read-only
    return x.permute(0, 3, 1, 2).float() / 127.5 - 1.0


#: What the encoders take: one ``[H, W, 3]`` uint8 array, or an RGB image (no copy to make).
Picture = np.ndarray | Image.Image


def _pil(rgb: Picture) -> Image.Image:
    return rgb if isinstance(rgb, Image.Image) else Image.fromarray(rgb, "RGB")


def encode_png(rgb: Picture, compress_level: int = 3) -> bytes:
    """PNG bytes of one ``[H, W, 3]`` uint8 image (level 3: fast, still lossless)."""
    out = io.BytesIO()
    _pil(rgb).save(out, format="PNG", compress_level=compress_level)
    return out.getvalue()


def encode_jpeg(rgb: Picture, quality: int = FINAL_JPEG_QUALITY) -> bytes:
    out = io.BytesIO()
    _pil(rgb).save(out, format="JPEG", quality=quality)
    return out.getvalue()


def encode_webp(rgb: Picture, quality: int = FINAL_WEBP_QUALITY) -> bytes:
    """Lossy WebP (a lossless source is not told apart: it would cost parsing the upload)."""
    out = io.BytesIO()
    _pil(rgb).save(out, format="WEBP", quality=quality, lossless=False)
    return out.getvalue()


def final_media_type(upload_type: str | None) -> str:
    """The type a ``keep_format`` final is written in for an upload of ``upload_type``."""
    return upload_type if upload_type in _KEPT_TYPES else PNG


def encode_as(rgb: Picture, media_type: str) -> bytes:
    """``rgb`` as ``media_type`` (one of PNG, JPEG at quality 92, WebP at quality 92)."""
    if media_type == JPEG:
        return encode_jpeg(rgb)
    if media_type == WEBP:
        return encode_webp(rgb)
    if media_type == PNG:
        return encode_png(rgb)
    raise ValueError(f"no encoder for {media_type!r}")


def decode_rgb(data: bytes) -> np.ndarray:
    """Bytes of an image we wrote ourselves -> ``[H, W, 3]`` uint8 (not for uploads: see
    ``worker.render.imaging.decode_image``)."""
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"))


def center_square(rgb: np.ndarray, size: int) -> np.ndarray:
    """The largest centred square of ``rgb``, resized to ``size`` x ``size`` (Lanczos)."""
    h, w = rgb.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    square = Image.fromarray(np.ascontiguousarray(rgb[top:top + side, left:left + side]), "RGB")
    if side != size:
        square = square.resize((size, size), Image.Resampling.LANCZOS)
    return np.asarray(square)
