"""NVIDIA StyleGAN2 parameter names and layouts -> ours (rosinality / Anycost names).

Input: a flat ``{name: tensor}`` dict in StyleGAN2-ADA-pytorch names (``mapping.fc0.weight``,
``synthesis.b64.conv0.affine.bias``, ``b64.fromrgb.weight`` ...) plus the network's constructor
kwargs. The TensorFlow release is first renamed to these names (``worker.anycost.nvidia.tf``).
Output: a state_dict that our ``Generator`` / ``Discriminator`` load strictly, and the
architecture arguments a state_dict cannot show (``conv_clamp``, the mapping's learning-rate
multiplier, the minibatch-stddev group).

Both sides use the same equalised-learning-rate parameterisation (weights stored unscaled, gains
applied at run time), so values copy across unchanged; only shapes differ: NVIDIA's modulated
conv weights are [out, in, k, k] (ours [1, out, in, k, k]), the constant input [C, 4, 4]
(ours [1, C, 4, 4]), noise strengths scalars (ours [1]), ToRGB biases [3] (ours [1, 3, 1, 1]).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

import torch

from worker.anycost.ops import make_kernel


class ConversionError(ValueError):
    """The network is not one we can convert; the message says why."""


_FILTER = make_kernel((1, 3, 3, 1), flip=False)


def _get(flat: Mapping[str, torch.Tensor], key: str) -> torch.Tensor:
    try:
        return flat[key]
    except KeyError:
        raise ConversionError(f"missing parameter {key}: not a StyleGAN2 network of the expected layout") from None


def _check_filters(flat: Mapping[str, torch.Tensor]) -> None:
    """Our layers hard-code the [1, 3, 3, 1] low-pass filter; refuse any other."""
    for key, value in flat.items():
        if key.endswith("resample_filter"):
            f = value.to(torch.float32)
            if f.shape != _FILTER.shape or not torch.allclose(f / f.sum(), _FILTER, atol=1e-6):
                raise ConversionError(f"{key}: resample filter other than [1, 3, 3, 1] is not supported")


def _block_resolutions(flat: Mapping[str, torch.Tensor], prefix: str) -> list[int]:
    found = {int(m.group(1)) for k in flat if (m := re.match(rf"{re.escape(prefix)}b(\d+)\.", k))}
    return sorted(found)


#: Where a generator pickle may record each synthesis argument, most authoritative first: the
#: synthesis module's own kwargs (read by ``importer.read_networks``), ADA's ``synthesis_kwargs``,
#: the top level of G's kwargs (the stylegan3 repository: ``Generator(..., **synthesis_kwargs)``).
SYNTHESIS_SOURCES = ("synthesis_module_kwargs", "synthesis_kwargs", "")
MAPPING_SOURCES = ("mapping_module_kwargs", "mapping_kwargs")
_UNSET = object()


def _argument(kwargs: Mapping[str, Any], key: str, sources: tuple[str, ...], default: Any) -> Any:
    """One constructor argument wherever the pickle recorded it; differing records refuse."""
    found = {}
    for source in sources:
        where = kwargs if source == "" else (kwargs.get(source) or {})
        value = where.get(key, _UNSET) if isinstance(where, Mapping) else _UNSET
        if value is not _UNSET:
            found[source or "G"] = value
    if len({repr(v) for v in found.values()}) > 1:
        seen = ", ".join(f"{v!r} ({k})" for k, v in found.items())
        raise ConversionError(f"the pickle records {key} twice with different values: {seen}")
    return next(iter(found.values())) if found else default


def generator_arch(kwargs: Mapping[str, Any]) -> dict:
    """conv_clamp and the mapping's lr multiplier from a Generator's constructor kwargs (ADA's
    ``synthesis_kwargs`` or the stylegan3 repository's top level); refuses what cannot convert."""
    if int(kwargs.get("c_dim") or 0) != 0:
        raise ConversionError("class-conditional networks (c_dim > 0) are not supported")
    architecture = _argument(kwargs, "architecture", SYNTHESIS_SOURCES, "skip")
    if architecture != "skip":
        raise ConversionError(f"synthesis architecture {architecture!r}: only 'skip' "
                              "(StyleGAN2 config-e/f and ADA's default) converts to Anycost")
    channels = _argument(kwargs, "img_channels", SYNTHESIS_SOURCES, 3)
    if channels != 3:
        raise ConversionError(f"img_channels {channels}: only RGB networks (img_channels 3) are "
                              "supported")
    clamp = _argument(kwargs, "conv_clamp", SYNTHESIS_SOURCES, None)
    lr_mlp = _argument(kwargs, "lr_multiplier", MAPPING_SOURCES, 0.01)
    return {"conv_clamp": None if clamp is None else float(clamp), "lr_mlp": float(lr_mlp)}


def check_channel_widths(flat: Mapping[str, torch.Tensor], kwargs: Mapping[str, Any]) -> None:
    """Each level's width (NVIDIA: ``min(channel_base // r, channel_max)``) must be one that
    Anycost's table gives: the top level's width scaled by ``base[r]`` and capped at the widest
    layer (``shared.catalog.costs``); otherwise channel ratios could not name sub-networks."""
    from shared.catalog import costs as costmodel

    resolutions = _block_resolutions(flat, "synthesis.")
    if not resolutions or "synthesis.b4.const" not in flat or any(
            f"synthesis.b{r}.conv1.weight" not in flat for r in resolutions):
        return  # the conversion names what is missing
    widths = [int(flat[f"synthesis.b{r}.conv1.weight"].shape[0]) for r in resolutions]
    top, widest = resolutions[-1], int(flat["synthesis.b4.const"].shape[0])
    if top not in costmodel.BASE_CHANNELS:
        return
    mult = widths[-1] / costmodel.BASE_CHANNELS[top]
    if costmodel.full_channels(top, mult, widest)[::2] != widths:
        base = _argument(kwargs, "channel_base", SYNTHESIS_SOURCES, None)
        cap = _argument(kwargs, "channel_max", SYNTHESIS_SOURCES, None)
        raise ConversionError(f"channel widths {widths} at {resolutions} px (channel_base {base}, "
                              f"channel_max {cap}) do not follow Anycost's channel table (every "
                              "level the top level's width x base[r], capped): not supported; "
                              "networks with channel_base 16384 x 2^k convert")


def check_generator_shapes(flat: Mapping[str, torch.Tensor]) -> None:
    """What the tensors themselves say, before any conversion: RGB output and the 'skip'
    synthesis (a ToRGB in every block, no residual 1x1 convs)."""
    resolutions = _block_resolutions(flat, "synthesis.")
    if any(f"synthesis.b{r}.skip.weight" in flat for r in resolutions):
        raise ConversionError("synthesis architecture 'resnet' (residual blocks): only 'skip' "
                              "(StyleGAN2 config-e/f and ADA's default) converts to Anycost")
    missing = [r for r in resolutions if f"synthesis.b{r}.torgb.weight" not in flat]
    if missing and resolutions and missing != resolutions:
        raise ConversionError(f"synthesis architecture 'orig' (no ToRGB at {missing} px): only "
                              "'skip' converts to Anycost")
    for r in resolutions:
        weight = flat.get(f"synthesis.b{r}.torgb.weight")
        if weight is not None and weight.shape[0] != 3:
            raise ConversionError(f"img_channels {weight.shape[0]} (synthesis.b{r}.torgb.weight is "
                                  f"{list(weight.shape)}): only RGB networks (img_channels 3) are "
                                  "supported")


def discriminator_arch(kwargs: Mapping[str, Any]) -> dict:
    """conv_clamp and the minibatch-stddev group size from a Discriminator's kwargs."""
    if int(kwargs.get("c_dim") or 0) != 0:
        raise ConversionError("class-conditional discriminators (c_dim > 0) are not supported")
    if int(kwargs.get("img_channels", 3)) != 3:
        raise ConversionError(f"discriminator img_channels {kwargs['img_channels']}: only RGB "
                              "networks (img_channels 3) are supported")
    if kwargs.get("architecture", "resnet") != "resnet":
        raise ConversionError(f"discriminator architecture {kwargs['architecture']!r}: only 'resnet' converts")
    epilogue = dict(kwargs.get("epilogue_kwargs") or {})
    if int(epilogue.get("mbstd_num_channels", 1)) != 1:
        raise ConversionError("minibatch-stddev with more than one channel is not supported")
    clamp = kwargs.get("conv_clamp")
    group = epilogue.get("mbstd_group_size", 4)
    return {"conv_clamp": None if clamp is None else float(clamp),
            "mbstd_group_size": 0 if group is None else int(group)}


def generator_state_dict(flat: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """(our ``g_ema`` state_dict without the fixed blur kernels, w_avg [S])."""
    if any(k.startswith("synthesis.input.") for k in flat):
        raise ConversionError("this is a StyleGAN3 (alias-free) generator; only StyleGAN2 converts")
    check_generator_shapes(flat)
    _check_filters(flat)
    sd: dict[str, torch.Tensor] = {}
    n_fc = sum(1 for k in flat if re.fullmatch(r"mapping\.fc\d+\.weight", k))
    if n_fc == 0:
        raise ConversionError("no mapping network (mapping.fc0.weight) in the generator")
    for i in range(n_fc):
        sd[f"style.{i + 1}.weight"] = _get(flat, f"mapping.fc{i}.weight")
        sd[f"style.{i + 1}.bias"] = _get(flat, f"mapping.fc{i}.bias")
    w_avg = _get(flat, "mapping.w_avg").reshape(-1)

    resolutions = _block_resolutions(flat, "synthesis.")
    if not resolutions or resolutions[0] != 4 or resolutions != [2**i for i in range(2, 2 + len(resolutions))]:
        raise ConversionError(f"synthesis blocks {resolutions}: expected 4, 8, 16, ... px")
    sd["input.input"] = _get(flat, "synthesis.b4.const").unsqueeze(0)

    def styled(ours: str, theirs: str, noise_index: int) -> None:
        sd[f"{ours}.conv.weight"] = _get(flat, f"{theirs}.weight").unsqueeze(0)
        sd[f"{ours}.conv.modulation.weight"] = _get(flat, f"{theirs}.affine.weight")
        sd[f"{ours}.conv.modulation.bias"] = _get(flat, f"{theirs}.affine.bias")
        sd[f"{ours}.noise.weight"] = _get(flat, f"{theirs}.noise_strength").reshape(1)
        sd[f"{ours}.activate.bias"] = _get(flat, f"{theirs}.bias")
        sd[f"noises.noise_{noise_index}"] = _get(flat, f"{theirs}.noise_const").reshape(1, 1, *flat[f"{theirs}.noise_const"].shape[-2:])

    def to_rgb(ours: str, theirs: str) -> None:
        sd[f"{ours}.conv.weight"] = _get(flat, f"{theirs}.weight").unsqueeze(0)
        sd[f"{ours}.conv.modulation.weight"] = _get(flat, f"{theirs}.affine.weight")
        sd[f"{ours}.conv.modulation.bias"] = _get(flat, f"{theirs}.affine.bias")
        sd[f"{ours}.bias"] = _get(flat, f"{theirs}.bias").reshape(1, 3, 1, 1)

    styled("conv1", "synthesis.b4.conv1", 0)
    to_rgb("to_rgb1", "synthesis.b4.torgb")
    for level, res in enumerate(resolutions[1:]):
        styled(f"convs.{2 * level}", f"synthesis.b{res}.conv0", 2 * level + 1)
        styled(f"convs.{2 * level + 1}", f"synthesis.b{res}.conv1", 2 * level + 2)
        to_rgb(f"to_rgbs.{level}", f"synthesis.b{res}.torgb")
    return {k: v.detach().to(torch.float32).contiguous() for k, v in sd.items()}, w_avg.to(torch.float32)


def discriminator_state_dict(flat: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Our single-resolution ``Discriminator`` state_dict (without the fixed blur kernels)."""
    _check_filters(flat)
    resolutions = _block_resolutions(flat, "")
    if not resolutions or resolutions[0] != 4:
        raise ConversionError(f"discriminator blocks {resolutions}: expected ..., 8, 4 px")
    top = resolutions[-1]
    if top < 8 or resolutions != [2**i for i in range(2, int(math.log2(top)) + 1)]:
        raise ConversionError(f"discriminator blocks {resolutions}: not a power-of-two pyramid")
    if f"b{top}.fromrgb.weight" not in flat or any(f"b{r}.fromrgb.weight" in flat for r in resolutions[:-1]):
        raise ConversionError("only the 'resnet' discriminator (one fromrgb, at the top block) converts")
    if flat[f"b{top}.fromrgb.weight"].shape[1] != 3:
        raise ConversionError(f"discriminator img_channels {flat[f'b{top}.fromrgb.weight'].shape[1]}: "
                              "only RGB networks (img_channels 3) are supported")
    sd: dict[str, torch.Tensor] = {
        "convs.0.0.weight": _get(flat, f"b{top}.fromrgb.weight"),
        "convs.0.1.bias": _get(flat, f"b{top}.fromrgb.bias"),
    }
    for i, res in enumerate(reversed(resolutions[1:]), start=1):
        sd[f"convs.{i}.conv1.0.weight"] = _get(flat, f"b{res}.conv0.weight")
        sd[f"convs.{i}.conv1.1.bias"] = _get(flat, f"b{res}.conv0.bias")
        sd[f"convs.{i}.conv2.1.weight"] = _get(flat, f"b{res}.conv1.weight")
        sd[f"convs.{i}.conv2.2.bias"] = _get(flat, f"b{res}.conv1.bias")
        sd[f"convs.{i}.skip.1.weight"] = _get(flat, f"b{res}.skip.weight")
    sd["final_conv.0.weight"] = _get(flat, "b4.conv.weight")
    sd["final_conv.1.bias"] = _get(flat, "b4.conv.bias")
    sd["final_linear.0.weight"] = _get(flat, "b4.fc.weight")
    sd["final_linear.0.bias"] = _get(flat, "b4.fc.bias")
    sd["final_linear.1.weight"] = _get(flat, "b4.out.weight")
    sd["final_linear.1.bias"] = _get(flat, "b4.out.bias")
    if sd["final_linear.1.weight"].shape[0] != 1:
        raise ConversionError("a discriminator with a conditioning projection (cmap) is not supported")
    return {k: v.detach().to(torch.float32).contiguous() for k, v in sd.items()}


def with_fixed_buffers(sd: dict[str, torch.Tensor], model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Add the model's own fixed buffers (blur kernels) that NVIDIA's files keep as filters."""
    out = dict(sd)
    for key, value in model.state_dict().items():
        if key.endswith(".kernel") and key not in out:
            out[key] = value.clone()
    return out
