"""``import_nvidia``: NVIDIA's StyleGAN2 network pickle -> installed Anycost-layout files.

Reads a StyleGAN2-ADA-pytorch / StyleGAN3-repo pickle (``{'G', 'D', 'G_ema', ...}``) or the
original TensorFlow release (``(G, D, Gs)``) through the restricted unpickler (nothing in the
file runs), converts ``G_ema`` (``Gs``) and ``D``, checks that our models load the result
strictly, and installs ``generator_<NAME>.pt`` (``{'g_ema', 'latent_avg'[, 'arch']}``) and
``discriminator_<NAME>.pt`` (``{'d'[, 'arch']}``) in the weights directory. A NAME other than a
built-in one registers a user config in the manifest, with resolution and widths from the file,
the source file's sha256 and NVIDIA's licence.
"""

from __future__ import annotations

import pickle
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from shared.catalog.configs import CONFIGS, USER_CONFIG_NAME
from worker.anycost import checkpoints as ckpt
from worker.anycost import weights
from worker.anycost.download import sha256_file
from worker.anycost.nvidia import convert, tf
from worker.anycost.nvidia.unpickle import PersistentObject, UnsafePickleError, load_nvidia_pickle

#: The config NVIDIA's 1024 px FFHQ config-f network fills by default.
DEFAULT_FFHQ_CONFIG = "stylegan2-ffhq-config-f"
LICENCE = ("NVIDIA Source Code License-NC: non-commercial use only (research and evaluation); "
           "see the README's Weights section")
_CONFIG_F = {"resolution": 1024, "channel_multiplier": 2, "channel_max": 512, "style_dim": 512, "n_mlp": 8}


class NvidiaImportError(ckpt.CheckpointError):
    """The file is not an NVIDIA network we can import; ``str(err)`` is one line."""


@dataclass
class ConvertedNetworks:
    """Our generator and discriminator files' contents, converted and checked."""

    format: str  # "stylegan2-ada-pytorch" or "stylegan2-tf"
    generator: dict[str, Any]  # the generator file's object
    generator_config: dict  # Generator constructor kwargs inferred from the state_dict
    discriminator: dict[str, Any] | None
    discriminator_config: dict | None


# --------------------------------------------------------------------------- reading


def _sniff(path: Path) -> None:
    if not path.exists():
        raise NvidiaImportError(path, "no such file")
    if path.is_dir():
        raise NvidiaImportError(path, "is a directory, not a network pickle")
    if path.stat().st_size == 0:
        raise NvidiaImportError(path, "the file is empty (0 bytes): an interrupted download?")
    with path.open("rb") as f:
        head = f.read(16)
    if head.startswith(b"PK\x03\x04"):
        raise NvidiaImportError(path, "a PyTorch checkpoint (zip), not an NVIDIA network pickle: "
                                      "install it with `weights import CONFIG FILE`")
    if not head.startswith(b"\x80"):
        raise NvidiaImportError(path, f"not a pickle (first bytes {head[:8].hex()}): expected NVIDIA's "
                                      "network-snapshot .pkl")


def _unpickle(path: Path) -> Any:
    _sniff(path)
    try:
        return load_nvidia_pickle(path)
    except UnsafePickleError as exc:
        raise NvidiaImportError(path, f"unsafe pickle: {exc}") from None
    except (EOFError, pickle.UnpicklingError) as exc:
        raise NvidiaImportError(path, f"truncated or corrupt pickle ({_first_line(exc)})") from None
    except Exception as exc:  # anything the data constructors raise on malformed input
        raise NvidiaImportError(path, f"corrupt pickle ({type(exc).__name__}: {_first_line(exc)})") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else "no details")[:200]


def flatten_module(obj: PersistentObject, prefix: str = "") -> dict[str, torch.Tensor]:
    """A persistent module's ``state_dict()``: parameters and persistent buffers, recursively."""
    state = obj.state
    skip = set(state.get("_non_persistent_buffers_set") or ())
    out: dict[str, torch.Tensor] = {}
    for group in ("_parameters", "_buffers"):
        for name, value in (state.get(group) or {}).items():
            if value is None or (group == "_buffers" and name in skip):
                continue
            if not isinstance(value, torch.Tensor):
                raise convert.ConversionError(f"{prefix}{name} is a {type(value).__name__}, not a tensor")
            out[prefix + name] = value
    for name, child in (state.get("_modules") or {}).items():
        if child is None:
            continue
        if not isinstance(child, PersistentObject):
            raise convert.ConversionError(f"{prefix}{name} is not an NVIDIA network layer")
        out.update(flatten_module(child, f"{prefix}{name}."))
    return out


