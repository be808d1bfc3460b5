"""Checkpoints of a training run, the EMA generator, and the progress line.

Files in the output directory (written by rank 0, atomically: a reader never sees half a file):
- ``generator_<NAME>.pt`` = ``{'g_ema': state_dict}``, plus the teacher's ``latent_avg`` and
  ``arch`` when its file has them (``checkpoints.generator_file``) (or ``encoder_<NAME>.pt`` =
  ``{'state_dict': ...}``): the released layout, ready for ``python -m worker.anycost.weights
  import CONFIG FILE`` and ``load_generator``;
- ``train_state.pt``: everything a resume needs: the models being trained, their EMA,
  optimiser states, the step and images seen, every rank's RNG states and the run's settings.
  Every random choice of a step is drawn from generators seeded by (seed, step, rank), so
  continuing from step k repeats exactly what an uninterrupted run does from step k.
All of it loads with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import copy
import os
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from worker.anycost.checkpoints import read_checkpoint
from worker.train.distributed import mean_scalars

STATE_NAME = "train_state.pt"


def save_atomic(obj: Any, final: Path) -> None:
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.{os.getpid()}.part")
    with tmp.open("wb") as f:
        torch.save(obj, f)
    os.replace(tmp, final)


def load_state(out_dir: str | Path) -> dict | None:
    """The run's last training state, or None when there is none yet."""
    path = Path(out_dir) / STATE_NAME
    return read_checkpoint(path) if path.exists() else None


def refuse_overwrite(out_dir: str | Path, resume: bool) -> None:
    """A new run must not overwrite another run's state (hours of training) by accident."""
    if not resume and (Path(out_dir) / STATE_NAME).exists():
        raise ValueError(f"{Path(out_dir) / STATE_NAME} exists: pass --resume to continue that "
                         "run, or choose another --out")


def rng_state() -> dict:
    """This process's global RNG states (torch CPU, CUDA if any, Python)."""
    state = {"torch": torch.get_rng_state(), "python": list(random.getstate()[1])}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate((3, tuple(state["python"]), None))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


def step_generator(seed: int, step: int, stream: int, device: torch.device) -> torch.Generator:
    """A torch generator for one purpose (``stream``) of one step, the same on every rank."""
    g = torch.Generator(device=device)
    g.manual_seed((int(seed) * 1_000_003 + int(step)) * 64 + int(stream))
    return g


def step_random(seed: int, step: int) -> random.Random:
    """Python RNG of a step's choices (resolutions, sub-network), the same on every rank."""
    return random.Random(f"{seed}:{step}")


class Ema:
    """Exponential moving average of a model's parameters; half-life in images."""

    def __init__(self, model: nn.Module, half_life_images: float):
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        self.half_life = float(half_life_images)

    def beta(self, images_per_step: int) -> float:
        return 0.5 ** (images_per_step / self.half_life) if self.half_life > 0 else 0.0

    @torch.no_grad()
    def update(self, model: nn.Module, images_per_step: int) -> None:
        beta = self.beta(images_per_step)
        for p_ema, p in zip(self.model.parameters(), model.parameters(), strict=True):
            p_ema.lerp_(p.detach(), 1.0 - beta)
        for b_ema, b in zip(self.model.buffers(), model.buffers(), strict=True):
            b_ema.copy_(b)


class Progress:
    """One line every ``every`` steps: step, images, images/s, losses, ETA (rank 0 prints)."""

    def __init__(self, total_steps: int, start_step: int, images_per_step: int, every: int,
                 enabled: bool):
        self.total, self.start = total_steps, start_step
        self.images_per_step = images_per_step
        self.every = max(1, every)
        self.enabled = enabled
        self.t0 = time.perf_counter()
        self.last_t, self.last_step = self.t0, start_step

    def due(self, step: int) -> bool:
        return step % self.every == 0 or step == self.total

    def line(self, step: int, losses: dict[str, float]) -> str:
        now = time.perf_counter()
        rate = (step - self.last_step) * self.images_per_step / max(now - self.last_t, 1e-9)
        overall = (step - self.start) / max(now - self.t0, 1e-9)
        eta = (self.total - step) / overall if overall > 0 else 0.0
        self.last_t, self.last_step = now, step
        parts = " ".join(f"{k} {v:.4f}" for k, v in sorted(losses.items()))
        return (f"step {step}/{self.total}  images {step * self.images_per_step}  "
                f"{rate:.1f} img/s  {parts}  eta {_hms(eta)}")

    def report(self, step: int, losses: dict[str, float]) -> None:
        line = self.line(step, losses)
        if self.enabled:
            print(line, flush=True)


def _hms(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def train_until(trainer, steps: int, log_every: int, checkpoint_every: int,
                take_step: Callable[[int], dict[str, float]]) -> None:
    """The loop both trainers run from ``trainer.step`` to ``steps``: ``take_step(step)`` does
    one optimisation step and returns its losses; a progress line (losses averaged over the
    ranks) every ``log_every`` steps; ``trainer.save()`` every ``checkpoint_every`` steps and at
    the end (a collective: every rank calls it)."""
    world = trainer.world
    progress = Progress(steps, trainer.step, trainer.global_batch, log_every, world.is_main)
    while trainer.step < steps:
        logged = take_step(trainer.step)
        trainer.step += 1
        if progress.due(trainer.step):
            progress.report(trainer.step, mean_scalars(world, logged))
        if trainer.step % checkpoint_every == 0 or trainer.step == steps:
            trainer.save()
