"""The e4e / pSp reference checkpoints (made with the e4e repository's own code; see
``data/e4e-res256``), rebuilt from their manifests by the reference's rule
(``value = shift + scale * randn(shape)`` seeded with ``crc32(salt + key)``), in the released
layout. Their ``expected.pt`` holds what the original code computed from them."""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import torch

#: A copy lives in tests/encoders/data (so a clone runs the tests); the team folder is a fallback.
_COPIES = (Path(__file__).resolve().parent / "data" / "e4e-res256",
           Path(__file__).resolve().parents[3] / "shared" / "reference" / "e4e-res256")
REFERENCE = next((p for p in _COPIES if p.is_dir()), _COPIES[0])
LAYOUT_1024 = REFERENCE / "layout_1024.json"


def _seeded(salt: str, key: str) -> torch.Generator:
    return torch.Generator().manual_seed(zlib.crc32((salt + key).encode()))


def _value(manifest: dict, key: str, shape, dtype: str, kind: str, scale, shift) -> torch.Tensor:
    """One tensor of the checkpoint, by the reference's rule (depends on its key only)."""
    dt = getattr(torch, dtype)
    if kind == "literal":
        return torch.tensor(manifest["literals"][key], dtype=dt).reshape(shape)
    if kind == "zeros":
        return torch.zeros(shape, dtype=dt)
    noise = torch.randn(shape, generator=_seeded(manifest["salt"], key))
    return (shift + scale * (noise.abs() if kind == "abs" else noise)).to(dt)


def rebuild_key(method: str, key: str) -> torch.Tensor:
    """``rebuild(method)["state_dict"][key]`` without building the other tensors."""
    manifest = json.loads((REFERENCE / method / "manifest.json").read_text())
    row = next(row for row in manifest["keys"] if row[0] == key)
    return _value(manifest, *row)


def rebuild(method: str) -> dict:
    """``{'state_dict', 'opts', 'latent_avg'}`` of ``method`` ('e4e' or 'psp'), as released."""
    manifest = json.loads((REFERENCE / method / "manifest.json").read_text())
    salt = manifest["salt"]
    sd: dict[str, torch.Tensor] = {row[0]: _value(manifest, *row) for row in manifest["keys"]}
    avg = 0.5 * torch.randn(1, 512, generator=_seeded(salt, "latent_avg"))
    return {"state_dict": sd, "opts": dict(manifest["opts"]),
            "latent_avg": avg.repeat(manifest["style_count"], 1)}


def inputs(method: str) -> torch.Tensor:
    """The reference photos as the encoders read them: [3, 3, 256, 256] in [-1, 1]."""
    raw = torch.load(REFERENCE / method / "inputs.pt", weights_only=True)
    x = raw.permute(0, 3, 1, 2).float() / 255
    return (x - 0.5) / 0.5


def expected(method: str) -> dict:
    return torch.load(REFERENCE / method / "expected.pt", weights_only=True)


def layout_1024(method: str) -> dict[str, torch.Tensor]:
    """The released 1024 px checkpoint's state_dict as meta tensors (no memory allocated)."""
    layout = json.loads(LAYOUT_1024.read_text())[method]
    out = {}
    for key, shape in layout:
        dtype = torch.int64 if key.endswith("num_batches_tracked") else torch.float32
        out[key] = torch.empty(shape, dtype=dtype, device="meta")
    return out