def _persistent(obj: dict, key: str, path: Path) -> PersistentObject:
    value = obj.get(key)
    if not isinstance(value, PersistentObject):
        raise NvidiaImportError(path, f"'{key}' is not a network module ({type(value).__name__})")
    return value


def generator_kwargs(g: PersistentObject) -> dict:
    """G's constructor kwargs, plus its synthesis and mapping modules' own (the network's
    arguments wherever the training code recorded them; see ``convert.SYNTHESIS_SOURCES``)."""
    kwargs = dict(g.state.get("_init_kwargs") or {})
    modules = g.state.get("_modules") or {}
    for name in ("synthesis", "mapping"):
        child = modules.get(name)
        if isinstance(child, PersistentObject):
            kwargs[f"{name}_module_kwargs"] = dict(child.state.get("_init_kwargs") or {})
    return kwargs


def read_networks(path: str | Path) -> tuple[str, tuple[dict, dict], tuple[dict, dict] | None]:
    """(format, (G flat tensors, G kwargs), (D flat tensors, D kwargs) or None) of a pickle."""
    path = Path(path)
    obj = _unpickle(path)
    try:
        if isinstance(obj, dict) and "G_ema" in obj:
            g = _persistent(obj, "G_ema", path)
            d = _persistent(obj, "D", path) if obj.get("D") is not None else None
            g_part = (flatten_module(g), generator_kwargs(g))
            d_part = (flatten_module(d), dict(d.state.get("_init_kwargs") or {})) if d else None
            return "stylegan2-ada-pytorch", g_part, d_part
        if tf.is_tf_release(obj):
            gs, d = tf.networks(obj)
            return "stylegan2-tf", tf.generator_to_ada(gs), tf.discriminator_to_ada(d)
    except convert.ConversionError as exc:
        raise NvidiaImportError(path, str(exc)) from None
    found = f"a dict with keys {sorted(map(str, obj))[:8]}" if isinstance(obj, dict) else f"a {type(obj).__name__}"
    raise NvidiaImportError(path, f"not an NVIDIA StyleGAN2 network pickle: found {found}, expected "
                                  "{'G_ema': ..., 'D': ...} or a TF (G, D, Gs) tuple")


# --------------------------------------------------------------------------- converting


def convert_networks(path: str | Path) -> ConvertedNetworks:
    """Read and convert a pickle; our models are built and loaded strictly as a check."""
    from worker.anycost.discriminator import Discriminator
    from worker.anycost.generator import Generator

    path = Path(path)
    fmt, (g_flat, g_kwargs), d_part = read_networks(path)
    try:  # the architecture first: what cannot convert is named before any tensor is touched
        g_arch = convert.generator_arch(g_kwargs)
        convert.check_generator_shapes(g_flat)
        convert.check_channel_widths(g_flat, g_kwargs)
        if d_part is not None:
            convert.discriminator_arch(d_part[1])
        g_sd, w_avg = convert.generator_state_dict(g_flat)
        g_config = ckpt.infer_generator_config(g_sd, path)
        generator = Generator(**g_config, **g_arch)
        g_sd = convert.with_fixed_buffers(g_sd, generator)
        ckpt.check_state_dict(path, g_sd, generator.state_dict())
        g_file: dict[str, Any] = {"g_ema": g_sd, "latent_avg": w_avg}
        arch = {k: v for k, v in g_arch.items() if v != {"conv_clamp": None, "lr_mlp": 0.01}[k]}
        if arch:
            g_file["arch"] = arch
        d_file = d_config = None
        if d_part is not None:
            d_flat, d_kwargs = d_part
            d_sd = convert.discriminator_state_dict(d_flat)
            d_arch = convert.discriminator_arch(d_kwargs)
            d_config = ckpt.infer_discriminator_config(d_sd, path)
            discriminator = Discriminator(**d_config, **d_arch)
            d_sd = convert.with_fixed_buffers(d_sd, discriminator)
            ckpt.check_state_dict(path, d_sd, discriminator.state_dict())
            d_file = {"d": d_sd}
            arch = {k: v for k, v in d_arch.items() if v != {"conv_clamp": None, "mbstd_group_size": 4}[k]}
            if arch:
                d_file["arch"] = arch
    except convert.ConversionError as exc:
        raise NvidiaImportError(path, str(exc)) from None
    except ckpt.CheckpointError as exc:
        raise NvidiaImportError(path, f"converted weights do not fit our models: {exc.problem}") from None
    return ConvertedNetworks(fmt, g_file, g_config, d_file, d_config)


