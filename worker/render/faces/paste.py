"""Paste an edited, aligned face crop back into the original photo.

The crop is warped back with the inverse of its `AlignTransform` and blended through a feathered
mask: a rounded square inside the crop, fully opaque in the middle and fading to zero before the
crop's edge. Pixels outside the quad are never touched, so the output equals the input there
exactly; the output has the photo's size and orientation.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np
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
    out = np.array(np.asarray(original_rgb)[:, :, :3], dtype=np.uint8)  # a contiguous copy
    paste_into(out, edited_crop, transform, feather, margin)
    return out


def paste_region(transform: AlignTransform, width: int, height: int) -> tuple[int, int, int, int]:
    """The pixels a paste through ``transform`` can change in a photo ``width`` x ``height``:
    the quad's bounding box, ``(x0, y0, x1, y1)``, clipped (empty when x1 <= x0 or y1 <= y0)."""
    lo = np.floor(transform.quad.min(axis=0)).astype(int) - 1
    hi = np.ceil(transform.quad.max(axis=0)).astype(int) + 2
    return int(max(lo[0], 0)), int(max(lo[1], 0)), int(min(hi[0], width)), int(min(hi[1], height))


def paste_into(
    photo: np.ndarray,
    edited_crop: np.ndarray,
    transform: AlignTransform,
    feather: float = 0.15,
    margin: float = 0.04,
    top: int = 0,
    left: int = 0,
) -> None:
    """:func:`paste_back` in place, on a writable ``[h, w, 3]`` uint8 array. ``photo`` may be a
    rectangle of the photo, from (``left``, ``top``): its pixels come out as they would in the
    whole photo, provided it holds every pixel of the face's :func:`paste_region`."""
    crop = np.asarray(edited_crop)
    if crop.ndim != 3 or crop.shape[0] != crop.shape[1] or crop.shape[2] < 3:
        raise ValueError(f"edited_crop must be [n, n, 3], got {crop.shape}")
    if photo.ndim != 3 or photo.shape[2] != 3 or photo.dtype != np.uint8:
        raise ValueError(f"photo must be [h, w, 3] uint8, got {photo.shape} {photo.dtype}")
    height, width = photo.shape[:2]
    # Only the quad's bounding box (within the photo, or the rectangle) can change.
    x0, y0, x1, y1 = paste_region(transform, left + width, top + height)
    x0, y0 = max(x0, left), max(y0, top)
    if x1 <= x0 or y1 <= y0:
        return

    # A crop much finer than the photo region it lands on is reduced first (Lanczos) so the
    # bilinear warp below does not alias.
    crop = np.ascontiguousarray(crop[:, :, :3], dtype=np.uint8)
    side_in_photo = int(np.ceil(transform.size * transform.scale))
    if crop.shape[0] > 2 * side_in_photo >= 2:
        crop = np.asarray(Image.fromarray(crop, "RGB").resize(
            (side_in_photo, side_in_photo), Image.Resampling.LANCZOS))
    n = crop.shape[0]

    # Photo pixel (x0 + i, y0 + j) -> crop pixel, in pixel-centre coordinates.
    to_crop = transform.image_to_crop(n) @ np.array(
        [[1.0, 0.0, x0], [0.0, 1.0, y0], [0.0, 0.0, 1.0]]
    )
    h, w = y1 - y0, x1 - x0
    weights = _blend_weights(to_crop, h, w, n, feather, margin)
    # Bilinear samples of the crop at each region pixel (black outside the crop, where the mask
    # is zero): OpenCV's fixed-point warp, 1-1.5 ms for 620 x 620 where torch's grid_sample
    # took 2.4 ms and Pillow's AFFINE transform ~4x that.
    warped = cv2.warpAffine(crop, to_crop[:2], (w, h),
                            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
    region = photo[y0 - top:y1 - top, x0 - left:x1 - left]
    # face * m/255 + photo * (255 - m)/255, each product rounded: where the mask is 0 the photo
    # is left exactly as it is, where it is 255 the face is copied exactly; in between the
    # result is within one level of the exact blend.
    region[...] = cv2.add(cv2.multiply(warped, weights.face, scale=1 / 255),
                          cv2.multiply(region, weights.photo, scale=1 / 255))


@dataclass(frozen=True)
class _BlendWeights:
    """The feathered blend of one paste geometry (where the crop lands in the region), 0-255
    for each pixel and channel of the region: the face's (the mask) and the photo's (its
    complement)."""

    face: np.ndarray  # [h, w, 3] uint8
    photo: np.ndarray  # [h, w, 3] uint8


#: Weights of regions up to this size are cached (a re-edit pastes the same geometry again:
#: previews at preview scale, 6 bytes a pixel); a full-size final's are built for the call.
CACHED_WEIGHT_PIXELS = 1536 * 1536


def _blend_weights(to_crop: np.ndarray, height: int, width: int, n: int, feather: float,
                   margin: float) -> _BlendWeights:
    key = (to_crop.tobytes(), height, width, n, feather, margin)
    if height * width <= CACHED_WEIGHT_PIXELS:
        return _cached_blend_weights(*key)
    return _build_blend_weights(*key)


def _build_blend_weights(to_crop_bytes: bytes, height: int, width: int, n: int, feather: float,
                         margin: float) -> _BlendWeights:
    to_crop = np.frombuffer(to_crop_bytes, dtype=np.float64).reshape(3, 3)
    # Crop positions in [-1, 1] (pixel centres span [-0.5, n - 0.5]).
    to_unit = np.array([[2.0 / n, 0.0, 1.0 / n - 1.0], [0.0, 2.0 / n, 1.0 / n - 1.0]])
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    pixels = np.stack([xs, ys, np.ones_like(xs)], axis=-1)  # [h, w, 3]
    unit = pixels @ (to_unit @ to_crop).T.astype(np.float32)  # [h, w, 2]
    mask = feather_mask(unit[..., 0], unit[..., 1], feather, margin)
    mask8 = np.repeat(np.rint(mask * 255.0).astype(np.uint8)[..., None], 3, axis=2)
    return _BlendWeights(mask8, 255 - mask8)


_cached_blend_weights = lru_cache(maxsize=8)(_build_blend_weights)
