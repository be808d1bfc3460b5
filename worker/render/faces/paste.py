"""Paste an edited, aligned face crop back into the original photo.

The crop is warped back with the inverse of its `AlignTransform` and blended through a feathered
mask: a rounded square inside the crop, fully opaque in the middle and fading to zero before the
crop's edge. Pixels outside the quad are never touched, so the output equals the input there
exactly; the output has the photo's size and orientation.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from worker.render.faces.align import AlignTransform

# Mask shape: |u|^p + |v|^p with p = 4 is a square with rounded corners, which follows an FFHQ
# crop's content (face, hair, neck) better than an ellipse and leaves its corners alone.
_MASK_POWER = 4.0


def feather_mask(u: np.ndarray, v: np.ndarray, feather: float, margin: float) -> np.ndarray:
    """Mask weight at crop positions (u, v) in [-1, 1] (0 = centre): 1 inside, 0 outside.

    `margin` is the fraction of the half-side left untouched at the crop's edge; `feather` the
    width of the fade, as a fraction of the half-side.
    """
    r = (np.abs(u) ** _MASK_POWER + np.abs(v) ** _MASK_POWER) ** (1.0 / _MASK_POWER)
    outer = 1.0 - margin
    t = np.clip((outer - r) / max(feather, 1e-6), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)  # smoothstep: no visible seam at either end of the fade


def paste_back(
    original_rgb: np.ndarray,
    edited_crop: np.ndarray,
    transform: AlignTransform,
    feather: float = 0.15,
    margin: float = 0.04,
) -> np.ndarray:
    """The photo with `edited_crop` ([n, n, 3] uint8, any n) blended in where it was cut out.

    Returns a new [H, W, 3] uint8 array of `original_rgb`'s shape.
    """
    out = Image.fromarray(np.ascontiguousarray(np.asarray(original_rgb)[:, :, :3]), "RGB")
    paste_into(out, edited_crop, transform, feather, margin)
    return np.array(out)


def paste_region(transform: AlignTransform, width: int, height: int) -> tuple[int, int, int, int]:
    """The pixels a paste through ``transform`` can change in a photo ``width`` x ``height``:
    the quad's bounding box, ``(x0, y0, x1, y1)``, clipped (empty when x1 <= x0 or y1 <= y0)."""
    lo = np.floor(transform.quad.min(axis=0)).astype(int) - 1
    hi = np.ceil(transform.quad.max(axis=0)).astype(int) + 2
    return int(max(lo[0], 0)), int(max(lo[1], 0)), int(min(hi[0], width)), int(min(hi[1], height))


def paste_into(
    photo: Image.Image,
    edited_crop: np.ndarray,
    transform: AlignTransform,
    feather: float = 0.15,
    margin: float = 0.04,
    top: int = 0,
) -> None:
    """:func:`paste_back` in place, on an RGB image: a preview is encoded straight from it (no
    copies of the whole photo between the paste and the JPEG). ``photo`` may be a band of the
    photo's rows, from row ``top`` down: the band's pixels come out as they would in the whole
    photo, provided the band holds every row of the face's :func:`paste_region`."""
    crop = np.asarray(edited_crop)
    if crop.ndim != 3 or crop.shape[0] != crop.shape[1] or crop.shape[2] < 3:
        raise ValueError(f"edited_crop must be [n, n, 3], got {crop.shape}")
    width, height = photo.size
    # Only the quad's bounding box (within the photo, or the band) can change.
    x0, y0, x1, y1 = paste_region(transform, width, top + height)
    y0 = max(y0, top)
    if x1 <= x0 or y1 <= y0:
        return

    # A crop much finer than the photo region it lands on is reduced first (Lanczos) so the
    # bilinear warp below does not alias.
    side_in_photo = int(np.ceil(transform.size * transform.scale))
    crop_img = Image.fromarray(np.ascontiguousarray(crop[:, :, :3]), "RGB")
    if crop_img.width > 2 * side_in_photo >= 2:
        crop_img = crop_img.resize((side_in_photo, side_in_photo), Image.Resampling.LANCZOS)
    n = crop_img.width

    # Photo pixel (x0 + i, y0 + j) -> crop pixel, in pixel-centre coordinates.
    to_crop = transform.image_to_crop(n) @ np.array(
        [[1.0, 0.0, x0], [0.0, 1.0, y0], [0.0, 0.0, 1.0]]
    )
    geometry = _geometry(to_crop, y1 - y0, x1 - x0, n, feather, margin)
    # Where the mask is zero the photo is left as it is: bit-exact outside.
    photo.paste(_warp(np.array(crop_img), geometry.grid), (x0, y0 - top), geometry.mask)


