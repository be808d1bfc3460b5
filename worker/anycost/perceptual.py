"""LPIPS built from files already on disk (never downloaded).

The ``lpips`` package ships only its linear heads (``lpips/weights/v0.1/{net}.pth``); the backbone
is torchvision's ImageNet network, which ``lpips`` would download on first use. We build the
network with a random backbone, then load both parts ourselves with ``weights_only=True``:

- heads: from the installed ``lpips`` package;
- backbone: torchvision's state dict file, ``vgg16-397923af.pth`` for VGG (PPL, consistency;
  ``ANYCOST_LPIPS_VGG_PATH``, default ``<torch hub>/checkpoints/vgg16-397923af.pth``, where
  torchvision itself would keep it) or ``alexnet-owt-*.pth`` for AlexNet (refinement's loss).

``lpips_problem`` says what is missing (None when everything is there); ``load_lpips`` raises
``LpipsMissing`` (code ``lpips_missing``) with that text; ``optional_lpips`` is the net when its
files are all there, else None (for losses with a documented fallback). The one LPIPS loader of
the worker: evaluation, refinement and training all use it.
"""

from __future__ import annotations

import functools
import glob
import importlib.util
import warnings
from pathlib import Path

import torch

from shared.codes.errors import ErrorCode

BACKBONE_FILES = {"vgg": "vgg16-397923af.pth", "alex": "alexnet-owt-*.pth"}


class LpipsMissing(Exception):
    """LPIPS cannot be built from the files on disk; ``code`` is ``lpips_missing``."""

    def __init__(self, message: str):
        super().__init__(message)
        self.code = str(ErrorCode.LPIPS_MISSING)
        self.message = message


def hub_checkpoints() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints"


def heads_file(net: str) -> Path | None:
    spec = importlib.util.find_spec("lpips")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / "weights" / "v0.1" / f"{net}.pth"


def backbone_file(net: str, configured: str = "") -> Path:
    """The configured file, else the first match in torch hub's checkpoint folder (or its name)."""
    if configured:
        return Path(configured)
    pattern = str(hub_checkpoints() / BACKBONE_FILES[net])
    found = sorted(glob.glob(pattern))
    return Path(found[0]) if found else Path(pattern)


def lpips_problem(net: str = "vgg", backbone_path: str = "") -> str | None:
    """What is missing to build LPIPS(``net``) offline, as a sentence; None when nothing is."""
    if net not in BACKBONE_FILES:
        raise ValueError(f"net must be one of {', '.join(BACKBONE_FILES)}")
    heads = heads_file(net)
    if heads is None:
        return "LPIPS needs the `lpips` package: `pip install lpips==0.1.4` in the worker's environment"
    if not heads.is_file():
        return f"the lpips package has no linear heads at {heads}"
    backbone = backbone_file(net, backbone_path)
    if not backbone.is_file():
        where = ("ANYCOST_LPIPS_VGG_PATH" if net == "vgg" else "torch hub's checkpoints folder")
        return (f"LPIPS({net}) needs torchvision's ImageNet {net} weights "
                f"({BACKBONE_FILES[net]}) at {backbone} ({where}); copy the file there")
    return None


def lpips_available(net: str = "vgg", backbone_path: str = "") -> bool:
    return lpips_problem(net, backbone_path) is None


def load_lpips(net: str = "vgg", backbone_path: str = "", device: str | torch.device = "cpu"):
    """An eval-mode, frozen LPIPS(``net``) on ``device``; inputs ``[N, 3, H, W]`` in [-1, 1]."""
    problem = lpips_problem(net, backbone_path)
    if problem is not None:
        raise LpipsMissing(problem)
    return _build(net, str(backbone_file(net, backbone_path)), str(device))


@functools.lru_cache(maxsize=2)
def optional_lpips(net: str = "alex"):
    """LPIPS(``net``) on the CPU when its files are all on disk (default places), else None."""
    return load_lpips(net) if lpips_available(net) else None


@functools.lru_cache(maxsize=4)
def _build(net: str, backbone: str, device: str):
    import lpips

    with warnings.catch_warnings():  # lpips passes torchvision's deprecated `pretrained` flag
        warnings.simplefilter("ignore")
        model = lpips.LPIPS(pretrained=False, net=net, pnet_rand=True, verbose=False)
    heads = torch.load(heads_file(net), map_location="cpu", weights_only=True)
    weights = torch.load(backbone, map_location="cpu", weights_only=True)
    state = {}
    # lpips splits torchvision's `features` Sequential into slices that keep the original
    # indices as child names, so each backbone tensor maps to exactly one slice parameter.
    for slice_name, block in model.net.named_children():
        for index, _ in block.named_children():
            for param in ("weight", "bias"):
                key = f"features.{index}.{param}"
                if key in weights:
                    state[f"net.{slice_name}.{index}.{param}"] = weights[key]
    expected = {k for k in model.state_dict() if k.startswith("net.")}
    if set(state) != expected:
        raise LpipsMissing(f"{backbone} is not a torchvision {net} state dict "
                              f"({len(state)} of {len(expected)} backbone tensors found)")
    missing, unexpected = model.load_state_dict({**state, **heads}, strict=False)
    # Not in the files: the constant input scaling, and `lins.N`, aliases of the heads `linN`.
    missing = [k for k in missing if not k.startswith(("scaling_layer.", "lins."))]
    if unexpected or missing:
        raise LpipsMissing(f"LPIPS({net}) files do not fit: missing {missing}, unexpected {unexpected}")
    model = model.eval().to(device)
    for p in model.parameters():
        p.requires_grad_(False)
    return model
