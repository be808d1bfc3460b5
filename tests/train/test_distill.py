"""Distillation works: on the tiny teacher, stage 1 brings the lower resolutions to the teacher's
(downsampled) images; stage 2 (sandwich rule) keeps every sub-network much closer to the teacher
than the same run without distillation, and brings the narrow ones closer than sorting alone,
while the full network stays near where it started. Real torchrun processes, 150 steps each.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from tests.train.conftest import torchrun, torchrun_together
from worker.anycost.checkpoints import load_generator
from worker.train.channels import sort_channels

pytestmark = pytest.mark.slow

RATIOS = (0.25, 0.5, 0.75)
STEPS = 150


def _eval_codes(g, n: int = 16) -> torch.Tensor:
    z = torch.randn(n, g.style_dim, generator=torch.Generator().manual_seed(999))
    return g.broadcast(g.mapping(z))


@torch.no_grad()
def _distance(student, teacher, ratio: float, resolution: int) -> float:
    """MSE between the student's sub-network image and the teacher's full image, downsampled."""
    wplus = _eval_codes(teacher)
    target = teacher.synthesis(wplus, None, None, "const", "ref")
    target = F.adaptive_avg_pool2d(target, resolution)
    image = student.synthesis(wplus, ratio, resolution, "const", "ref")
    return float(F.mse_loss(image, target))


def _args(stage: str, teacher, data_dir, out, extra=()) -> list[str]:
    return [stage, "--teacher", str(teacher), "--data", str(data_dir), "--out", str(out),
            "--name", "tiny", "--batch", "4", "--steps", str(STEPS), "--workers", "0",
            "--ema-kimg", "0.05", "--log-every", "50", "--checkpoint-every", str(STEPS), *extra]


def test_stage1_then_stage2_distill_every_resolution_and_ratio(teacher_file, data_dir, tmp_path):
    teacher = load_generator(teacher_file)
    torchrun(1, _args("multires", teacher_file, data_dir, tmp_path / "s1"), timeout=600)
    stage1_file = tmp_path / "s1" / "generator_tiny.pt"
    stage1 = load_generator(stage1_file)
    for res in (4, 8, 16):
        before, after = _distance(teacher, teacher, 1.0, res), _distance(stage1, teacher, 1.0, res)
        assert after < 0.7 * before, f"{res} px: {before:.4f} -> {after:.4f}"
    assert _distance(stage1, teacher, 1.0, 32) < 0.03  # started at 0: stays close

    # Stage 2 and its GAN-only control are independent one-thread runs: started together.
    stage2, control = _stage2(stage1_file, data_dir, {
        tmp_path / "s2": [], tmp_path / "gan-only": ["--mse-weight", "0", "--lpips-weight", "0"]})
    sorted_start = load_generator(stage1_file)
    sort_channels(sorted_start)  # where stage 2 starts: channels sorted by importance
    for ratio in (*RATIOS, 1.0):
        for res in (16, 32):
            start = _distance(sorted_start, stage1, ratio, res)
            after = _distance(stage2, stage1, ratio, res)
            without = _distance(control, stage1, ratio, res)
            # Distillation's own effect: the same 150 steps without it (GAN loss only) drift
            # every sub-network away from the teacher (measured x0.27 to x0.72 of that distance).
            assert after < 0.85 * without, f"{ratio}@{res}: {after:.4f} vs {without:.4f} without"
            if ratio <= 0.5:  # beyond what sorting did (measured x0.61 to x0.81)
                assert after < 0.9 * start, f"{ratio}@{res}: sorted {start:.4f} -> {after:.4f}"
    # The full network, the teacher of every sub-network, stays near where it started (0.0104).
    assert _distance(stage2, stage1, 1.0, 32) < 0.02
    # Sorting alone already brings the narrow ratios closer (0.0644 -> 0.0557 at 0.25 @ 32 px).
    assert _distance(sorted_start, stage1, 0.25, 32) < _distance(stage1, stage1, 0.25, 32)


def _stage2(stage1_file, data_dir, runs: dict) -> list:
    """Stage 2 from stage 1's output. Measured (MSE to stage 1's full image, box-filtered; in
    parentheses the sorted start and the GAN-only control): 0.25@16 0.0357 (0.0458, 0.0497),
    0.25@32 0.0342 (0.0557, 0.0635), 0.5@16 0.0275 (0.0339, 0.0452), 0.5@32 0.0170 (0.0215,
    0.0380), 0.75@32 0.0170 (0.0055, 0.0536), 1.0@32 0.0104 (0, 0.0390). 0.75@32 ends farther
    than its sorted start: in so short a run on a random model the GAN loss moves the full
    network (0 -> 0.0104) and 0.75 follows it; distillation holds it at a third of the drift.
    (The 0.95 bound this test had compared with the unsorted start, crediting sorting to
    training. The earlier one-sub-network rule, --no-sandwich, ends within 10 % of these.)"""
    d = ["--discriminator", str(stage1_file.parent / "train_state.pt")]
    torchrun_together([_args("channels", stage1_file, data_dir, out, [*d, *extra])
                       for out, extra in runs.items()], timeout=600)
    return [load_generator(out / "generator_tiny.pt") for out in runs]
