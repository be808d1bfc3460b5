"""Stage 2 trains by the sandwich rule: every step renders (and so trains) the largest and the
smallest sub-networks beside random ones, in the D step and in the G step; distillation covers
every resolution the step rendered; the mapping network trains only when asked. In-process
trainers on the tiny teacher (one process: the DDP wrapper is the module itself)."""

from __future__ import annotations

import random

import pytest
import torch

from worker.train import channels as chan
from worker.train import losses
from worker.train.distributed import World
from worker.train.gan import GanSettings, GanTrainer

CPU = World(rank=0, size=1, local_rank=0, device=torch.device("cpu"))


def _trainer(teacher_file, data_dir, out, **overrides) -> GanTrainer:
    settings = dict(stage="channels", teacher=str(teacher_file), data=str(data_dir), out=str(out),
                    name="tiny", batch=4, steps=3, workers=0, ema_kimg=0.05, seed=1)
    return GanTrainer(GanSettings(**{**settings, **overrides}), CPU)


def _record_members(trainer: GanTrainer) -> list[list]:
    calls: list[list] = []
    trainer.student.register_forward_pre_hook(lambda _, args: calls.append(list(args[2])))
    return calls


def test_sandwich_is_largest_smallest_and_random(teacher_file):
    from worker.anycost.checkpoints import load_generator

    g = load_generator(teacher_file)
    rng = random.Random(0)
    full, smallest = g.channel_config(1.0), g.channel_config(0.25)
    seen = set()
    for _ in range(20):
        members = chan.sandwich(g, rng, n_random=2)
        assert len(members) == 4 and members[0] == full and members[1] == smallest
        seen.update(tuple(m) for m in members[2:])
    assert len(seen) > 3  # the random ones vary


def test_every_step_trains_the_largest_and_smallest(teacher_file, data_dir, tmp_path):
    trainer = _trainer(teacher_file, data_dir, tmp_path / "s")
    g = trainer.g
    calls = _record_members(trainer)
    for step in range(3):
        trainer.train_step(step, next(trainer.batches))
    assert len(calls) == 6  # a D-step and a G-step render per step
    for members in calls:
        assert members[0] == g.channel_config(1.0) and members[1] == g.channel_config(0.25)
        assert len(members) == 4
    assert calls[0] == calls[1] and calls[0] != calls[2]  # D and G see the same sub-networks

    single = _trainer(teacher_file, data_dir, tmp_path / "one", sandwich=False)
    calls = _record_members(single)
    single.train_step(0, next(single.batches))
    assert [len(m) for m in calls] == [1, 1]


def test_distillation_covers_every_rendered_resolution(teacher_file, data_dir, tmp_path,
                                                       monkeypatch):
    trainer = _trainer(teacher_file, data_dir, tmp_path / "s", stage="multires", res_per_step=1)
    sizes: list[int] = []
    real = losses.image_distance

    def counting(student, teacher, use_lpips=True):
        sizes.append(student.shape[-1])
        return real(student, teacher, use_lpips)

    monkeypatch.setattr(losses, "image_distance", counting)
    for step in range(6):
        before = len(sizes)
        rng = random.Random(f"{trainer.s.seed}:{step}")
        top = rng.sample(trainer.res_levels, 1)[0]  # the step's own draw, repeated
        trainer.train_step(step, next(trainer.batches))
        assert sorted(sizes[before:]) == sorted(r for r in trainer.res_levels if r <= top)


@pytest.mark.parametrize("train_mapping", [False, True])
def test_mapping_network_trains_only_when_asked(teacher_file, data_dir, tmp_path, train_mapping):
    trainer = _trainer(teacher_file, data_dir, tmp_path / "m", stage="multires",
                       train_mapping=train_mapping)
    before = {k: v.clone() for k, v in trainer.g.style.state_dict().items()}
    trainer.train_step(0, next(trainer.batches))
    moved = any(not torch.equal(before[k], v) for k, v in trainer.g.style.state_dict().items())
    assert moved is train_mapping
    assert trainer.s.mixing == 0.9  # upstream's style-mixing probability by default
