"""One model serves renders of different costs, interleaved or concurrent, with no state left over."""

from __future__ import annotations

import threading

import torch


def _module_state(model: torch.nn.Module) -> list:
    return [(name, sorted(vars(m).keys())) for name, m in model.named_modules()]


def test_interleaved_calls_match_separate_calls(res64_generator, res64_inputs):
    g = res64_generator
    wplus = res64_inputs["wplus"]
    attrs_before = _module_state(g)
    with torch.inference_mode():
        alone_small = g.synthesis(wplus, channels=0.25, resolution=16)
        alone_full = g.synthesis(wplus)
        # Interleave: generator-style iteration of two renders at once.
        a = g._synthesize(wplus, 0.25, 16, "const", "fast", None)
        b = g._synthesize(wplus, None, None, "const", "fast", None)
        outs_a, outs_b = [], []
        for _ in range(5):
            for it, outs in ((a, outs_a), (b, outs_b)):
                nxt = next(it, None)
                if nxt is not None:
                    outs.append(nxt)
    assert torch.equal(outs_a[-1].contiguous(), alone_small)
    assert torch.equal(outs_b[-1].contiguous(), alone_full)
    assert _module_state(g) == attrs_before  # nothing was stored on any module


def test_concurrent_threads(res64_generator, res64_inputs):
    g = res64_generator
    wplus = res64_inputs["wplus"]
    costs = [(0.25, 8), (1.0, 64), (0.5, 32), (0.75, 64)]
    with torch.inference_mode():
        expected = [g.synthesis(wplus, c, r) for c, r in costs]
    results: dict[int, torch.Tensor] = {}

    def render(i: int) -> None:
        with torch.inference_mode():
            for _ in range(3):
                results[i] = g.synthesis(wplus, *costs[i])

    threads = [threading.Thread(target=render, args=(i,)) for i in range(len(costs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, want in enumerate(expected):
        assert torch.equal(results[i], want)
