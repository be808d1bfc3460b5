"""Reading e4e and pSp checkpoints: a strict layout check, then our encoder and generator files.

The released files (``e4e_ffhq_encode.pt``, ``psp_ffhq_encode.pt``, ~1.1 GB) are one
``torch.save`` of ``{'state_dict': {'encoder.*', 'decoder.*'}, 'opts': dict, 'latent_avg':
[L, S]}``: an IR-SE50 encoder (``worker.anycost.style_encoder``) and a rosinality-layout StyleGAN2
decoder (our ``Generator``'s key names). ``opts['encoder_type']`` says which encoder it is
(``Encoder4Editing`` -> e4e, ``GradualStyleEncoder`` -> pSp): both have exactly the same layers.

``check_layout`` compares every key, shape and dtype with what our models expect for the
decoder's resolution (it only reads shapes, so it works on 'meta' tensors) and checks the opts
the forward pass depends on; ``convert`` then builds the files the registry installs:
- ``encoder_<NAME>.pt`` = ``{'encoder_type': 'e4e'|'psp', 'state_dict': ...}`` (prefix dropped,
  plus ``latent_avg`` [L, S]: the file's mean w when opts say ``start_from_latent_avg``, else
  zeros, so the encoder adds exactly what the original adds);
- ``generator_<NAME>.pt`` = ``{'g_ema': decoder, 'latent_avg': [S]}`` (the file's mean w).
Installing them is ``worker.anycost.e4e_import``.
"""

from __future__ import annotations

import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from worker.anycost import checkpoints as ckpt
from worker.anycost.style_encoder import n_style_for

#: opts['encoder_type'] -> our method name.
ENCODER_TYPES: dict[str, str] = {"Encoder4Editing": "e4e", "GradualStyleEncoder": "psp"}
#: Top-level entries a training run may leave in the file besides the model (e4e's latent
#: discriminator and optimiser states): allowed and ignored.
TRAINING_LEFTOVERS = ("discriminator_state_dict", "discriminator_optimizer_state_dict", "optimizer")
#: The decoder e4e and pSp build (rosinality's StyleGAN2: 512-d W, 8 mapping layers, config-f
#: widths); its resolution comes from the opts.
E4E_DECODER = {"style_dim": 512, "n_mlp": 8, "channel_multiplier": 2, "channel_max": 512}
_SIZES = tuple(2**i for i in range(3, 11))
#: Which opts entry names the decoder's size, per method (the other is a fallback).
_SIZE_OPTS = {"e4e": ("stylegan_size", "output_size"), "psp": ("output_size", "stylegan_size")}


class E4eImportError(ckpt.CheckpointError):
    """The file is not an e4e / pSp checkpoint we can use; ``str(err)`` is one line."""


@dataclass
class ReleaseLayout:
    """A checked e4e / pSp checkpoint, split into its parts (tensors as in the file)."""

    method: str  # "e4e" or "psp"
    encoder_type: str  # opts['encoder_type']
    resolution: int  # the decoder's output size
    n_style: int
    style_dim: int
    generator_config: dict  # Generator kwargs of the decoder
    start_from_latent_avg: bool
    latent_avg: torch.Tensor | None  # [L, S] or None (the file has none)
    encoder: dict[str, torch.Tensor]  # keys without the 'encoder.' prefix
    decoder: dict[str, torch.Tensor]  # keys without the 'decoder.' prefix
    dataset_type: str | None


def _opts(path: Path, obj: Mapping) -> tuple[str, str, Mapping]:
    opts = obj.get("opts")
    if not isinstance(opts, Mapping):
        raise E4eImportError(path, f"'opts' is a {type(opts).__name__}, expected the training "
                                   "options dict")
    encoder_type = opts.get("encoder_type")
    if encoder_type is None:
        raise E4eImportError(path, "opts has no 'encoder_type': e4e and pSp have the same layers, "
                                   "so the file must say which it is")
    if encoder_type not in ENCODER_TYPES:
        raise E4eImportError(path, f"encoder_type {encoder_type!r} is not supported (only "
                                   "Encoder4Editing (e4e) and GradualStyleEncoder (pSp))")
    if opts.get("learn_in_w"):
        raise E4eImportError(path, "learn_in_w: an encoder into W (one code) is not supported")
    input_nc = opts.get("input_nc", 3)
    if input_nc != 3:
        raise E4eImportError(path, f"input_nc {input_nc!r}: only encoders of RGB photos are "
                                   "supported (sketch/segmentation encoders are not)")
    if not isinstance(opts.get("start_from_latent_avg", False), bool):
        raise E4eImportError(path, "opts['start_from_latent_avg'] is not a bool")
    return ENCODER_TYPES[encoder_type], encoder_type, opts


