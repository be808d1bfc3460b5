"""``load_bundle``: everything a worker process renders with, loaded once from installed files.

The worker calls ``load_bundle(config)`` once after fork. It only reads files the registry has
installed (``worker.anycost.weights``); it never downloads. The one exception is the development
config ``tiny-random``, whose files are built locally on first use (under a lock). The generator's
own directions (``directions_<config>.pt``, computed at install) join the boundaries when present.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from shared.catalog.configs import TINY_CONFIG, get_model_config
from shared.catalog.directions import pt_path
from worker.anycost import weights
from worker.anycost.checkpoints import (
    load_boundaries,
    load_discriminator,
    load_encoder,
    load_generator,
    load_latent_avg,
)
from worker.anycost.directions import Direction, Directions, load_generator_directions
from worker.anycost.discriminator import Discriminator
from worker.anycost.encoder import Encoder
from worker.anycost.generator import Generator
from worker.anycost.style_encoder import StyleEncoder
from worker.anycost.weights.routes import fix_for

log = logging.getLogger(__name__)


class WeightsNotInstalledError(weights.WeightsError):
    """The config's files are not installed; the message gives the command that installs them
    (``reason`` and ``fix`` apart, for the worker's heartbeat row)."""

    def __init__(self, reason: str, fix: str):
        super().__init__(f"{reason}; {fix}")
        self.reason = reason
        self.fix = fix


@dataclass
class ModelBundle:
    """The models of one config, on one device, ready for inference (eval mode, no grad)."""

    config: str
    generator: Generator
    encoder: Encoder | StyleEncoder | None  # None: released/imported without one (cars, NVIDIA)
    directions: Directions | None  # None when there are neither boundaries nor generator ones
    pretrained: bool  # False: random weights; results must be labelled as such
    resolution: int
    n_style: int
    device: torch.device
    discriminator: Discriminator | None = None  # realism scores, when one is installed
    latent_avg: torch.Tensor | None = None  # w_avg [S] stored with the generator (NVIDIA imports)

    def w_avg(self) -> torch.Tensor:
        """The truncation / projection start point: the file's w_avg, else the mean of 4096 w."""
        if self.latent_avg is not None:
            return self.latent_avg
        g = torch.Generator(device="cpu").manual_seed(0)
        z = torch.randn(4096, self.generator.style_dim, generator=g).to(self.device)
        with torch.no_grad():
            self.latent_avg = self.generator.mapping(z).mean(0)
        return self.latent_avg

    @property
    def encoder_method(self) -> str | None:
        """How photos get their codes: "e4e" / "psp" (an imported e4e or pSp encoder; the
        pipeline's ``projection.method``), "encoder" (Anycost's ResNet-50), or None (no encoder:
        projection by optimisation)."""
        if self.encoder is None:
            return None
        return self.encoder.method if isinstance(self.encoder, StyleEncoder) else "encoder"

    @property
    def can_edit(self) -> bool:
        """Whether photos can be encoded and edited (needs an encoder and directions)."""
        return self.encoder is not None and self.directions is not None


def load_bundle(
    config_name: str, weights_dir: str | Path | None = None, device: str | torch.device = "cpu"
) -> ModelBundle:
    """Load a config's generator, encoder and directions onto ``device``.

    Raises UnknownConfigError for an unknown name, WeightsNotInstalledError (naming the command
    to run) when files are missing, CheckpointError when an installed file is unusable.
    """
    cfg = get_model_config(config_name, weights.weights_dir(weights_dir))
    device = torch.device(device)
    if cfg.name == TINY_CONFIG:
        files = weights.ensure_tiny_random(weights_dir)
    else:
        files = weights.installed(cfg.name, weights_dir)
    missing = [kind for kind in cfg.required if kind not in files]
    if missing:
        where = weights.weights_dir(weights_dir)
        raise WeightsNotInstalledError(
            f"model {cfg.name}: {', '.join(missing)} not installed in {where}",
            fix_for(cfg.name, where),
        )
    generator = load_generator(files["generator"].path, device)
    encoder = load_encoder(files["encoder"].path, device) if "encoder" in files else None
    boundaries = load_boundaries(files["boundary"].path, device) if "boundary" in files else {}
    own = _generator_directions(weights.weights_dir(weights_dir), cfg.name, generator.style_dim)
    directions = Directions(boundaries, own) if boundaries or own else None
    discriminator = (
        load_discriminator(files["discriminator"].path, device) if "discriminator" in files else None
    )
    latent_avg = load_latent_avg(files["generator"].path)
    return ModelBundle(
        config=cfg.name,
        generator=generator,
        encoder=encoder,
        directions=directions,
        # a config is only as pretrained as every one of its files
        pretrained=cfg.pretrained and all(f.pretrained for f in files.values()),
        resolution=generator.resolution,
        n_style=generator.n_style,
        device=device,
        discriminator=discriminator,
        latent_avg=None if latent_avg is None else latent_avg.to(device),
    )


def _generator_directions(directory: Path, config: str, style_dim: int) -> dict[str, Direction]:
    """The installed ``directions_<config>.pt`` as Directions; none (logged) when absent or bad."""
    path = pt_path(directory, config)
    if not path.is_file():
        log.info("no %s: only the boundary edits are available (python -m worker.anycost.weights "
                 "directions %s computes them)", path.name, config)
        return {}
    try:
        loaded = load_generator_directions(path, style_dim)
    except Exception as exc:  # a damaged extra file must not stop the worker
        log.warning("ignoring %s: %s", path, exc)
        return {}
    out = {}
    for key, (vec, slots, gain) in loaded.items():
        try:
            out[key] = Direction.make(vec, slots, gain)
        except ValueError as exc:  # e.g. gain 0: W does not vary along it (a degenerate mapping)
            log.warning("ignoring direction %s of %s: %s", key, path.name, exc)
    return out
