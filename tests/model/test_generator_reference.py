"""The generator reproduces the original implementation's outputs (reference data, 1e-5)."""

from __future__ import annotations

import pytest
import torch

from worker.anycost.directions import Directions

# float32 against the reference implementation's outputs: differences are accumulation order
# only (oneDNN picks kernels per CPU). 1e-5 held on the machines the outputs were checked on; the
# style-mixing case measured 1.17e-5 on another AVX-512 CPU (ours and the original code alike),
# so the bound is 2e-5: still ~100x below any real layer or weight mistake (those err by 1e-2+).
ATOL = 2e-5
IMPLS = ["ref", "fast"]


def assert_close(actual: torch.Tensor, expected: torch.Tensor) -> None:
    assert actual.shape == expected.shape
    err = (actual - expected).abs().max().item()
    assert err <= ATOL, f"max abs error {err:.2e}"


def test_loaded_through_checkpoints(res64_generator):
    g = res64_generator
    assert (g.resolution, g.n_style, g.num_layers) == (64, 10, 9)
    assert len(g.state_dict()) == 99


def test_mapping(res64_generator, res64_inputs):
    with torch.inference_mode():
        assert_close(res64_generator.mapping(res64_inputs["z"]), res64_inputs["w"])


@pytest.mark.parametrize("impl", IMPLS)
def test_full_and_all_rgbs(res64_generator, res64_inputs, res64_outputs, impl):
    g = res64_generator
    with torch.inference_mode():
        wplus = g.broadcast(g.mapping(res64_inputs["z"]))
        assert_close(g.synthesis(wplus, impl=impl), res64_outputs["full"])
        rgbs = g.synthesis_rgbs(wplus, impl=impl)
    assert [r.shape[-1] for r in rgbs] == [4, 8, 16, 32, 64]
    for got, want in zip(rgbs, res64_outputs["all_rgbs_full"], strict=True):
        assert_close(got, want)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("ratio", [0.25, 0.5, 0.75, 1.0])
def test_uniform_ratio_and_resolution(res64_generator, res64_inputs, res64_outputs, ratio, impl):
    g = res64_generator
    with torch.inference_mode():
        for res in (8, 16, 32, 64):
            out = g.synthesis(res64_inputs["wplus"], channels=ratio, resolution=res, impl=impl)
            assert_close(out, res64_outputs[f"uniform_r{ratio:.2f}_res{res}"])


@pytest.mark.slow
def test_flexible_list_equals_uniform(res64_generator, res64_inputs):
    g = res64_generator
    with torch.inference_mode():
        a = g.synthesis(res64_inputs["wplus"], channels=0.5, resolution=32)
        b = g.synthesis(res64_inputs["wplus"], channels=g.channel_config(0.5), resolution=32)
        flex = [64] * 6 + [32, 16, 8, 8]
        c = g.synthesis(res64_inputs["wplus"], channels=flex, resolution=64)
        c_ref = g.synthesis(res64_inputs["wplus"], channels=flex, resolution=64, impl="ref")
        c1 = g.synthesis(res64_inputs["wplus"][:1], channels=flex, resolution=64)
    assert torch.equal(a, b)
    assert c.shape == (2, 3, 64, 64) and torch.isfinite(c).all()
    assert_close(c, c_ref)
    assert_close(c1, c_ref[:1])
    assert not torch.allclose(c, g.synthesis(res64_inputs["wplus"]), atol=1e-3)


@pytest.mark.parametrize("impl", IMPLS)
def test_truncation(res64_generator, res64_inputs, res64_outputs, impl):
    g = res64_generator
    with torch.inference_mode():
        w = g.mapping(res64_inputs["z"])
        w = g.truncate(w, 0.7, w[0:1, 0])
        assert_close(g.synthesis(g.broadcast(w), impl=impl), res64_outputs["trunc0.7"])


@pytest.mark.parametrize("impl", IMPLS)
def test_style_mixing(res64_generator, res64_inputs, res64_outputs, impl):
    g = res64_generator
    with torch.inference_mode():
        w = g.mapping(res64_inputs["z2"])
        wplus = g.mix(w[:, 0], w[:, 1], inject_index=3)
        assert_close(g.synthesis(wplus, impl=impl), res64_outputs["mix_inject3"])


@pytest.mark.parametrize("impl", IMPLS)
def test_edit(res64_generator, res64_inputs, res64_outputs, impl):
    dirs = Directions({"31_Smiling": res64_inputs["edit_direction"]})
    wplus = dirs.edit(res64_inputs["wplus"], {"smiling": res64_inputs["edit_value"] / 100})
    with torch.inference_mode():
        assert_close(res64_generator.synthesis(wplus, impl=impl), res64_outputs["edit"])


def test_noise_modes(res64_generator, res64_inputs):
    g = res64_generator
    wplus = res64_inputs["wplus"]
    with torch.inference_mode():
        const = g.synthesis(wplus)
        none = g.synthesis(wplus, noise_mode="none")
        r1 = g.synthesis(wplus, noise_mode="random", generator=torch.Generator().manual_seed(1))
        r2 = g.synthesis(wplus, noise_mode="random", generator=torch.Generator().manual_seed(1))
    assert torch.equal(r1, r2)
    assert not torch.allclose(const, none) and not torch.allclose(const, r1)
    with pytest.raises(ValueError):
        g.synthesis(wplus, noise_mode="loud")


def test_bad_arguments(res64_generator, res64_inputs):
    g = res64_generator
    wplus = res64_inputs["wplus"]
    with pytest.raises(ValueError):
        g.synthesis(wplus, resolution=128)
    with pytest.raises(ValueError):
        g.synthesis(wplus, resolution=48)
    with pytest.raises(ValueError):
        g.synthesis(wplus, channels=[64] * 9)
    with pytest.raises(ValueError):
        g.synthesis(wplus[:, :5])


def test_config_from_state_dict(res64_dir):
    from worker.anycost.generator import Generator

    sd = torch.load(res64_dir / "generator.pt", weights_only=True)["g_ema"]
    cfg = Generator.config_from_state_dict(sd)
    assert cfg["resolution"] == 64 and cfg["channel_max"] == 64 and cfg["n_mlp"] == 8
    Generator(**cfg).load_state_dict(sd, strict=True)
    with torch.device("meta"):
        big_sd = Generator(1024).state_dict()
    assert Generator.config_from_state_dict(big_sd) == {
        "resolution": 1024, "style_dim": 512, "n_mlp": 8, "channel_multiplier": 2, "channel_max": 512,
    }


def test_fast_single_sample(res64_generator, res64_inputs, res64_outputs):
    """Batch 1 takes the weight-modulating fast path at large maps: still the reference output."""
    g = res64_generator
    with torch.inference_mode():
        for i in range(2):
            wplus = res64_inputs["wplus"][i : i + 1]
            assert_close(g.synthesis(wplus, impl="fast"), res64_outputs["uniform_r1.00_res64"][i : i + 1])
            assert_close(
                g.synthesis(wplus, channels=0.5, resolution=32, impl="fast"),
                res64_outputs["uniform_r0.50_res32"][i : i + 1],
            )
