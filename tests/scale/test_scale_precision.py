"""Half-precision rendering against fp32 (the error of the autocast path the GPU worker uses:
bf16 measured on the CPU, fp16 on a GPU), and the warm-up render at worker start."""

from __future__ import annotations

import logging

import pytest
import torch

from shared.recipe.parse import Cost, default_costs
from worker.render import stages
from worker.render.runtime import build_runtime, inference, warm_up

COSTS = [Cost(0.5, 32), Cost(1.0, 64)]  # the tiny model's preview and full render


@pytest.fixture(scope="module")
def tiny(tiny_weights_dir):
    from worker.anycost.bundle import load_bundle

    return load_bundle("tiny-random", tiny_weights_dir, device="cpu")


def _codes(bundle, n: int = 4, device: str = "cpu") -> torch.Tensor:
    """Realistic W+ codes: mapped from fixed random z, one per layer, mixed between two."""
    g = bundle.generator
    z = torch.randn(2 * n, g.style_dim, generator=torch.Generator().manual_seed(7)).to(device)
    with torch.inference_mode():
        w = g.mapping(z).view(2, n, 1, g.style_dim)
    mix = g.n_style // 2
    return torch.cat([w[0].expand(n, mix, -1), w[1].expand(n, g.n_style - mix, -1)], dim=1)


def _errors(bundle, codes: torch.Tensor, dtype: torch.dtype) -> list[tuple[float, float]]:
    out = []
    for cost in COSTS:
        with inference(codes.device, torch.float32):
            ref = stages.render(bundle, codes, cost)
        with inference(codes.device, dtype):
            half = stages.render(bundle, codes, cost)
        assert half.dtype == torch.float32 and half.shape == ref.shape
        diff = (half - ref).abs()
        out.append((diff.max().item(), diff.mean().item()))
    return out


def test_bf16_render_error_against_fp32_on_cpu(tiny):
    codes = _codes(tiny)
    for (max_err, mean_err), cost in zip(_errors(tiny, codes, torch.bfloat16), COSTS, strict=True):
        # Images span about [-1, 1] (one 8-bit level = 0.0078): bf16 keeps 8 mantissa bits,
        # so the mean stays around one level and no pixel is off by more than ~20 levels.
        assert 0 < max_err < 0.16, (cost, max_err)
        assert mean_err < 0.02, (cost, mean_err)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_render_error_against_fp32_on_gpu(tiny_weights_dir, dtype):
    from worker.anycost.bundle import load_bundle

    bundle = load_bundle("tiny-random", tiny_weights_dir, device="cuda")
    codes = _codes(bundle, device="cuda")
    bound = 0.02 if dtype == torch.float16 else 0.16  # fp16 keeps 11 mantissa bits
    for max_err, mean_err in _errors(bundle, codes, dtype):
        assert max_err < bound and mean_err < bound / 8


def test_fp32_inference_is_the_plain_path(tiny):
    codes = _codes(tiny, n=2)
    with inference(torch.device("cpu"), torch.float32):
        a = stages.render(tiny, codes, COSTS[1])
        assert not torch.is_autocast_enabled("cpu")
    with torch.inference_mode():
        b = stages.render(tiny, codes, COSTS[1])
    assert torch.equal(a, b)


def test_warm_up_renders_both_costs_and_logs_its_time(tiny, tiny_weights_dir, sqlite_url,
                                                      caplog, monkeypatch):
    from shared.platform.settings import Settings

    seen = []
    real_render = stages.render
    # Observe (not replace) the real render, to see which costs the warm-up used.
    monkeypatch.setattr(stages, "render",
                        lambda bundle, w, cost: seen.append((cost, w.shape[0])) or
                        real_render(bundle, w, cost))
    rt = build_runtime(Settings(database_url=sqlite_url, model="tiny-random",
                                weights_dir=tiny_weights_dir), "warm:1", bundle=tiny)
    try:
        with caplog.at_level(logging.INFO, logger="worker.render.runtime"):
            seconds = warm_up(rt)
    finally:
        rt.close()
    assert seen == [(c, 1) for c in default_costs(tiny.resolution)]
    assert 0 < seconds < 30 and rt.extras["warmup_seconds"] == seconds
    record = next(r for r in caplog.records if "warm-up" in r.getMessage())
    assert record.warmup_seconds == round(seconds, 4)
