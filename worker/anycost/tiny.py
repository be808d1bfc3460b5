"""The ``tiny-random`` development config: small checkpoints with deterministic random weights.

``build_tiny_random(dir)`` writes ``generator_tiny-random.pt`` ({'g_ema': ...}, 64 px,
channel_max 64), ``encoder_tiny-random.pt`` ({'state_dict': ...}, a ResNet-50 with n_style 10)
and ``boundary_tiny-random.pt`` (40 unit-norm [1, 512] directions), in the released layouts,
so every code path that reads real weights runs unchanged on a CPU in seconds. The images are
not faces: whatever is rendered from these weights must be marked as random.

Determinism: each tensor is drawn from its own ``torch.Generator`` seeded from SEED and the
tensor's name, and files are written with a fixed archive name, so the bytes (and the sha256)
are the same on every build with the same torch version.
"""

from __future__ import annotations

import os
import zlib
from pathlib import Path

import torch

from shared.catalog.configs import TINY_CONFIG, get_model_config
from shared.codes.attributes import ATTRIBUTES

CONFIG_NAME = TINY_CONFIG
SEED = 20210101
SOURCE = f"built locally by worker.anycost.tiny (seed {SEED}, random weights)"
# Mapping weights are stored divided by the equalized-lr multiplier (0.01), as in training.
_MAPPING_WEIGHT_STD = 100.0
_TO_RGB_STD = 0.3
# The encoder's random ResNet-50 features have norm ~1e3; this keeps fc's output (the offset
# from mean_latent) at std ~0.3, inside the region where the random generator renders sanely.
_ENCODER_FC_SCALE = 0.02


def _rng(name: str) -> torch.Generator:
    """A generator private to one tensor name: values do not depend on creation order."""
    return torch.Generator().manual_seed(SEED + zlib.crc32(name.encode()))


def _randn(name: str, shape: torch.Size, std: float = 1.0) -> torch.Tensor:
    return torch.randn(shape, generator=_rng(name)) * std


def tiny_generator_state_dict() -> dict[str, torch.Tensor]:
    """The tiny generator's ``g_ema``: StyleGAN-like init, zero-init parameters made non-zero.

    Noise strengths, activation and ToRGB biases are small random values (as in a trained
    model) so that every part of the network is exercised; blur kernels are the model's own.
    """
    from worker.anycost.generator import Generator

    cfg = get_model_config(CONFIG_NAME)
    template = Generator(
        cfg.resolution, cfg.style_dim, channel_multiplier=cfg.channel_multiplier,
        channel_max=cfg.channel_max,
    ).state_dict()
    out: dict[str, torch.Tensor] = {}
    for name, tensor in template.items():
        shape = tensor.shape
        if name.endswith("kernel"):  # fixed low-pass filters, not learned
            value = tensor.clone()
        elif name.startswith("style.") and name.endswith(".weight"):
            value = _randn(name, shape, _MAPPING_WEIGHT_STD)
        elif name.endswith("modulation.bias"):
            value = torch.ones(shape)  # StyleGAN2 initialises style modulation around 1
        elif name.endswith("noise.weight"):
            value = _randn(name, shape, 0.05)
        elif name.startswith("to_rgb") and name.endswith(".bias"):
            value = _randn(name, shape, 0.05)
        elif name.startswith("to_rgb") and name.endswith("conv.weight"):
            # ToRGB is not demodulated and five levels add up: damp it so images stay in ~[-1, 1]
            value = _randn(name, shape, _TO_RGB_STD)
        elif name.endswith(".bias"):  # mapping and activation biases
            value = _randn(name, shape, 0.1)
        else:  # conv/modulation weights, the constant input, the fixed noise maps
            value = _randn(name, shape)
        out[name] = value.to(tensor.dtype).contiguous()
    return out


