"""The per-face side of an item with several faces: where each face is (``item.faces``) and
which edits each face gets (``item.face_edits`` overrides of the item's edits).

Faces are the rows of the item's latent ``[F, L, S]``, in the order the detector's selection
gave them (largest first); ``item.faces[i]`` and the override ``face_edits[str(i)]`` describe
row ``i``. Pure functions: no database, no torch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

#: Decimals of a box fraction: a 10,000 px photo still places it within a pixel.
BOX_DECIMALS = 4


def edits_per_face(edits: Mapping[str, float], overrides: Mapping[str, Mapping] | None,
                   n: int) -> list[dict[str, float]]:
    """The edits of each of ``n`` faces: face ``i``'s override (``overrides[str(i)]``) where it
    has one, else the item's ``edits``. Overrides of faces beyond ``n`` are left out (a photo
    encoded again by another detector may have fewer faces)."""
    overrides = overrides or {}
    return [dict(overrides.get(str(i), edits)) for i in range(n)]


def _fraction(value: float, size: float) -> float:
    return round(min(1.0, max(0.0, float(value) / size)), BOX_DECIMALS)


def face_boxes(face_meta: Sequence[Mapping]) -> list[dict] | None:
    """``item.faces`` from the latent's face metadata (``stages.prepare_faces``): each face's
    box ``[x0, y0, x1, y1]`` as fractions (0..1) of the decoded photo's width and height, so a
    browser can draw it on the photo at any size (the decoded upload may be downscaled by
    ``max_pixels``). None when the metadata has no boxes (a synthesised item, an old latent)."""
    if not face_meta:
        return None
    out = []
    for meta in face_meta:
        box, size = meta.get("box"), meta.get("photo_size")
        if not box or not size or len(box) != 4 or min(size) <= 0:
            return None
        w, h = float(size[0]), float(size[1])
        x0, y0, x1, y1 = box
        out.append({"box": [_fraction(x0, w), _fraction(y0, h), _fraction(x1, w),
                            _fraction(y1, h)]})
    return out
