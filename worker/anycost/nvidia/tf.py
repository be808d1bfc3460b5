"""The original TensorFlow StyleGAN2 release (``stylegan2-ffhq-config-f.pkl``) -> ADA names.

The TF pickle is a ``(G, D, Gs)`` tuple of ``dnnlib.tflib.network.Network`` states; ``Gs`` (the
moving average generator) owns ``dlatent_avg`` and has components ``mapping`` (``Dense{i}``) and
``synthesis`` (``{R}x{R}/Const|Conv|Conv0_up|Conv1|ToRGB``, ``noise{i}``); ``D`` has
``{R}x{R}/FromRGB|Conv0|Conv1_down|Skip``, ``4x4/Conv|Dense0`` and ``Output``. Values are numpy
arrays in TF layouts: conv weights [kh, kw, in, out], dense weights [in, out].

Renamed to StyleGAN2-ADA-pytorch names and layouts, so one converter
(``worker.anycost.nvidia.convert``) serves both releases. Layout differences, as documented by
NVIDIA's own TF->PyTorch notes: conv weights transposed to [out, in, kh, kw]; the upsampling
convs' kernels flipped spatially (TF runs them as a transposed conv of the flipped kernel); the
style affines' biases are stored without the +1 that TF adds at run time.
"""

from __future__ import annotations

import re

import numpy as np
import torch

from worker.anycost.nvidia.convert import ConversionError
from worker.anycost.nvidia.unpickle import TFNetwork


def _t(value: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(value, dtype=np.float32, copy=True))


def _conv(value: np.ndarray, flip: bool = False) -> torch.Tensor:
    w = _t(value)  # [kh, kw, in, out]
    if flip:
        w = torch.flip(w, [0, 1])
    return w.permute(3, 2, 0, 1).contiguous()


def _dense(value: np.ndarray) -> torch.Tensor:
    return _t(value).t().contiguous()  # [in, out] -> [out, in]


def _filter() -> torch.Tensor:
    f = torch.tensor([1.0, 3.0, 3.0, 1.0])
    f = f[:, None] * f[None, :]
    return f / f.sum()


def _component(net: TFNetwork, name: str) -> TFNetwork:
    comp = net.components.get(name)
    if not isinstance(comp, TFNetwork):
        raise ConversionError(f"TF network {net.name} has no {name!r} component")
    return comp


def generator_to_ada(gs: TFNetwork) -> tuple[dict[str, torch.Tensor], dict]:
    """(flat ADA-named tensors, ADA-style constructor kwargs) of a TF ``Gs``."""
    mapping = _component(gs, "mapping").variables()
    synthesis = _component(gs, "synthesis").variables()
    own = gs.variables()
    flat: dict[str, torch.Tensor] = {}
    dense = sorted(int(m.group(1)) for k in mapping if (m := re.fullmatch(r"Dense(\d+)/weight", k)))
    if not dense:
        raise ConversionError("TF mapping network has no Dense layers")
    for i in dense:
        flat[f"mapping.fc{i}.weight"] = _dense(mapping[f"Dense{i}/weight"])
        flat[f"mapping.fc{i}.bias"] = _t(mapping[f"Dense{i}/bias"])
    if "dlatent_avg" not in own:
        raise ConversionError("TF Gs has no dlatent_avg")
    flat["mapping.w_avg"] = _t(own["dlatent_avg"])
    resolutions = sorted({int(m.group(1)) for k in synthesis if (m := re.match(r"(\d+)x\1/", k))})
    try:
        flat["synthesis.b4.const"] = _t(synthesis["4x4/Const/const"])[0]
        noise_index = 0

        def layer(ada: str, tf: str, flip: bool = False) -> None:
            nonlocal noise_index
            flat[f"{ada}.weight"] = _conv(synthesis[f"{tf}/weight"], flip)
            flat[f"{ada}.affine.weight"] = _dense(synthesis[f"{tf}/mod_weight"])
            flat[f"{ada}.affine.bias"] = _t(synthesis[f"{tf}/mod_bias"]) + 1
            flat[f"{ada}.noise_strength"] = _t(synthesis[f"{tf}/noise_strength"]).reshape(())
            flat[f"{ada}.bias"] = _t(synthesis[f"{tf}/bias"])
            flat[f"{ada}.noise_const"] = _t(synthesis[f"noise{noise_index}"])[0, 0]
            flat[f"{ada}.resample_filter"] = _filter()
            noise_index += 1

        def torgb(ada: str, tf: str) -> None:
            flat[f"{ada}.weight"] = _conv(synthesis[f"{tf}/weight"])
            flat[f"{ada}.affine.weight"] = _dense(synthesis[f"{tf}/mod_weight"])
            flat[f"{ada}.affine.bias"] = _t(synthesis[f"{tf}/mod_bias"]) + 1
            flat[f"{ada}.bias"] = _t(synthesis[f"{tf}/bias"])

        layer("synthesis.b4.conv1", "4x4/Conv")
        torgb("synthesis.b4.torgb", "4x4/ToRGB")
        for res in resolutions[1:]:
            layer(f"synthesis.b{res}.conv0", f"{res}x{res}/Conv0_up", flip=True)
            layer(f"synthesis.b{res}.conv1", f"{res}x{res}/Conv1")
            torgb(f"synthesis.b{res}.torgb", f"{res}x{res}/ToRGB")
    except KeyError as exc:
        raise ConversionError(f"TF synthesis network lacks variable {exc.args[0]}") from None
    kwargs = {"c_dim": 0, "img_channels": 3, "mapping_kwargs": {"num_layers": len(dense)},
              "synthesis_kwargs": {"architecture": "skip", "conv_clamp": None}}
    return flat, kwargs


