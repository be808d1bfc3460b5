"""``import_e4e``: an e4e / pSp checkpoint -> the encoder (and generator) files of a config.

``python -m worker.anycost.weights import-e4e FILE.pt [--config NAME]``. The file is read with
``weights_only=True`` and checked completely first (``worker.anycost.e4e``). Then:
- ``encoder_<NAME>.pt`` is installed (``load_encoder`` returns a ``StyleEncoder``; the bundle's
  ``encoder_method`` and ``weights.encoder_method`` say "e4e" or "psp");
- the bundled decoder becomes ``generator_<NAME>.pt`` when the config has no generator yet;
  when one is installed (e.g. by ``import-nvidia``) it is kept and compared with the decoder:
  the result says whether they are the same network (max abs difference of the weights).
A 1024 px config-f decoder fills ``stylegan2-ffhq-config-f`` by default; any other needs
``--config NAME`` (a user config in the manifest, like ``import-nvidia``'s).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from shared.catalog.configs import (
    CONFIGS,
    USER_CONFIG_NAME,
    ModelConfig,
    get_model_config,
    user_configs,
)
from worker.anycost import checkpoints as ckpt
from worker.anycost import weights
from worker.anycost.download import sha256_file
from worker.anycost.e4e import (
    E4eImportError,
    ReleaseLayout,
    encoder_file,
    generator_file,
    read_release,
)

#: The config a 1024 px config-f decoder fills by default (NVIDIA's FFHQ network).
DEFAULT_CONFIG = "stylegan2-ffhq-config-f"
LICENCE = ("e4e / pSp encoders: MIT (omertov/encoder4editing, eladrich/pixel2style2pixel); their "
           "FFHQ decoder is NVIDIA's StyleGAN2: NVIDIA Source Code License-NC, non-commercial use only")
#: Largest weight difference still called "the same network" (conversions copy float32 exactly).
SAME_NETWORK_ATOL = 1e-5
_ARCH_KEYS = ("resolution", "channel_multiplier", "channel_max", "style_dim", "n_mlp")


@dataclass
class GeneratorComparison:
    """The installed generator next to the checkpoint's decoder."""

    same_architecture: bool
    max_abs_diff: float | None  # over every tensor; None when the architectures differ
    worst_key: str | None = None
    detail: str = ""

    @property
    def same(self) -> bool:
        return self.max_abs_diff is not None and self.max_abs_diff <= SAME_NETWORK_ATOL

    def describe(self) -> str:
        if not self.same_architecture:
            return f"a different architecture ({self.detail})"
        verdict = "the same network" if self.same else "NOT the same network"
        where = f" (at {self.worst_key})" if self.max_abs_diff else ""
        return f"{verdict}: max abs weight difference {self.max_abs_diff:.3g}{where}"


@dataclass
class E4eImport:
    """What ``import_e4e`` installed."""

    config: str
    method: str  # "e4e" or "psp"
    layout: ReleaseLayout = field(repr=False)
    entries: list[weights.InstalledFile]
    comparison: GeneratorComparison | None  # None: the decoder was installed as the generator


def compare_generators(installed_sd: dict[str, torch.Tensor],
                       decoder: dict[str, torch.Tensor]) -> GeneratorComparison:
    """Keys, shapes, then the largest absolute difference of any weight or buffer."""
    missing = sorted(set(installed_sd) ^ set(decoder))
    if missing:
        return GeneratorComparison(False, None, detail=f"{len(missing)} keys differ, e.g. {missing[0]}")
    shapes = [k for k in decoder if tuple(decoder[k].shape) != tuple(installed_sd[k].shape)]
    if shapes:
        k = shapes[0]
        return GeneratorComparison(False, None, detail=f"{k} is {list(installed_sd[k].shape)} "
                                                       f"installed, {list(decoder[k].shape)} here")
    worst, worst_key = 0.0, None
    for key, value in decoder.items():
        diff = float((value.float() - installed_sd[key].float()).abs().max()) if value.numel() else 0.0
        if diff != diff:  # NaN: certainly not the same
            diff = float("inf")
        if worst_key is None or diff > worst:
            worst, worst_key = diff, key
    return GeneratorComparison(True, worst, worst_key)


