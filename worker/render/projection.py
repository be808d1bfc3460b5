"""Projecting an aligned face into W+ without an encoder: Adam steps from the average face.

Configs released or imported without an encoder (the NVIDIA pickles, cars) still take photos:
the code starts at ``w_avg`` (the checkpoint's ``latent_avg`` when it has one, else the mean of
the mapping network over 4096 fixed random z) in every style slot, and ``inversion.refine``
optimises it against the aligned face on the full-width generator at no more than
``MAX_RESOLUTION`` (a backward pass at 1024 px costs ~20 s per step on a CPU; Anycost's
sub-resolutions are consistent with the full output). bench/projection.py measures the seconds
per step and the error after N steps.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from shared.recipe.parse import Cost
from worker.render import inversion

#: Largest side the optimisation renders at (the same cap as the finals' refinement).
MAX_RESOLUTION = 256
#: Adam's step size from w_avg: the code travels much further than an encoder's code is refined.
LEARNING_RATE = 0.05
METHOD = "optimisation"


def average_code(bundle, n_faces: int) -> torch.Tensor:
    """``w_avg`` in every style slot: ``[n_faces, L, S]`` on the generator's device."""
    generator = bundle.generator
    device = generator.input.input.device
    w = bundle.w_avg().detach().float().reshape(-1, generator.style_dim)[0].to(device)
    return w.reshape(1, 1, -1).expand(n_faces, generator.n_style, -1).clone()


def projection_size(model_resolution: int) -> int:
    """The side the optimisation renders at for a model of ``model_resolution``."""
    return min(int(model_resolution), MAX_RESOLUTION)


def project(
    bundle, targets: np.ndarray, steps: int, lr: float = LEARNING_RATE,
    on_step: Callable[[int, float], None] | None = None, max_seconds: float | None = None,
) -> tuple[torch.Tensor, dict]:
    """``steps`` Adam steps from ``w_avg`` towards ``targets`` (``[F, R, R, 3]`` uint8 aligned
    faces, R = ``projection_size``), stopping early once ``max_seconds`` have passed. Returns the
    best code ``[F, L, S]`` and info: method, steps taken, error at w_avg (``error_before``) and
    of the code returned (``error``), seconds."""
    targets = np.asarray(targets)
    if targets.ndim == 3:
        targets = targets[None]
    size = int(targets.shape[1])
    start = average_code(bundle, targets.shape[0])
    code, info = inversion.refine(bundle, targets, start, steps, lr=lr,
                                  cost=Cost(channels=1.0, resolution=size), on_step=on_step,
                                  max_seconds=max_seconds)
    info = {**info, "method": METHOD, "error": info["error_after"]}
    return code, info
