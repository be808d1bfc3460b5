"""Import fixes found by testing with NVIDIA's own code: the stylegan3 repository's pickles keep
the synthesis arguments (conv_clamp, architecture) at the top level of G's kwargs; networks we
cannot convert (resnet or orig generators, other than RGB) are named in one line before any
conversion; training output keeps an imported generator's latent_avg and arch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from tests.nvidia import pickles
from worker.anycost.checkpoints import load_generator, load_latent_avg
from worker.anycost.nvidia.importer import import_nvidia


def _set_everywhere(g, key: str, value) -> None:
    """Set a synthesis argument in every module that records it (as NVIDIA's code would)."""
    def visit(obj):
        kwargs = obj.state.get("_init_kwargs")
        if isinstance(kwargs, dict) and key in kwargs:
            kwargs[key] = value
        if key in obj.state and not key.startswith("_"):
            obj.state[key] = value
        for child in (obj.state.get("_modules") or {}).values():
            if child is not None:
                visit(child)
    visit(g)


def stylegan3_repo(ada_pickle, **synthesis) -> dict:
    """The reference network as the stylegan3 repository pickles it: G's synthesis arguments
    at the top level of its kwargs (``Generator(..., **synthesis_kwargs)``)."""
    obj = pickles.read(ada_pickle)
    g = obj["G_ema"]
    for key, value in synthesis.items():
        _set_everywhere(g, key, value)
    kwargs = g.state["_init_kwargs"]
    flat = {k: v for k, v in kwargs.items() if k != "synthesis_kwargs"}
    flat.update(dict(kwargs["synthesis_kwargs"]))
    flat.update(synthesis)
    g.state["_init_kwargs"] = flat
    return obj


@pytest.mark.slow  # a full conversion through the CLI: seconds
def test_conv_clamp_at_the_top_level_is_honoured(ada_pickle, expected, tmp_path):
    """A clamp-4 network: today's import dropped the clamp (the image then errs by ~4)."""
    clamped = pickles.write(stylegan3_repo(ada_pickle, conv_clamp=4), tmp_path / "sg3.pkl")
    plain = pickles.write(stylegan3_repo(ada_pickle), tmp_path / "sg3-plain.pkl")
    g4 = load_generator(import_nvidia(clamped, "clamp4", tmp_path / "w")[0].path)
    g = load_generator(import_nvidia(plain, "plain", tmp_path / "w")[0].path)
    assert g4.conv_clamp == 4.0 and g.conv_clamp is None
    assert torch.load(tmp_path / "w" / "generator_clamp4.pt", weights_only=True)["arch"] == \
        {"conv_clamp": 4.0}
    ws = expected["ws"]
    with torch.no_grad():
        assert float((g.synthesis(ws) - expected["img"]).abs().max()) < 1e-4  # the same weights
        by_hand = load_generator(tmp_path / "w" / "generator_plain.pt")
        by_hand.conv_clamp = 4.0
        for layer in by_hand.modules():
            if hasattr(layer, "conv_clamp"):
                layer.conv_clamp = 4.0
        img4 = g4.synthesis(ws)
        assert float((img4 - g.synthesis(ws)).abs().max()) > 1e-2  # the clamp matters here
        assert float((img4 - by_hand.synthesis(ws)).abs().max()) < 1e-5


def test_conflicting_clamps_are_refused(ada_pickle, tmp_path, cli):
    obj = stylegan3_repo(ada_pickle, conv_clamp=256)
    obj["G_ema"].state["_init_kwargs"]["conv_clamp"] = 4  # the modules say 256
    path = pickles.write(obj, tmp_path / "odd.pkl")
    result = cli("--dir", str(tmp_path / "w"), "import-nvidia", str(path), "--config", "odd")
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "conv_clamp" in result.stderr and "4" in result.stderr and "256" in result.stderr


def _resnet_generator(obj: dict, say_so: bool) -> dict:
    """G_ema rebuilt as NVIDIA's 'resnet' synthesis: ToRGB only in the last block, a 1x1 skip
    conv in every block above 4 px."""
    g = obj["G_ema"]
    syn = pickles.module(g, "synthesis")
    skip_template = pickles.module(obj["D"], "b64.skip")
    for res in (4, 8, 16, 32):
        del syn.state["_modules"][f"b{res}"].state["_modules"]["torgb"]
    for res in (8, 16, 32, 64):
        block = syn.state["_modules"][f"b{res}"]
        c_out, c_in = block.state["_modules"]["conv1"].state["_parameters"]["weight"].shape[:2]
        skip = pickles.copy.deepcopy(skip_template)
        skip.state["_parameters"]["weight"] = torch.randn(c_out, c_in, 1, 1)
        block.state["_modules"]["skip"] = skip
    if say_so:
        _set_everywhere(g, "architecture", "resnet")
        g.state["_init_kwargs"]["architecture"] = "resnet"
    return obj


@pytest.mark.parametrize("say_so", [True, False], ids=["kwargs", "shapes only"])
def test_a_resnet_generator_is_named(ada_pickle, tmp_path, cli, say_so):
    """Today: 'missing parameter synthesis.b4.torgb.weight'."""
    obj = _resnet_generator(stylegan3_repo(ada_pickle), say_so)
    path = pickles.write(obj, tmp_path / "resnet.pkl")
    result = cli("--dir", str(tmp_path / "w"), "import-nvidia", str(path), "--config", "rn")
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "architecture 'resnet'" in result.stderr and "only 'skip'" in result.stderr
    assert "missing" not in result.stderr
    assert not (tmp_path / "w" / "generator_rn.pt").exists()


def _grey(obj: dict) -> dict:
    """A 1-channel network: ToRGB layers with one output, fromrgb with one input."""
    g = obj["G_ema"]
    _set_everywhere(g, "img_channels", 1)
    g.state["_init_kwargs"]["img_channels"] = 1
    for res in (4, 8, 16, 32, 64):
        torgb = pickles.module(g, f"synthesis.b{res}.torgb")
        params = torgb.state["_parameters"]
        params["weight"], params["bias"] = params["weight"][:1].clone(), params["bias"][:1].clone()
    fromrgb = pickles.module(obj["D"], "b64.fromrgb")
    fromrgb.state["_parameters"]["weight"] = fromrgb.state["_parameters"]["weight"][:, :1].clone()
    obj["D"].state["_init_kwargs"]["img_channels"] = 1
    return obj


@pytest.mark.parametrize("layout", ["ada", "stylegan3"])
def test_a_one_channel_network_is_named(ada_pickle, tmp_path, cli, layout):
    """Today: a traceback (a [1] bias reshaped to [1, 3, 1, 1])."""
    obj = pickles.read(ada_pickle) if layout == "ada" else stylegan3_repo(ada_pickle)
    path = pickles.write(_grey(obj), tmp_path / "grey.pkl")
    result = cli("--dir", str(tmp_path / "w"), "import-nvidia", str(path), "--config", "grey")
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "img_channels 1" in result.stderr and "only RGB" in result.stderr


def _narrow(g, widths: dict[int, int]) -> None:
    """Cut G_ema's synthesis to ``widths`` (resolution -> channels) by keeping the first
    channels of every layer: a smaller network of the same kind, as NVIDIA's code would build
    for a smaller channel_base."""
    syn = pickles.module(g, "synthesis")
    c_in = None
    for res in sorted(widths):
        c = widths[res]
        block = syn.state["_modules"][f"b{res}"].state
        if res == 4:
            block["_parameters"]["const"] = block["_parameters"]["const"][:c].clone()
        layers = [("conv1", c, c)] if res == 4 else [("conv0", c_in, c), ("conv1", c, c)]
        for name, cin, cout in layers + [("torgb", c, 3)]:
            p = block["_modules"][name].state["_parameters"]
            p["weight"] = p["weight"][:cout, :cin].clone()
            p["bias"] = p["bias"][:cout].clone()
            affine = block["_modules"][name].state["_modules"]["affine"].state["_parameters"]
            affine["weight"], affine["bias"] = affine["weight"][:cin].clone(), affine["bias"][:cin].clone()
        c_in = c


def test_channel_widths_anycost_cannot_express_are_named(ada_pickle, tmp_path, cli):
    """channel_base 2040 with channel_max 64 (stylegan3 repo's --cbase): widths
    min(2040 // r, 64) = 64, 64, 64, 63, 31. Anycost's table scales every level from the top
    one (31 -> 62 at 32 px), so no channel ratio could name this network's sub-networks: refused
    before converting, naming channel_base (today: a message about a 'channel_multiplier')."""
    obj = stylegan3_repo(ada_pickle, channel_base=2040)
    _narrow(obj["G_ema"], {r: min(2040 // r, 64) for r in (4, 8, 16, 32, 64)})
    path = pickles.write(obj, tmp_path / "cbase2040.pkl")
    result = cli("--dir", str(tmp_path / "w"), "import-nvidia", str(path), "--config", "cb")
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "channel widths [64, 64, 64, 63, 31]" in result.stderr
    assert "channel_base 2040, channel_max 64" in result.stderr
    assert "Anycost's channel table" in result.stderr


@pytest.mark.slow  # a full conversion through the CLI: seconds
def test_a_smaller_channel_base_of_the_usual_kind_converts(ada_pickle, tmp_path):
    """channel_base 2048 (16384 / 8): widths 64, 64, 64, 64, 32 convert and keep the
    reference's outputs where nothing was cut (4 to 32 px)."""
    obj = stylegan3_repo(ada_pickle, channel_base=2048)
    _narrow(obj["G_ema"], {r: min(2048 // r, 64) for r in (4, 8, 16, 32, 64)})
    path = pickles.write(obj, tmp_path / "cbase2048.pkl")
    g = load_generator(import_nvidia(path, "cb-2048", tmp_path / "w")[0].path)
    assert g.channel_config()[::2] == [64, 64, 64, 64, 32]
    ref = load_generator(import_nvidia(ada_pickle, "ref", tmp_path / "w")[0].path)
    ws = torch.randn(2, g.n_style, g.style_dim, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        for res in (4, 8, 16, 32):
            assert torch.allclose(g.synthesis(ws, resolution=res), ref.synthesis(ws, resolution=res),
                                  atol=1e-5)


@pytest.mark.slow
def test_training_output_keeps_latent_avg_and_arch(tmp_path):
    """A distillation run from an imported generator (w_avg and a clamp in its file) writes a
    generator file that still has both (today: only 'g_ema')."""
    from tests.train.conftest import tiny_teacher, torchrun

    teacher = tiny_teacher()
    avg = torch.randn(teacher.style_dim, generator=torch.Generator().manual_seed(3))
    arch = {"conv_clamp": 0.5, "lr_mlp": 0.02}
    path = tmp_path / "generator_imported.pt"
    torch.save({"g_ema": teacher.state_dict(), "latent_avg": avg, "arch": arch}, path)
    data = tmp_path / "data"
    data.mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(data / f"{i}.png")
    out = tmp_path / "run"
    torchrun(1, ["multires", "--teacher", str(path), "--data", str(data), "--out", str(out),
                 "--name", "mine", "--batch", "2", "--steps", "1", "--workers", "0"])
    written = torch.load(out / "generator_mine.pt", weights_only=True)
    assert torch.equal(written["latent_avg"], avg)
    assert written["arch"] == arch
    g = load_generator(out / "generator_mine.pt")
    assert (g.conv_clamp, g.lr_mlp) == (0.5, 0.02)
    assert torch.equal(load_latent_avg(out / "generator_mine.pt"), avg)


@pytest.mark.slow  # a full conversion through the CLI: seconds
def test_an_import_keeps_the_encoder_of_a_user_config(ada_pickle, tmp_path):
    """A user config that already has an encoder (``import-e4e``) keeps it among its kinds when
    NVIDIA's pickle of the same network is imported into it (today: kinds were replaced)."""
    import json

    from worker.anycost import weights

    wdir = tmp_path / "w"
    import_nvidia(ada_pickle, "faces-64", wdir)
    manifest = json.loads((wdir / "weights.json").read_text())
    entry = manifest["configs"]["faces-64"]
    entry["kinds"] = ["generator", "encoder"]
    entry["encoder"] = {"source": "e4e_faces_64.pt"}
    (wdir / "weights.json").write_text(json.dumps(manifest))
    import_nvidia(ada_pickle, "faces-64", wdir)
    again = json.loads((wdir / "weights.json").read_text())["configs"]["faces-64"]
    assert again["kinds"] == ["generator", "discriminator", "encoder"]
    assert again["encoder"] == {"source": "e4e_faces_64.pt"}
    assert "encoder" in weights.get_model_config("faces-64", wdir).all_kinds