def _split(path: Path, sd: Mapping[str, torch.Tensor]) -> tuple[dict, dict]:
    enc = {k[len("encoder."):]: v for k, v in sd.items() if k.startswith("encoder.")}
    dec = {k[len("decoder."):]: v for k, v in sd.items() if k.startswith("decoder.")}
    other = [k for k in sd if not k.startswith(("encoder.", "decoder."))]
    if other:
        raise E4eImportError(path, f"unexpected keys ({len(other)}) outside encoder.*/decoder.*: "
                                   f"{ckpt._names(other)}")
    if not enc or not dec:
        raise E4eImportError(path, "the state_dict needs both encoder.* and decoder.* keys "
                                   f"(found {len(enc)} encoder and {len(dec)} decoder tensors)")
    return enc, dec


def expected_state_dict(method: str, n_style: int, generator_config: dict) -> dict[str, torch.Tensor]:
    """Every key of a released checkpoint's state_dict, as meta tensors of the right shape."""
    from worker.anycost.generator import Generator
    from worker.anycost.style_encoder import StyleEncoder

    with torch.device("meta"):
        encoder = StyleEncoder(method, n_style, generator_config["style_dim"])
        decoder = Generator(**generator_config)
    out = {f"encoder.{k}": v for k, v in encoder.state_dict().items() if k != "latent_avg"}
    out.update({f"decoder.{k}": v for k, v in decoder.state_dict().items()})
    return out


def _check_dtypes(path: Path, sd: Mapping[str, torch.Tensor]) -> None:
    for key, value in sd.items():
        want_int = key.endswith("num_batches_tracked")
        if want_int == value.is_floating_point() or value.is_complex():
            what = "an integer" if want_int else "a floating-point"
            raise E4eImportError(path, f"{key} is {value.dtype}, expected {what} tensor")


def _latent_avg(path: Path, obj: Mapping, n_style: int, style_dim: int,
                needed: bool) -> torch.Tensor | None:
    avg = obj.get("latent_avg")
    if avg is None:
        if needed:
            raise E4eImportError(path, "opts say start_from_latent_avg but the file has no "
                                       "latent_avg")
        return None
    if not isinstance(avg, torch.Tensor) or not avg.is_floating_point():
        raise E4eImportError(path, f"latent_avg is a {type(avg).__name__}, expected a float tensor")
    shape = tuple(avg.shape)
    if shape in ((style_dim,), (1, style_dim)):
        return avg.reshape(1, style_dim).expand(n_style, style_dim)
    if shape != (n_style, style_dim):
        raise E4eImportError(path, f"latent_avg is {list(shape)}, expected [{n_style}, {style_dim}]")
    return avg


def _decoder_config(path: Path, dec: Mapping[str, torch.Tensor], method: str, opts: Mapping) -> dict:
    """The decoder's Generator kwargs: inferred from its shapes, checked against the size the
    opts give; when the shapes say nothing usable, the opts' size with e4e's decoder widths (so
    the strict check then names the keys that are missing)."""
    name = next((n for n in _SIZE_OPTS[method] if opts.get(n) is not None), None)
    size = opts.get(name) if name else None
    if size is not None and (not isinstance(size, int) or size not in _SIZES):
        raise E4eImportError(path, f"opts {name} {size!r} is not a StyleGAN2 size (8 .. 1024 px)")
    try:
        config = ckpt.infer_generator_config(dec, path)
    except ckpt.CheckpointError:
        if size is None:
            raise
        return {**E4E_DECODER, "resolution": size}
    if size is not None and config["resolution"] != size:
        if config["resolution"] not in _SIZES:  # a decoder without its upper levels
            return {**E4E_DECODER, "resolution": size}
        raise E4eImportError(path, f"opts {name} is {size} but the decoder is "
                                   f"{config['resolution']} px")
    return config