@dataclass(frozen=True)
class _Geometry:
    """One paste geometry: where each photo pixel of the region samples the crop
    (``grid_sample``'s grid, [1, h, w, 2]) and the feathered blend mask (8-bit, mode L)."""

    grid: torch.Tensor
    mask: Image.Image


#: Geometries of regions up to this size are cached (a re-edit pastes the same geometry again:
#: previews at preview scale, ~9 bytes a pixel); a full-size final's is built for the call.
CACHED_GEOMETRY_PIXELS = 1536 * 1536


def _geometry(to_crop: np.ndarray, height: int, width: int, n: int, feather: float,
              margin: float) -> _Geometry:
    key = (to_crop.tobytes(), height, width, n, feather, margin)
    if height * width <= CACHED_GEOMETRY_PIXELS:
        return _cached_geometry(*key)
    return _build_geometry(*key)


def _build_geometry(to_crop_bytes: bytes, height: int, width: int, n: int, feather: float,
                    margin: float) -> _Geometry:
    to_crop = np.frombuffer(to_crop_bytes, dtype=np.float64).reshape(3, 3)
    # grid_sample's grid: crop positions in [-1, 1] (pixel centres span [-0.5, n - 0.5]).
    to_unit = np.array([[2.0 / n, 0.0, 1.0 / n - 1.0], [0.0, 2.0 / n, 1.0 / n - 1.0]])
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    pixels = np.stack([xs, ys, np.ones_like(xs)], axis=-1)  # [h, w, 3]
    unit = pixels @ (to_unit @ to_crop).T.astype(np.float32)  # [h, w, 2]
    mask = feather_mask(unit[..., 0], unit[..., 1], feather, margin)
    mask8 = np.rint(mask * 255.0).astype(np.uint8)
    return _Geometry(torch.from_numpy(np.ascontiguousarray(unit))[None], Image.fromarray(mask8, "L"))


_cached_geometry = lru_cache(maxsize=8)(_build_geometry)


def _warp(crop: np.ndarray, grid: torch.Tensor) -> Image.Image:
    """Bilinear samples of ``crop`` ([n, n, 3] uint8) at ``grid``: an RGB image of the grid's
    size, black outside the crop (where the mask is zero). ~4x faster than Pillow's AFFINE
    transform."""
    with _one_thread():
        image = torch.from_numpy(np.ascontiguousarray(crop)).permute(2, 0, 1)[None].float()
        sampled = F.grid_sample(image, grid, mode="bilinear", padding_mode="zeros",
                                align_corners=False)[0].numpy()  # [3, h, w], contiguous
    # Rounded in numpy, in place, on the contiguous planes: torch splits even this small an
    # elementwise op over its threads, and on a busy host each split waits for a time slice
    # (15 ms against 0.2 ms for 3 x 400 x 400 on 2 threads under load); and the planes are
    # merged by Pillow, not transposed by numpy (a strided byte copy: 1.7 ms at 620 x 620).
    # No clip: a bilinear sample of 8-bit values (and zeros outside) lies in [0, 255] up to a
    # float error far below the rounding's half step.
    np.rint(sampled, out=sampled)
    planes = sampled.astype(np.uint8)
    return Image.merge("RGB", [Image.fromarray(plane, "L") for plane in planes])


@contextmanager
def _one_thread() -> Iterator[None]:
    """Torch on one CPU thread for the block (process-wide; the worker renders one task at a
    time). A 620 x 620 warp takes 2 ms on one thread and no less on two, but 6-8 ms (p50) on
    two when another process keeps one of two cores busy, as the web app does during an edit:
    the crop's conversion to float is split over the threads, and the split waits for a time
    slice. Two calls of ``set_num_threads`` cost ~0.04 ms."""
    before = torch.get_num_threads()
    if before == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
