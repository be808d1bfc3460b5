"""The TensorFlow release's layout: the reference network re-expressed as a TF ``(G, D, Gs)``
pickle of ``dnnlib.tflib.network.Network`` states imports to the same outputs, and the
1024 px FFHQ layout converts to exactly our manifest's keys and shapes."""

from __future__ import annotations

import pickle
import sys
import types

import numpy as np
import pytest
import torch

from tests.model.conftest import data_file
from tests.model.test_manifests import read_manifest
from worker.anycost.checkpoints import load_discriminator, load_generator
from worker.anycost.discriminator import Discriminator
from worker.anycost.generator import Generator
from worker.anycost.nvidia import convert
from worker.anycost.nvidia.importer import import_nvidia, read_networks


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().numpy().astype(np.float32)


def _tf_conv(w: torch.Tensor, flip: bool = False) -> np.ndarray:
    out = w.permute(2, 3, 1, 0)  # [out, in, kh, kw] -> [kh, kw, in, out]
    return _np(torch.flip(out, [0, 1]) if flip else out)


def _tf_variables(g: dict, d: dict) -> tuple[dict, dict, dict, dict]:
    """(mapping, synthesis, Gs own, D) variables in the TF release's names and layouts."""
    mapping = {}
    for i in range(8):
        mapping[f"Dense{i}/weight"] = _np(g[f"mapping.fc{i}.weight"].t())
        mapping[f"Dense{i}/bias"] = _np(g[f"mapping.fc{i}.bias"])
    syn = {"4x4/Const/const": _np(g["synthesis.b4.const"][None])}
    noise = 0

    def layer(tf: str, ada: str, flip: bool = False) -> None:
        nonlocal noise
        syn[f"{tf}/weight"] = _tf_conv(g[f"{ada}.weight"], flip)
        syn[f"{tf}/mod_weight"] = _np(g[f"{ada}.affine.weight"].t())
        syn[f"{tf}/mod_bias"] = _np(g[f"{ada}.affine.bias"] - 1)
        syn[f"{tf}/noise_strength"] = _np(g[f"{ada}.noise_strength"])
        syn[f"{tf}/bias"] = _np(g[f"{ada}.bias"])
        syn[f"noise{noise}"] = _np(g[f"{ada}.noise_const"][None, None])
        noise += 1

    def torgb(tf: str, ada: str) -> None:
        syn[f"{tf}/weight"] = _tf_conv(g[f"{ada}.weight"])
        syn[f"{tf}/mod_weight"] = _np(g[f"{ada}.affine.weight"].t())
        syn[f"{tf}/mod_bias"] = _np(g[f"{ada}.affine.bias"] - 1)
        syn[f"{tf}/bias"] = _np(g[f"{ada}.bias"])

    layer("4x4/Conv", "synthesis.b4.conv1")
    torgb("4x4/ToRGB", "synthesis.b4.torgb")
    for r in (8, 16, 32, 64):
        layer(f"{r}x{r}/Conv0_up", f"synthesis.b{r}.conv0", flip=True)
        layer(f"{r}x{r}/Conv1", f"synthesis.b{r}.conv1")
        torgb(f"{r}x{r}/ToRGB", f"synthesis.b{r}.torgb")
    own = {"dlatent_avg": _np(g["mapping.w_avg"])}
    dv = {"64x64/FromRGB/weight": _tf_conv(d["b64.fromrgb.weight"]),
          "64x64/FromRGB/bias": _np(d["b64.fromrgb.bias"])}
    for r in (64, 32, 16, 8):
        dv[f"{r}x{r}/Conv0/weight"] = _tf_conv(d[f"b{r}.conv0.weight"])
        dv[f"{r}x{r}/Conv0/bias"] = _np(d[f"b{r}.conv0.bias"])
        dv[f"{r}x{r}/Conv1_down/weight"] = _tf_conv(d[f"b{r}.conv1.weight"])
        dv[f"{r}x{r}/Conv1_down/bias"] = _np(d[f"b{r}.conv1.bias"])
        dv[f"{r}x{r}/Skip/weight"] = _tf_conv(d[f"b{r}.skip.weight"])
    dv["4x4/Conv/weight"] = _tf_conv(d["b4.conv.weight"])
    dv["4x4/Conv/bias"] = _np(d["b4.conv.bias"])
    dv["4x4/Dense0/weight"] = _np(d["b4.fc.weight"].t())
    dv["4x4/Dense0/bias"] = _np(d["b4.fc.bias"])
    dv["Output/weight"] = _np(d["b4.out.weight"].t())
    dv["Output/bias"] = _np(d["b4.out.bias"])
    return mapping, syn, own, dv


def _tf_pickle(g: dict, d: dict) -> bytes:
    """Pickle as the TF release does: instances of ``dnnlib.tflib.network.Network``."""
    mapping, syn, own, dv = _tf_variables(g, d)

    class Network:
        def __init__(self, name, variables, components=None):
            self.state = {"version": 4, "name": name, "static_kwargs": {}, "build_module_src": "raise",
                          "build_func_name": "G_main", "components": components or {},
                          "variables": list(variables.items())}

        def __getstate__(self):
            return self.state

    modules = {n: types.ModuleType(n) for n in ("dnnlib", "dnnlib.tflib", "dnnlib.tflib.network")}
    Network.__module__, Network.__qualname__ = "dnnlib.tflib.network", "Network"
    modules["dnnlib.tflib.network"].Network = Network
    saved = {n: sys.modules.get(n) for n in modules}
    sys.modules.update(modules)
    try:
        m, s = Network("G_mapping", mapping), Network("G_synthesis", syn)
        gs = Network("Gs", own, {"mapping": m, "synthesis": s})
        return pickle.dumps((gs, Network("D", dv), gs), protocol=4)
    finally:
        for n, mod in saved.items():
            if mod is None:
                sys.modules.pop(n, None)
            else:
                sys.modules[n] = mod