def check_layout(obj: Any, path: str | Path = "<checkpoint>") -> ReleaseLayout:
    """Check a loaded e4e / pSp checkpoint completely (keys, shapes, dtypes, opts); shapes only,
    so 'meta' tensors do. Raises E4eImportError naming the first problem."""
    path = Path(path)
    if not isinstance(obj, Mapping) or not ckpt._is_tensor_dict(obj.get("state_dict")) \
            or "opts" not in obj:
        raise E4eImportError(path, "not an e4e/pSp checkpoint: expected {'state_dict': {encoder.*, "
                                   f"decoder.*}}, 'opts': ...}}, got {ckpt.describe_layout(obj)}")
    extra = [k for k in obj if k not in ("state_dict", "opts", "latent_avg", *TRAINING_LEFTOVERS)]
    if extra:
        raise E4eImportError(path, f"unexpected top-level entries: {ckpt._names(list(map(str, extra)))}")
    method, encoder_type, opts = _opts(path, obj)
    sd = obj["state_dict"]
    enc, dec = _split(path, sd)
    config = _decoder_config(path, dec, method, opts)
    resolution = config["resolution"]
    n_style = n_style_for(resolution)
    try:
        expected = expected_state_dict(method, n_style, config)
    except ValueError as exc:
        raise E4eImportError(path, f"decoder: {exc}") from None
    ckpt.check_state_dict(path, sd, expected)
    _check_dtypes(path, sd)
    style_dim = config["style_dim"]
    start = bool(opts.get("start_from_latent_avg", False))
    avg = _latent_avg(path, obj, n_style, style_dim, start)
    return ReleaseLayout(method, encoder_type, resolution, n_style, style_dim, config, start, avg,
                         enc, dec, opts.get("dataset_type"))


def read_release(path: str | Path) -> ReleaseLayout:
    """Load an e4e / pSp file (``weights_only=True``) and check its layout."""
    path = Path(path)
    try:
        obj = ckpt.read_checkpoint(path)
    except ckpt.CheckpointError as exc:
        hint = ""
        if "refusing" in exc.problem and not zipfile.is_zipfile(path):
            hint = " (an NVIDIA network pickle? those go through `weights import-nvidia`)"
        raise E4eImportError(path, exc.problem + hint) from None
    layout = check_layout(obj, path)
    # a NaN or inf anywhere makes the float64 sum non-finite (one pass, no temporary tensor)
    bad = [k for k, v in {**layout.encoder, **layout.decoder}.items()
           if v.is_floating_point() and not bool(torch.isfinite(v.sum(dtype=torch.float64)))]
    if bad:
        raise E4eImportError(path, f"non-finite values in {ckpt._names(bad)}")
    return layout


def _f32(sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().to(torch.float32).contiguous() if v.is_floating_point() else v.detach()
            for k, v in sd.items()}


def encoder_file(layout: ReleaseLayout) -> dict[str, Any]:
    """Our encoder file's object: ``{'encoder_type', 'state_dict'}`` (latent_avg inside)."""
    added = layout.latent_avg if layout.start_from_latent_avg else None
    avg = torch.zeros(layout.n_style, layout.style_dim) if added is None else added
    sd = _f32(layout.encoder)
    sd["latent_avg"] = avg.detach().to(torch.float32).contiguous().clone()
    return {"encoder_type": layout.method, "state_dict": sd}


def mean_w(layout: ReleaseLayout) -> torch.Tensor | None:
    """The decoder's mean w [S] the file carries (its latent_avg's slots averaged), if any."""
    if layout.latent_avg is None:
        return None
    return layout.latent_avg.detach().to(torch.float32).mean(0).contiguous()


def generator_file(layout: ReleaseLayout) -> dict[str, Any]:
    """Our generator file's object: ``{'g_ema'[, 'latent_avg']}`` from the bundled decoder."""
    out: dict[str, Any] = {"g_ema": _f32(layout.decoder)}
    avg = mean_w(layout)
    if avg is not None:
        out["latent_avg"] = avg
    return out