def _config_name(path: Path, layout: ReleaseLayout, config: str | None) -> str:
    if config is None:
        cfg = CONFIGS[DEFAULT_CONFIG]
        if all(layout.generator_config[k] == getattr(cfg, k) for k in _ARCH_KEYS):
            return DEFAULT_CONFIG
        raise E4eImportError(path, f"a {layout.resolution} px decoder is not FFHQ config-f: name "
                                   "the config with --config NAME")
    if config in CONFIGS and config != DEFAULT_CONFIG:
        raise weights.WeightsError(f"{config} is a built-in Anycost config; import e4e/pSp files as "
                                   f"{DEFAULT_CONFIG} or under a new name")
    if config not in CONFIGS and not re.fullmatch(USER_CONFIG_NAME, config):
        raise weights.WeightsError(f"config name {config!r}: use lower-case letters, digits, '.', "
                                   "'_' and '-' (at most 64)")
    return config


def _check_fits(path: Path, layout: ReleaseLayout, cfg: ModelConfig) -> None:
    want = {k: getattr(cfg, k) for k in _ARCH_KEYS}
    diff = [f"{k} {layout.generator_config[k]} (config says {v})" for k, v in want.items()
            if layout.generator_config[k] != v]
    if diff:
        raise E4eImportError(path, f"this checkpoint's decoder does not fit config {cfg.name}: "
                                   + ", ".join(diff))


def _user_config(name: str, layout: ReleaseLayout, existing: dict | None, provenance: dict) -> dict:
    """The manifest entry of a user config, with 'encoder' among its kinds."""
    if existing is not None:
        kinds = list(existing.get("kinds", ["generator"]))
        return {**existing, "kinds": kinds + ([] if "encoder" in kinds else ["encoder"]),
                "encoder": provenance}
    cfg = layout.generator_config
    return {**{k: cfg[k] for k in _ARCH_KEYS}, "kinds": ["generator", "encoder"], "pretrained": True,
            "description": f"StyleGAN2 decoder and {layout.method} encoder imported from "
                           f"{Path(provenance['source']).name}",
            **provenance, "encoder": provenance}


def _install(directory: Path, filename: str, obj: dict[str, Any], config: str, kind: str,
             source: str) -> weights.InstalledFile:
    final = directory / filename
    tmp = directory / f".{filename}.part"
    try:
        torch.save(obj, tmp)
        ckpt.load_generator(tmp) if kind == "generator" else ckpt.load_encoder(tmp)  # as served
        sha, size = sha256_file(tmp), tmp.stat().st_size
        tmp.replace(final)
    finally:
        tmp.unlink(missing_ok=True)
    return weights.InstalledFile(config, kind, final, sha, size, source, True)


def _manifest_configs(directory: Path) -> dict[str, dict]:
    return weights._read_manifest_data(directory)["configs"]


def import_e4e(path: str | Path, config: str | None = None,
               weights_dir_: str | Path | None = None) -> E4eImport:
    """Check, convert and install an e4e / pSp checkpoint as config ``config`` (module docstring)."""
    path = Path(path).expanduser()
    layout = read_release(path)
    name = _config_name(path, layout, config)
    directory = weights.weights_dir(weights_dir_)
    directory.mkdir(parents=True, exist_ok=True)
    known = name in CONFIGS or name in user_configs(directory)
    have: dict[str, weights.InstalledFile] = {}
    if known:
        _check_fits(path, layout, get_model_config(name, directory))
        have = weights.installed(name, directory)
    comparison = None
    if "generator" in have:
        installed_sd = ckpt.generator_state_dict(have["generator"].path)
        comparison = compare_generators(installed_sd, generator_file(layout)["g_ema"])
        if not comparison.same_architecture:
            raise E4eImportError(path, f"the installed generator of {name} is {comparison.describe()}"
                                       ": import the checkpoint under another --config")
    provenance = {"source": str(path.resolve()), "sha256": sha256_file(path), "licence": LICENCE,
                  "format": f"{layout.method} ({layout.encoder_type})"}
    source = f"{provenance['source']} ({provenance['format']}, sha256 {provenance['sha256']})"
    entries = []
    if comparison is None:
        entries.append(_install(directory, f"generator_{name}.pt", generator_file(layout), name,
                                "generator", source))
    entries.append(_install(directory, f"encoder_{name}.pt", encoder_file(layout), name, "encoder",
                            source))
    configs = {}
    if name not in CONFIGS:
        configs[name] = _user_config(name, layout, _manifest_configs(directory).get(name), provenance)
    weights.record(directory, entries, configs)
    if comparison is None:
        weights.compute_directions_after_install(name, directory)
    return E4eImport(name, layout.method, layout, entries, comparison)