# --------------------------------------------------------------------------- installing


def default_config_name(generator_config: dict) -> str | None:
    """stylegan2-ffhq-config-f for a 1024 px config-f network; None otherwise (name it)."""
    return DEFAULT_FFHQ_CONFIG if all(generator_config.get(k) == v for k, v in _CONFIG_F.items()) else None


def import_nvidia(
    path: str | Path, config: str | None = None, weights_dir_: str | Path | None = None
) -> list[weights.InstalledFile]:
    """Convert and install an NVIDIA pickle as config ``config`` (see the module docstring)."""
    path = Path(path).expanduser()
    nets = convert_networks(path)
    name = config or default_config_name(nets.generator_config)
    if name is None:
        res = nets.generator_config["resolution"]
        raise NvidiaImportError(path, f"a {res} px network is not FFHQ config-f: name it with "
                                      "--config NAME (e.g. stylegan2-car-512)")
    builtin = CONFIGS.get(name)
    if builtin is not None and name != DEFAULT_FFHQ_CONFIG:
        raise weights.WeightsError(f"{name} is a built-in Anycost config; import NVIDIA weights "
                                   f"as {DEFAULT_FFHQ_CONFIG} or under a new name")
    if builtin is None and not re.fullmatch(USER_CONFIG_NAME, name):
        raise weights.WeightsError(f"config name {name!r}: use lower-case letters, digits, '.', '_' "
                                   "and '-' (at most 64)")
    directory = weights.weights_dir(weights_dir_)
    directory.mkdir(parents=True, exist_ok=True)
    provenance = {"source": str(path.resolve()), "sha256": sha256_file(path), "licence": LICENCE,
                  "format": nets.format}
    configs: dict[str, dict] = {}
    if builtin is None:
        cfg = nets.generator_config
        arch = {k: cfg[k] for k in ("resolution", "channel_multiplier", "channel_max", "style_dim", "n_mlp")}
        kinds = ["generator"] + (["discriminator"] if nets.discriminator is not None else [])
        before = weights._read_manifest_data(directory)["configs"].get(name) or {}
        kept = {}
        if all(before.get(k) == v for k, v in arch.items()):  # same network: keep its encoder
            kinds += [k for k in before.get("kinds", ()) if k not in kinds]
            kept = {k: before[k] for k in ("encoder",) if k in before}
        configs[name] = {
            **arch, "kinds": kinds, "pretrained": True,
            "description": f"StyleGAN2 imported from NVIDIA's {nets.format} pickle {path.name}",
            **provenance, **kept,
        }
    elif nets.generator_config != {k: getattr(builtin, k) for k in nets.generator_config}:
        raise NvidiaImportError(path, f"this network ({nets.generator_config}) does not fit config {name}")
    entries = [_install(directory, f"generator_{name}.pt", nets.generator, name, "generator", provenance)]
    if nets.discriminator is not None:
        entries.append(_install(directory, f"discriminator_{name}.pt", nets.discriminator, name,
                                "discriminator", provenance))
    weights.record(directory, entries, configs)
    weights.compute_directions_after_install(name, directory)
    return entries


def _install(directory: Path, filename: str, obj: dict, config: str, kind: str,
             provenance: dict) -> weights.InstalledFile:
    final = directory / filename
    tmp = directory / f".{filename}.part"
    torch.save(obj, tmp)
    ckpt.load_generator(tmp) if kind == "generator" else ckpt.load_discriminator(tmp)
    sha, size = sha256_file(tmp), tmp.stat().st_size
    tmp.replace(final)
    source = f"{provenance['source']} ({provenance['format']}, sha256 {provenance['sha256']})"
    return weights.InstalledFile(config, kind, final, sha, size, source, True)