def tiny_boundaries() -> dict[str, torch.Tensor]:
    """40 unit-norm float32 [1, 512] directions keyed like the released boundary files."""
    style_dim = get_model_config(CONFIG_NAME).style_dim
    out = {}
    for name in ATTRIBUTES:
        vec = _randn(f"boundary.{name}", torch.Size([1, style_dim]))
        out[name] = (vec / vec.norm()).contiguous()
    return out


def tiny_encoder_state_dict(generator_sd: dict[str, torch.Tensor] | None = None) -> dict:
    """A ResNet-50 encoder for the tiny generator: n_style matches, fc small, mean_latent = E[w].

    mean_latent is the tiny generator's average w over a fixed batch of z, rounded to 1e-4 so
    that float rounding differences between machines do not change the file's bytes.
    """
    from worker.anycost.encoder import Encoder
    from worker.anycost.generator import Generator

    cfg = get_model_config(CONFIG_NAME)
    template = Encoder(n_style=cfg.n_style, style_dim=cfg.style_dim).state_dict()
    out: dict[str, torch.Tensor] = {}
    for name, tensor in template.items():
        shape = tensor.shape
        if name.endswith("num_batches_tracked"):
            value = torch.zeros((), dtype=torch.int64)
        elif name.endswith("running_var"):
            value = torch.ones(shape)
        elif name.endswith("running_mean") or name == "mean_latent":
            value = torch.zeros(shape)
        elif ".bn" in name or ".downsample.1." in name or name.startswith("bn1."):
            # BatchNorm affine: weight 1, bias 0, as torchvision initialises it
            value = torch.ones(shape) if name.endswith("weight") else torch.zeros(shape)
        elif name.startswith("fc."):
            value = _randn(name, shape, _ENCODER_FC_SCALE / shape[-1] ** 0.5 if name.endswith(
                "weight") else 0.0)
        else:  # conv weights: He init (fan-out), as torchvision's ResNet
            fan_out = shape[0] * shape[2] * shape[3]
            value = _randn(name, shape, (2.0 / fan_out) ** 0.5)
        out[name] = value.to(tensor.dtype).contiguous()

    g = Generator(cfg.resolution, cfg.style_dim, channel_multiplier=cfg.channel_multiplier,
                  channel_max=cfg.channel_max).double()
    g.load_state_dict(generator_sd or tiny_generator_state_dict())
    with torch.no_grad():
        z = torch.randn(1024, cfg.style_dim, generator=_rng("mean_latent"), dtype=torch.float64)
        mean_w = g.mapping(z).mean(0)
    out["mean_latent"] = (torch.round(mean_w * 1e4) / 1e4).to(torch.float32)
    return out


def _save(obj: dict, final: Path) -> None:
    """Write atomically; through a file object so the archive's inner name is always 'archive'."""
    tmp = final.with_name(f".{final.name}.{os.getpid()}.part")
    with tmp.open("wb") as f:
        torch.save(obj, f)
    os.replace(tmp, final)


def build_tiny_random(directory: str | Path, kinds: list[str] | None = None) -> dict[str, Path]:
    """Write the tiny-random checkpoint files into ``directory``; returns {kind: path}.

    No locking and no manifest here: ``worker.anycost.weights.ensure_tiny_random`` does both.
    """
    cfg = get_model_config(CONFIG_NAME)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    wanted = list(kinds) if kinds is not None else list(cfg.kinds)
    out: dict[str, Path] = {}
    with torch.random.fork_rng(devices=[]):  # never disturb the caller's global RNG
        torch.manual_seed(SEED)  # module constructors draw from it before we overwrite
        g_sd = tiny_generator_state_dict() if {"generator", "encoder"} & set(wanted) else None
        for kind in wanted:
            path = directory / cfg.filename(kind)
            if kind == "generator":
                _save({"g_ema": g_sd}, path)
            elif kind == "encoder":
                _save({"state_dict": tiny_encoder_state_dict(g_sd)}, path)
            elif kind == "boundary":
                _save(tiny_boundaries(), path)
            else:
                raise ValueError(f"unknown kind {kind!r}")
            out[kind] = path
    return out
