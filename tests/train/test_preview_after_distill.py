"""Distillation moves a model's default preview to a cheaper cost: tiny-random's untrained
sub-networks are all below the bar (default: the full network); a short adaptive-channel
distillation run, measured by ``worker.train`` itself, has a cheaper cost meeting it."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from shared.catalog.configs import get_model_config
from shared.catalog.costs import generator_macs
from shared.catalog.preview_costs import DEFAULT_MIN_PSNR, default_preview, sidecar_path
from tests.train.conftest import torchrun
from worker.anycost import weights
from worker.anycost.checkpoints import load_generator

pytestmark = pytest.mark.slow

TINY = get_model_config("tiny-random")
STEPS = 60


def _macs(cost) -> int:
    return generator_macs(64, cost[0], target_resolution=cost[1], channel_multiplier=2,
                          channel_max=64)


def _samples(generator_path, out) -> None:
    """16 'real' images: tiny-random's own samples (another seed), as PNG files."""
    g = load_generator(generator_path)
    z = torch.randn(16, g.style_dim, generator=torch.Generator().manual_seed(123))
    with torch.no_grad():
        images = g.synthesis(g.broadcast(g.mapping(z)), noise_mode="const")
    arr = ((images.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()
    out.mkdir()
    for i, a in enumerate(arr):
        Image.fromarray(np.ascontiguousarray(a)).save(out / f"{i:04d}.png")


def test_distillation_moves_the_default_preview_to_a_cheaper_cost(tiny_weights_dir, tmp_path):
    files = weights.ensure_tiny_random(tiny_weights_dir)
    before = default_preview(TINY, tiny_weights_dir, DEFAULT_MIN_PSNR)
    assert before == (1.0, 64)  # untrained: no cheaper cost meets the bar
    teacher = files["generator"].path
    _samples(teacher, tmp_path / "data")
    out = tmp_path / "s2"
    torchrun(1, ["channels", "--teacher", str(teacher), "--data", str(tmp_path / "data"),
                 "--out", str(out), "--name", "tiny-random", "--batch", "4", "--steps", str(STEPS),
                 "--workers", "0", "--ema-kimg", "0.05", "--log-every", "30",
                 "--checkpoint-every", str(STEPS), "--lpips-weight", "0"], timeout=900)
    table = json.loads(sidecar_path(out, "tiny-random").read_text())  # written by worker.train
    assert table["config"] == "tiny-random" and len(table["costs"]) == 8
    after = default_preview(TINY, out, DEFAULT_MIN_PSNR)
    assert after[0] < 1.0 and _macs(after) < _macs(before), (after, table["costs"])
    psnr = {(c["channels"], c["resolution"]): c["psnr"] for c in table["costs"]}
    assert psnr[after] >= DEFAULT_MIN_PSNR
