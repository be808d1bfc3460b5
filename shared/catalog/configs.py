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

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

#: The kinds of checkpoint file a config can have, in the order they are fetched.
KINDS: tuple[str, ...] = ("generator", "encoder", "boundary")
#: Kinds that any config may have besides its released files: a discriminator (from an NVIDIA
#: import; realism scores). Directions computed from the generator are derived files, kept
#: beside it (``shared.catalog.directions``), not registry entries.
OPTIONAL_KINDS: tuple[str, ...] = ("discriminator",)
#: The manifest in the weights directory (files, and configs registered by imports).
MANIFEST_NAME = "weights.json"

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
    #: kinds a worker needs to serve the config (default: all of ``kinds``)
    required_kinds: tuple[str, ...] | None = None
    user_defined: bool = False  # registered by an import into this weights directory
    provenance: dict = field(default_factory=dict, compare=False)  # source, licence, sha256

    @property
    def required(self) -> tuple[str, ...]:
        """The kinds without which a worker cannot serve this config."""
        return self.kinds if self.required_kinds is None else self.required_kinds

    @property
    def all_kinds(self) -> tuple[str, ...]:
        """Every kind of file this config may have installed (released, then optional)."""
        return self.kinds + tuple(k for k in OPTIONAL_KINDS if k not in self.kinds)

    @property
    def n_style(self) -> int:
        """Number of W+ style slots: two per resolution level from 4 px up, minus two."""
        return 2 * int(math.log2(self.resolution)) - 2

    def filename(self, kind: str) -> str:
        """File name of one checkpoint, as released: ``{kind}_{config}.pt``."""
        if kind not in self.all_kinds:
            self._check_kind(kind)
        return f"{kind}_{self.name}.pt"

    def urls(self, kind: str) -> list[str]:
        """Official download URLs of one checkpoint, newest host first (empty when local-only)."""
        self._check_kind(kind)
        if not self.pretrained or self.user_defined:
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
            "required_kinds": list(self.required),
            "pretrained": self.pretrained,
            "description": self.description,
            "user_defined": self.user_defined,
            **({"provenance": dict(self.provenance)} if self.provenance else {}),
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
        required_kinds=("generator",),
        pretrained=True,
        description="The original StyleGAN2 FFHQ config-f generator: `weights import-nvidia` "
                    "fills it from NVIDIA's published pickle (its sub-networks are untrained).",
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


#: Names a user config may take: what a file name and a URL carry without quoting.
USER_CONFIG_NAME = r"[a-z0-9][a-z0-9._-]{0,63}"


def _default_weights_dir() -> Path:
    from shared.platform.settings import get_settings

    return Path(get_settings().weights_dir)


def user_configs(weights_dir: str | Path | None = None) -> dict[str, ModelConfig]:
    """Configs registered in a weights directory's manifest (by ``weights import-nvidia``).

    A missing or unreadable manifest means none; the weights CLI reports unreadable manifests.
    """
    path = Path(weights_dir if weights_dir is not None else _default_weights_dir()) / MANIFEST_NAME
    try:
        st = path.stat()
    except OSError:
        return {}
    # Serializing a batch asks once per item: parse the manifest again only when it changed.
    # The manifest is replaced atomically on every write: a new inode even within one clock tick.
    stamp = (st.st_mtime_ns, st.st_ino, st.st_size)
    cached = _USER_CONFIGS_CACHE.get(path)
    if cached is not None and cached[0] == stamp:
        return dict(cached[1])
    configs = _parse_user_configs(path)
    _USER_CONFIGS_CACHE[path] = (stamp, configs)
    return dict(configs)


_USER_CONFIGS_CACHE: dict[Path, tuple[tuple[int, int, int], dict[str, ModelConfig]]] = {}


def _parse_user_configs(path: Path) -> dict[str, ModelConfig]:
    try:
        raw = json.loads(path.read_text()).get("configs") or {}
    except (OSError, ValueError, AttributeError):
        return {}
    out: dict[str, ModelConfig] = {}
    for name, rec in raw.items() if isinstance(raw, dict) else ():
        try:
            out[name] = ModelConfig(
                name=name, resolution=int(rec["resolution"]),
                channel_multiplier=rec["channel_multiplier"], channel_max=int(rec["channel_max"]),
                kinds=tuple(rec.get("kinds", ("generator",))), pretrained=bool(rec["pretrained"]),
                description=str(rec.get("description", "")), style_dim=int(rec["style_dim"]),
                n_mlp=int(rec["n_mlp"]), required_kinds=("generator",), user_defined=True,
                provenance={k: rec[k] for k in ("source", "licence", "sha256", "format") if k in rec},
            )
        except (KeyError, TypeError, ValueError):
            continue  # a hand-edited entry that makes no sense: not a config
    return out


def all_configs(weights_dir: str | Path | None = None) -> dict[str, ModelConfig]:
    """Built-in configs, then the weights directory's user configs (built-in names win)."""
    return {**CONFIGS, **{n: c for n, c in user_configs(weights_dir).items() if n not in CONFIGS}}


def config_names(weights_dir: str | Path | None = None) -> list[str]:
    """Names of all known configs: the catalogue's, then those registered by imports."""
    return list(CONFIGS) + [n for n in user_configs(weights_dir) if n not in CONFIGS]


def get_model_config(name: str, weights_dir: str | Path | None = None) -> ModelConfig:
    """The config called ``name`` (built-in, or registered in the weights directory).

    Raises :class:`UnknownConfigError` listing the known names.
    """
    if name in CONFIGS:
        return CONFIGS[name]
    found = user_configs(weights_dir).get(name)
    if found is None:
        raise UnknownConfigError(
            f"unknown model config {name!r}; known configs: {', '.join(config_names(weights_dir))}"
        )
    return found