@pytest.mark.slow
def test_tf_release_layout_imports_to_nvidias_outputs(ada_pickle, expected, tmp_path):
    _, (g_flat, _), (d_flat, _) = read_networks(ada_pickle)
    path = tmp_path / "stylegan2-tf.pkl"
    path.write_bytes(_tf_pickle(g_flat, d_flat))
    entries = import_nvidia(path, "tf-ref64", tmp_path / "w")
    assert [e.kind for e in entries] == ["generator", "discriminator"]
    gen = load_generator(entries[0].path)
    disc = load_discriminator(entries[1].path)
    with torch.no_grad():
        img = gen.synthesis(gen.broadcast(gen.mapping(expected["z"])))
        span = float(expected["img"].max() - expected["img"].min())
        assert float((img - expected["img"]).abs().max()) / span < 1e-4
        assert float((disc(expected["real"]) - expected["d_on_real"]).abs().max()) < 1e-4


def _ada_ffhq_1024_shapes() -> tuple[dict, dict]:
    """NVIDIA's parameter names and shapes of the 1024 px FFHQ networks (channel_base 32768,
    channel_max 512), as meta tensors: written from the format, not from our converter."""
    ch = {r: min(32768 // r, 512) for r in (4, 8, 16, 32, 64, 128, 256, 512, 1024)}
    meta = {"device": "meta"}
    g = {"mapping.w_avg": torch.empty(512, **meta)}
    for i in range(8):
        g[f"mapping.fc{i}.weight"] = torch.empty(512, 512, **meta)
        g[f"mapping.fc{i}.bias"] = torch.empty(512, **meta)
    g["synthesis.b4.const"] = torch.empty(ch[4], 4, 4, **meta)

    def layer(name, c_in, c_out, res):
        g[f"{name}.weight"] = torch.empty(c_out, c_in, 3, 3, **meta)
        g[f"{name}.affine.weight"] = torch.empty(c_in, 512, **meta)
        g[f"{name}.affine.bias"] = torch.empty(c_in, **meta)
        g[f"{name}.noise_strength"] = torch.empty((), **meta)
        g[f"{name}.bias"] = torch.empty(c_out, **meta)
        g[f"{name}.noise_const"] = torch.empty(res, res, **meta)

    def torgb(name, c_in):
        g[f"{name}.weight"] = torch.empty(3, c_in, 1, 1, **meta)
        g[f"{name}.affine.weight"] = torch.empty(c_in, 512, **meta)
        g[f"{name}.affine.bias"] = torch.empty(c_in, **meta)
        g[f"{name}.bias"] = torch.empty(3, **meta)

    layer("synthesis.b4.conv1", ch[4], ch[4], 4)
    torgb("synthesis.b4.torgb", ch[4])
    for r in (8, 16, 32, 64, 128, 256, 512, 1024):
        layer(f"synthesis.b{r}.conv0", ch[r // 2], ch[r], r)
        layer(f"synthesis.b{r}.conv1", ch[r], ch[r], r)
        torgb(f"synthesis.b{r}.torgb", ch[r])
    d = {"b1024.fromrgb.weight": torch.empty(ch[1024], 3, 1, 1, **meta),
         "b1024.fromrgb.bias": torch.empty(ch[1024], **meta)}
    for r in (1024, 512, 256, 128, 64, 32, 16, 8):
        d[f"b{r}.conv0.weight"] = torch.empty(ch[r], ch[r], 3, 3, **meta)
        d[f"b{r}.conv0.bias"] = torch.empty(ch[r], **meta)
        d[f"b{r}.conv1.weight"] = torch.empty(ch[r // 2], ch[r], 3, 3, **meta)
        d[f"b{r}.conv1.bias"] = torch.empty(ch[r // 2], **meta)
        d[f"b{r}.skip.weight"] = torch.empty(ch[r // 2], ch[r], 1, 1, **meta)
    d["b4.conv.weight"] = torch.empty(ch[4], ch[4] + 1, 3, 3, **meta)
    d["b4.conv.bias"] = torch.empty(ch[4], **meta)
    d["b4.fc.weight"] = torch.empty(ch[4], ch[4] * 16, **meta)
    d["b4.fc.bias"] = torch.empty(ch[4], **meta)
    d["b4.out.weight"] = torch.empty(1, ch[4], **meta)
    d["b4.out.bias"] = torch.empty(1, **meta)
    return g, d


def test_ffhq_1024_layout_converts_to_the_manifest_keys():
    find_data = data_file
    g_flat, d_flat = _ada_ffhq_1024_shapes()
    (want_g,) = read_manifest(find_data, "keys_generator_res1024.txt").values()
    sections = read_manifest(find_data, "keys_discriminators_res1024.txt")
    (want_d,) = [v for k, v in sections.items() if k.startswith("Discriminator(")]
    with torch.device("meta"):
        generator, discriminator = Generator(1024), Discriminator(1024)
    g_sd, w_avg = convert.generator_state_dict(g_flat)
    g_sd = convert.with_fixed_buffers(g_sd, generator)
    d_sd = convert.with_fixed_buffers(convert.discriminator_state_dict(d_flat), discriminator)
    assert sorted((k, tuple(v.shape)) for k, v in g_sd.items()) == sorted(want_g)
    assert sorted((k, tuple(v.shape)) for k, v in d_sd.items()) == sorted(want_d)
    assert w_avg.shape == (512,)
