"""Projecting an aligned face into W+ without an encoder: Adam steps from the average face.

Configs released or imported without an encoder (the NVIDIA pickles, cars) still take photos:
the code starts at ``w_avg`` (the checkpoint's ``latent_avg`` when it has one, else the mean of
the mapping network over 4096 fixed random z) in every style slot, and ``inversion.refine``
optimises it against the aligned face, compared at no more than ``MAX_RESOLUTION``, on the
full-width generator. Where it renders (``fit_render_resolution``): at that side when the model's
full-width output there was measured to agree with its full render (Anycost models are trained
for it; a 1024 px backward pass costs ~20 s per step on a CPU), else at the model's own
resolution, box-filtered down (NVIDIA's projector; a StyleGAN2 never distilled, such as an
imported NVIDIA network, has smaller outputs that are other images: fitting them fits the wrong
face). bench/projection.py measures the seconds per step and the error after N steps.
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


def fit_render_resolution(model_resolution: int, size: int, config=None, weights_dir=None,
                          min_psnr: float | None = None) -> int:
    """The side the generator renders at while a projection compares at ``size``: ``size`` when
    it is the model's own, or when ``config``'s full-width output at ``size`` was measured at
    least ``min_psnr`` (``consistency_<config>.json``, ``shared.catalog.preview_costs``); else
    ``model_resolution`` (the render is then box-filtered to ``size``). A model never measured,
    or no config given: ``size`` (the earlier behaviour; installs measure every generator)."""
    from shared.catalog.preview_costs import preview_untrained

    if size >= model_resolution or config is None or weights_dir is None or min_psnr is None:
        return size
    untrained = preview_untrained(config, weights_dir, float(min_psnr), (1.0, int(size)))
    return int(model_resolution) if untrained else size


def project(
    bundle, targets: np.ndarray, steps: int, lr: float = LEARNING_RATE,
    on_step: Callable[[int, float], None] | None = None, max_seconds: float | None = None,
    render_resolution: int | None = None,
) -> tuple[torch.Tensor, dict]:
    """``steps`` Adam steps from ``w_avg`` towards ``targets`` (``[F, R, R, 3]`` uint8 aligned
    faces, R = ``projection_size``), stopping early once ``max_seconds`` have passed; the
    generator renders at ``render_resolution`` (default R, see ``fit_render_resolution``). Returns the
    best code ``[F, L, S]`` and info: method, steps taken, error at w_avg (``error_before``) and
    of the code returned (``error``), seconds."""
    targets = np.asarray(targets)
    if targets.ndim == 3:
        targets = targets[None]
    size = int(targets.shape[1])
    start = average_code(bundle, targets.shape[0])
    code, info = inversion.refine(bundle, targets, start, steps, lr=lr,
                                  cost=Cost(channels=1.0, resolution=size), on_step=on_step,
                                  max_seconds=max_seconds, render_resolution=render_resolution)
    info = {**info, "method": METHOD, "error": info["error_after"]}
    return code, info