def discriminator_to_ada(d: TFNetwork) -> tuple[dict[str, torch.Tensor], dict]:
    """(flat ADA-named tensors, ADA-style constructor kwargs) of a TF ``D``."""
    v = d.variables()
    resolutions = sorted({int(m.group(1)) for k in v if (m := re.match(r"(\d+)x\1/", k))})
    if not resolutions or resolutions[0] != 4:
        raise ConversionError("TF discriminator has no 4x4 block")
    top = resolutions[-1]
    flat: dict[str, torch.Tensor] = {}
    try:
        flat[f"b{top}.fromrgb.weight"] = _conv(v[f"{top}x{top}/FromRGB/weight"])
        flat[f"b{top}.fromrgb.bias"] = _t(v[f"{top}x{top}/FromRGB/bias"])
        for res in resolutions[1:]:
            flat[f"b{res}.conv0.weight"] = _conv(v[f"{res}x{res}/Conv0/weight"])
            flat[f"b{res}.conv0.bias"] = _t(v[f"{res}x{res}/Conv0/bias"])
            flat[f"b{res}.conv1.weight"] = _conv(v[f"{res}x{res}/Conv1_down/weight"])
            flat[f"b{res}.conv1.bias"] = _t(v[f"{res}x{res}/Conv1_down/bias"])
            flat[f"b{res}.skip.weight"] = _conv(v[f"{res}x{res}/Skip/weight"])
            flat[f"b{res}.resample_filter"] = _filter()
        flat["b4.conv.weight"] = _conv(v["4x4/Conv/weight"])
        flat["b4.conv.bias"] = _t(v["4x4/Conv/bias"])
        flat["b4.fc.weight"] = _dense(v["4x4/Dense0/weight"])
        flat["b4.fc.bias"] = _t(v["4x4/Dense0/bias"])
        flat["b4.out.weight"] = _dense(v["Output/weight"])
        flat["b4.out.bias"] = _t(v["Output/bias"])
    except KeyError as exc:
        raise ConversionError(f"TF discriminator lacks variable {exc.args[0]}") from None
    kwargs = {"c_dim": 0, "architecture": "resnet", "conv_clamp": None,
              "epilogue_kwargs": {"mbstd_group_size": 4, "mbstd_num_channels": 1}}
    return flat, kwargs


def is_tf_release(obj: object) -> bool:
    return isinstance(obj, tuple) and len(obj) == 3 and all(isinstance(n, TFNetwork) for n in obj)


def networks(obj: tuple) -> tuple[TFNetwork, TFNetwork]:
    """(Gs, D) of a ``(G, D, Gs)`` tuple."""
    _, d, gs = obj
    return gs, d


__all__ = ["discriminator_to_ada", "generator_to_ada", "is_tf_release", "networks"]
