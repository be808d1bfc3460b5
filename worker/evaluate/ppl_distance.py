"""PPL's perceptual distance: NVIDIA's ``vgg16.pt`` or the lpips package's VGG, hash-checked.

Two networks compute LPIPS (VGG) for PPL, and the result records which one, with its files'
sha256:
- ``nvidia_vgg16``: NVIDIA's TorchScript ``vgg16.pt`` (stylegan2-ada-pytorch's
  ``pretrained/metrics/vgg16.pt``, the network its PPL uses), at ``ANYCOST_PPL_VGG16_PATH``.
  Images enter in [0, 255] without resizing; the distance is the squared difference of its
  ``return_lpips=True`` features summed. The file must have ``NVIDIA_VGG16_SHA256`` (or
  ``ANYCOST_PPL_VGG16_SHA256``); it is hashed before ``torch.jit.load`` sees it. The pinned hash
  was not measured here (the file cannot be downloaded on this machine): it is the value two
  independent public projects pin for that URL (genforce's perceptual model registry and a
  metrics runner), so a site that finds another hash should check its copy and then set
  ``ANYCOST_PPL_VGG16_SHA256``.
- ``lpips_vgg``: ``lpips==0.1.4``'s linear heads (``LPIPS_VGG_HEADS_SHA256``, the installed
  package's file) on torchvision's ImageNet VGG16 (``vgg16-397923af.pth``,
  ``TORCHVISION_VGG16_SHA256``, the hash torchvision itself publishes in the file name; another
  file needs ``ANYCOST_LPIPS_VGG_SHA256``). Images enter in [-1, 1]. The two networks were
  converted from the same LPIPS weights and agree closely but not bit for bit, which is why the
  result names the one used.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from shared.codes.errors import ErrorCode
from worker.anycost.perceptual import backbone_file, heads_file, load_lpips, lpips_problem
from worker.evaluate.common import EvaluationError
from worker.evaluate.inception import sha256_of

NVIDIA_VGG16_SHA256 = "b437eb095feaeb0b83eb3fa11200ebca4548ee39a07fb944a417ddc516cc07c3"
TORCHVISION_VGG16_SHA256 = "397923af8e79cdbb6a7127f12361acd7a2f83e06b05044ddf496e83de57a5bf0"
#: ``lpips/weights/v0.1/vgg.pth`` of lpips 0.1.4.
LPIPS_VGG_HEADS_SHA256 = "a78928a0af1e5f0fcb1f3b9e8f8c3a2a5a3de244d830ad5c1feddc79b8432868"
CHOICES = ("auto", "nvidia", "lpips")


@dataclass
class PplDistance:
    """``distance(a, b)`` -> ``[N]`` LPIPS between image batches ``[N, 3, H, W]`` in about
    [-1, 1] (not clamped); ``describe()`` is what the result records."""

    name: str
    net: torch.nn.Module
    files: list[dict] = field(default_factory=list)

    def __call__(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        if self.name == "nvidia_vgg16":
            feats = self.net(torch.cat([a, b]).add(1).mul(127.5), resize_images=False,
                             return_lpips=True)
            fa, fb = feats.chunk(2)
            return (fa - fb).square().sum(1)
        return self.net(a, b).reshape(-1)

    def describe(self) -> dict:
        return {"name": self.name, "files": self.files}

    @classmethod
    def lpips(cls, net: torch.nn.Module, files: list[dict] | None = None) -> PplDistance:
        return cls("lpips_vgg", net, files or [])


def _checked(path: Path, expected: str, what: str, setting: str) -> dict:
    if not path.is_file():
        raise EvaluationError(ErrorCode.LPIPS_MISSING, f"{what} {path} does not exist")
    actual = sha256_of(path)
    if actual != expected.lower():
        raise EvaluationError(ErrorCode.LPIPS_MISSING, (
            f"{what} {path} has sha256 {actual}, expected {expected.lower()}; it is not used "
            f"(set {setting} to use another file on purpose)"))
    return {"path": str(path), "sha256": actual}


def load_nvidia_vgg16(path: str, sha256: str = "", device: str | torch.device = "cpu") -> PplDistance:
    """NVIDIA's TorchScript LPIPS network, after its hash check."""
    record = _checked(Path(path), sha256 or NVIDIA_VGG16_SHA256, "NVIDIA's vgg16.pt",
                      "ANYCOST_PPL_VGG16_SHA256")
    net = torch.jit.load(record["path"], map_location=str(device)).eval()
    return PplDistance("nvidia_vgg16", net, [record])


def load_lpips_vgg(backbone_path: str = "", sha256: str = "",
                   device: str | torch.device = "cpu") -> PplDistance:
    """The lpips package's VGG LPIPS, after checking both files' hashes."""
    problem = lpips_problem("vgg", backbone_path)
    if problem is not None:
        raise EvaluationError(ErrorCode.LPIPS_MISSING, problem)
    files = [_checked(heads_file("vgg"), LPIPS_VGG_HEADS_SHA256, "the lpips package's VGG heads",
                      "a different lpips version"),
             _checked(backbone_file("vgg", backbone_path), sha256 or TORCHVISION_VGG16_SHA256,
                      "the VGG16 backbone", "ANYCOST_LPIPS_VGG_SHA256")]
    return PplDistance.lpips(load_lpips("vgg", backbone_path, device), files)


def load_ppl_distance(settings, choice: str = "auto", device: str | torch.device = "cpu") -> PplDistance:
    """``choice``: ``nvidia`` (``ANYCOST_PPL_VGG16_PATH``), ``lpips`` (the package), or
    ``auto``: NVIDIA's file when one is configured, else the lpips package."""
    if choice not in CHOICES:
        raise ValueError(f"distance must be one of {', '.join(CHOICES)}")
    if choice == "nvidia" or (choice == "auto" and settings.ppl_vgg16_path):
        if not settings.ppl_vgg16_path:
            raise EvaluationError(ErrorCode.LPIPS_MISSING, (
                "PPL with NVIDIA's network needs its vgg16.pt: set ANYCOST_PPL_VGG16_PATH"))
        return load_nvidia_vgg16(settings.ppl_vgg16_path, settings.ppl_vgg16_sha256, device)
    return load_lpips_vgg(settings.lpips_vgg_path, settings.lpips_vgg_sha256, device)
