"""The compute stages of the pipeline, free of any database or queue code.

decode (upload bytes -> upright RGB) -> faces (RGB -> aligned face crops) -> encode (crops -> W+)
-> edit (W+ + recipe edits -> W+) -> render (W+ at a cost -> images). Batched stages take lists
so a group of items shares one forward pass. Tensor legend: N batch, L n_style, S style_dim.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image

from shared.codes.errors import ErrorCode
from shared.recipe.parse import Cost, Recipe
from worker.render.images import from_uint8
from worker.render.imaging import decode_image
from worker.render.imaging.errors import ImageError

#: Side of the face crop handed to the encoder (the released encoder was trained at 256 px).
ENCODER_INPUT = 256
#: A photo narrower than this holds no face the detectors can find (MTCNN's smallest is 20 px,
#: and its image pyramid is empty below that: it raises instead of finding nothing).
MIN_PHOTO_SIDE = 24


@dataclass
class FaceCrop:
    """An aligned face ready for the encoder, and how it was cut from the photo."""

    rgb: np.ndarray  # [ENCODER_INPUT, ENCODER_INPUT, 3] uint8
    meta: dict = field(default_factory=dict)  # JSON-friendly: box, method ...


def decode(data: bytes, max_pixels: int) -> np.ndarray:
    """Upload bytes -> upright ``[H, W, 3]`` uint8; raises ``ImageError`` with a stable code."""
    return decode_image(data, max_pixels).rgb


def face_detector(name: str = "mtcnn", device: torch.device | str = "cpu"):
    """The process-wide detector ``name`` on ``device`` (built on first use, then cached)."""
    from worker.render.faces import get_detector

    return get_detector(name, str(device))


def prepare_faces(rgb: np.ndarray, bundle, recipe: Recipe, detector=None) -> list[FaceCrop]:
    """The faces of a photo, FFHQ-aligned at the model's resolution and resized for the encoder.

    ``recipe.faces`` picks the largest face (default) or all of them (largest first). Each
    crop's meta holds the alignment transform (``AlignTransform.to_dict``) so a later pass can
    paste the edited face back. No face -> ``ImageError(no_face)``.
    """
    from worker.render.faces import align_face, select_faces

    h, w = rgb.shape[:2]
    if min(h, w) < MIN_PHOTO_SIDE:
        raise ImageError(ErrorCode.NO_FACE, f"the photo ({w}x{h} px) is too small to hold a face")
    detector = detector if detector is not None else face_detector()
    try:
        found = detector.detect(rgb)
    except (ValueError, RuntimeError, IndexError) as exc:  # degenerate shapes (thin strips ...)
        raise ImageError(ErrorCode.NO_FACE, f"the detector found no face ({exc})") from exc
    faces = select_faces(found, recipe.faces or "largest")
    if not faces:
        raise ImageError(ErrorCode.NO_FACE, "the detector found no face")
    size = int(getattr(bundle, "resolution", 0) or ENCODER_INPUT)
    out = []
    for face in faces:
        aligned = align_face(rgb, face, size=size)
        crop = aligned.image
        if size != ENCODER_INPUT:
            crop = np.asarray(Image.fromarray(crop, "RGB").resize(
                (ENCODER_INPUT, ENCODER_INPUT), Image.Resampling.LANCZOS))
        meta = {"method": "ffhq_align", "box": [round(float(v), 2) for v in face.box],
                "score": round(float(face.score), 4), "photo_size": [w, h],
                "transform": aligned.transform.to_dict()}
        out.append(FaceCrop(np.ascontiguousarray(crop), meta))
    return out


def encode(bundle, crops: Sequence[np.ndarray], device: torch.device) -> torch.Tensor:
    """Face crops -> W+ codes ``[N, L, S]`` (float32, on ``device``) in one forward pass."""
    if not crops:
        raise ValueError("nothing to encode")
    if bundle.encoder is None:
        raise RuntimeError(f"model {bundle.config} has no encoder: photos cannot be encoded")
    x = from_uint8(np.stack(crops), device)
    return bundle.encoder(x).float()


def edit(bundle, wplus: torch.Tensor, edits: Mapping[str, float], extra=None) -> torch.Tensor:
    """Apply the recipe's edits (stored key -> value) to ``[N, L, S]`` codes, from the unedited
    codes every time (the original editor's slider formula). ``extra``: the batch owner's own
    directions (stored key -> ``Direction``)."""
    if not edits:
        return wplus
    if bundle.directions is None:
        raise RuntimeError(f"model {bundle.config} has no edit directions")
    return bundle.directions.edit(wplus, dict(edits), extra)


def edit_faces(bundle, wplus: torch.Tensor, per_face: Sequence[Mapping[str, float]],
               extra=None) -> torch.Tensor:
    """:func:`edit` with each face (row ``i`` of ``[F, L, S]``) its own edits ``per_face[i]``
    (``RenderJob.edits_per_face``). Faces that share their edits share one call."""
    if len(per_face) != len(wplus):
        raise ValueError(f"{len(per_face)} edit sets for {len(wplus)} faces")
    if all(e == per_face[0] for e in per_face):
        return edit(bundle, wplus, per_face[0] if per_face else {}, extra)
    return torch.cat([edit(bundle, wplus[i:i + 1], e, extra) for i, e in enumerate(per_face)])


def render(bundle, wplus: torch.Tensor, cost: Cost) -> torch.Tensor:
    """``[N, L, S]`` -> ``[N, 3, R, R]`` (about [-1, 1]) on the sub-network ``cost`` names."""
    return bundle.generator.synthesis(
        wplus, channels=cost.channels, resolution=cost.resolution, noise_mode="const"
    ).float()


def latent_to_bytes(wplus: torch.Tensor) -> tuple[bytes, list[int]]:
    """One item's codes ``[F, L, S]`` -> (float32 C-order bytes, shape) for the latents table."""
    arr = np.ascontiguousarray(wplus.detach().float().cpu().numpy(), dtype=np.float32)
    return arr.tobytes(), list(arr.shape)


def latent_from_bytes(data: bytes, shape: Sequence[int], device: torch.device) -> torch.Tensor:
    arr = np.frombuffer(data, dtype=np.float32).reshape(tuple(shape))
    return torch.from_numpy(arr.copy()).to(device)


__all__ = [
    "ENCODER_INPUT", "FaceCrop", "ImageError", "decode", "edit", "edit_faces", "encode",
    "latent_from_bytes", "latent_to_bytes", "prepare_faces", "render",
]
