"""Paste an edited, aligned face crop back into the original photo.

The crop is warped back with the inverse of its `AlignTransform` and blended through a feathered
mask: a rounded square inside the crop, fully opaque in the middle and fading to zero before the
crop's edge. Pixels outside the quad are never touched, so the output equals the input there
exactly; the output has the photo's size and orientation.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from PIL import Image

from worker.faces.align import AlignTransform

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
    photo = np.asarray(original_rgb)
    crop = np.asarray(edited_crop)
    if crop.ndim != 3 or crop.shape[0] != crop.shape[1] or crop.shape[2] < 3:
        raise ValueError(f"edited_crop must be [n, n, 3], got {crop.shape}")
    out = np.array(photo[:, :, :3], dtype=np.uint8, copy=True)
    height, width = out.shape[:2]

    # Only the quad's bounding box (within the photo) can change.
    lo = np.floor(transform.quad.min(axis=0)).astype(int) - 1
    hi = np.ceil(transform.quad.max(axis=0)).astype(int) + 2
    x0, y0 = max(lo[0], 0), max(lo[1], 0)
    x1, y1 = min(hi[0], width), min(hi[1], height)
    if x1 <= x0 or y1 <= y0:
        return out

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
    # Pillow's AFFINE maps continuous output coordinates to continuous input coordinates.
    shift = np.array([[1.0, 0.0, 0.5], [0.0, 1.0, 0.5], [0.0, 0.0, 1.0]])
    pil_affine = shift @ to_crop @ np.linalg.inv(shift)
    warped = crop_img.transform(
        (x1 - x0, y1 - y0),
        Image.Transform.AFFINE,
        tuple(pil_affine[:2].flatten()),
        Image.Resampling.BILINEAR,
    )

    m = _blend_mask(to_crop.tobytes(), y1 - y0, x1 - x0, n, feather, margin)

    region = out[y0:y1, x0:x1].astype(np.float32)
    blended = region + (np.asarray(warped, dtype=np.float32) - region) * m
    blended = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
    # Where the mask is exactly zero the photo is copied, not recomputed: bit-exact outside.
    out[y0:y1, x0:x1] = np.where(m > 0, blended, out[y0:y1, x0:x1])
    return out


@lru_cache(maxsize=16)
def _blend_mask(to_crop_bytes: bytes, height: int, width: int, n: int, feather: float,
                margin: float) -> np.ndarray:
    """The feathered blend weights [h, w, 1] float32 of one paste geometry. Cached: a re-edit of
    an item pastes the same geometry again (previews at preview scale), ~1 MB an entry."""
    to_crop = np.frombuffer(to_crop_bytes, dtype=np.float64).reshape(3, 3)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    cu = to_crop[0, 0] * xs + to_crop[0, 1] * ys + to_crop[0, 2]
    cv = to_crop[1, 0] * xs + to_crop[1, 1] * ys + to_crop[1, 2]
    # Crop pixel centres span [-0.5, n - 0.5]; normalise that square to [-1, 1].
    mask = feather_mask((cu + 0.5) / n * 2 - 1, (cv + 0.5) / n * 2 - 1, feather, margin)
    out = mask[:, :, None].astype(np.float32)
    out.flags.writeable = False
    return out
