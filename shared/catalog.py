"""The catalogue of known model configs (pure Python: the web side reads it, never torch).

Each config names a generator architecture (output resolution, channel widths), which checkpoint
files were released for it, and where they were published. URLs follow the original release's
pattern ``{host}/{kind}_{config}.pt``; the newer host is tried first, the older one is a fallback
mirror. Public reports say neither host serves the files any more, which is why the weights
registry (``worker.anycost.weights``) also accepts other mirrors and local files.

``tiny-random`` is the development config: a 64 px generator with narrow layers, built locally
from a fixed seed (``worker.anycost.tiny``). Anything rendered from it is marked not pretrained.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: The kinds of checkpoint file a config can have, in the order they are fetched.
KINDS: tuple[str, ...] = ("generator", "encoder", "boundary")

#: Official hosts of the released files, newest first (the older one is a fallback mirror).
OFFICIAL_HOSTS: tuple[str, ...] = (
    "https://hanlab18.mit.edu/projects/anycost-gan/files",
    "https://hanlab.mit.edu/projects/anycost-gan/files",
)

#: The config the service uses unless told otherwise.
DEFAULT_CONFIG = "anycost-ffhq-config-f"
#: The development config built locally from random weights.
TINY_CONFIG = "tiny-random"


class UnknownConfigError(KeyError):
    """Raised for a config name the catalogue does not know; the message lists known names."""

    def __str__(self) -> str:  # KeyError quotes its argument; keep the message readable.
        return str(self.args[0]) if self.args else "unknown model config"


@dataclass(frozen=True)
class ModelConfig:
    """One known model config: architecture, released files and provenance."""

    name: str
    resolution: int  # output width/height in pixels of the full generator
    channel_multiplier: int  # StyleGAN2 config-f width multiplier
    channel_max: int  # widest layer (512 for the released models)
    kinds: tuple[str, ...]  # which checkpoint files exist for this config
    pretrained: bool  # False: random weights, images are not meaningful faces
    description: str
    style_dim: int = 512
    n_mlp: int = 8  # layers of the mapping network

    @property
    def n_style(self) -> int:
        """Number of W+ style slots: two per resolution level from 4 px up, minus two."""
        return 2 * int(math.log2(self.resolution)) - 2

    def filename(self, kind: str) -> str:
        """File name of one checkpoint, as released: ``{kind}_{config}.pt``."""
        self._check_kind(kind)
        return f"{kind}_{self.name}.pt"

    def urls(self, kind: str) -> list[str]:
        """Official download URLs of one checkpoint, newest host first (empty when local-only)."""
        self._check_kind(kind)
        if not self.pretrained:
            return []
        return [f"{host}/{self.filename(kind)}" for host in OFFICIAL_HOSTS]

    def to_dict(self) -> dict:
        """JSON-friendly description (used by the API and the CLI)."""
        return {
            "name": self.name,
            "resolution": self.resolution,
            "n_style": self.n_style,
            "style_dim": self.style_dim,
            "n_mlp": self.n_mlp,
            "channel_multiplier": self.channel_multiplier,
            "channel_max": self.channel_max,
            "kinds": list(self.kinds),
            "pretrained": self.pretrained,
            "description": self.description,
        }

    def _check_kind(self, kind: str) -> None:
        if kind not in self.kinds:
            raise ValueError(
                f"config {self.name!r} has no {kind!r} file (it has: {', '.join(self.kinds)})"
            )


_CONFIGS: tuple[ModelConfig, ...] = (
    ModelConfig(
        name="anycost-ffhq-config-f",
        resolution=1024,
        channel_multiplier=2,
        channel_max=512,
        kinds=KINDS,
        pretrained=True,
        description="Anycost GAN trained on FFHQ, uniform channel ratios (the default).",
    ),
    ModelConfig(
        name="anycost-ffhq-config-f-flexible",
        resolution=1024,
        channel_multiplier=2,
        channel_max=512,
        kinds=KINDS,
        pretrained=True,
        description="Anycost GAN on FFHQ trained for flexible per-layer channel counts.",
    ),
    ModelConfig(
        name="stylegan2-ffhq-config-f",
        resolution=1024,
        channel_multiplier=2,
        channel_max=512,
        kinds=KINDS,
        pretrained=True,
        description="The original StyleGAN2 FFHQ config-f generator (full cost only).",
    ),
    ModelConfig(
        name="anycost-car-config-f",
        resolution=512,
        channel_multiplier=2,
        channel_max=512,
        kinds=("generator",),
        pretrained=True,
        description="Anycost GAN trained on LSUN cars (generator only: no encoder, no edits).",
    ),
    ModelConfig(
        name=TINY_CONFIG,
        resolution=64,
        channel_multiplier=2,
        channel_max=64,
        kinds=KINDS,
        pretrained=False,
        description="Development config: 64 px, random weights built locally; not real faces.",
    ),
)

CONFIGS: dict[str, ModelConfig] = {c.name: c for c in _CONFIGS}


def config_names() -> list[str]:
    """Names of all known configs, in catalogue order."""
    return list(CONFIGS)


def get_model_config(name: str) -> ModelConfig:
    """The config called ``name``; raises :class:`UnknownConfigError` listing the known names."""
    try:
        return CONFIGS[name]
    except KeyError:
        raise UnknownConfigError(
            f"unknown model config {name!r}; known configs: {', '.join(CONFIGS)}"
        ) from None
