"""Refining an encoder's W+ code against the aligned photo (optional, for finals).

The encoder gives a good first guess in one pass; a few Adam steps on the W+ code itself bring the
render closer to the photo (the original project did this with a separate CUDA-only script). The
loss is LPIPS when the ``lpips`` package *and* all of its weights are already on disk (we never
download), otherwise MSE plus an L1 on 4x-downsampled images (the low-pass term keeps colours and
shapes honest where MSE alone blurs). ``info`` says which loss ran and the reconstruction error
(MSE in [-1, 1] units, the same measure whichever loss optimised) before and after.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from shared.recipe.parse import Cost
from worker.anycost.perceptual import optional_lpips
from worker.render.images import from_uint8


def lpips_model():
    """The LPIPS(alex) net when its weights are all on disk, else None (never downloads; the
    files and where they go: ``worker.anycost.perceptual``)."""
    return optional_lpips("alex")


def loss_name() -> str:
    return "lpips_alex" if lpips_model() is not None else "mse+l1_down4"


def _loss(render: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    model = lpips_model()
    if model is not None:
        model.to(render.device)
        return model(render, target).mean() + F.mse_loss(render, target)
    low = F.l1_loss(F.avg_pool2d(render, 4), F.avg_pool2d(target, 4)) if render.shape[-1] >= 8 else 0.0
    return F.mse_loss(render, target) + low


def _render(bundle, wplus: torch.Tensor, cost: Cost, render_resolution: int | None = None
            ) -> torch.Tensor:
    """``wplus`` at ``cost``; with ``render_resolution`` above the cost's, rendered at that side
    and box-filtered down to it (NVIDIA's way, for models whose smaller outputs were never
    trained to match the full one)."""
    side = max(cost.resolution, int(render_resolution or cost.resolution))
    image = bundle.generator.synthesis(wplus, channels=cost.channels, resolution=side,
                                       noise_mode="const", impl="ref").float()
    if side != cost.resolution:
        image = F.interpolate(image, size=(cost.resolution,) * 2, mode="area")
    return image


def refine(
    bundle, target_crop: np.ndarray, wplus: torch.Tensor, steps: int, lr: float = 0.01,
    cost: Cost | None = None, on_step: Callable[[int, float], None] | None = None,
    max_seconds: float | None = None, render_resolution: int | None = None,
) -> tuple[torch.Tensor, dict]:
    """``steps`` Adam steps on ``wplus`` ``[F, L, S]`` towards ``target_crop`` (``[R, R, 3]`` or
    ``[F, R, R, 3]`` uint8, aligned faces). Renders at ``cost`` (default: full width at the
    target's resolution). Returns the best code seen (never worse than the input) and info.
    ``on_step(i, error)`` hears the error of the code each step starts from (benchmarks).
    ``max_seconds``: stop after the step that reaches this time (at least one step is taken);
    info's ``steps`` is the number taken, ``stopped_early`` whether the time ran out.
    ``render_resolution``: render at this side and box-filter to the cost's (see ``_render``)."""
    started = time.perf_counter()
    target = from_uint8(np.asarray(target_crop), wplus.device)
    if target.shape[0] != wplus.shape[0]:
        raise ValueError(f"{target.shape[0]} targets for {wplus.shape[0]} codes")
    cost = cost or Cost(channels=1.0, resolution=int(target.shape[-1]))
    if target.shape[-1] != cost.resolution:
        target = F.interpolate(target, size=(cost.resolution,) * 2, mode="area")
    start = wplus.detach().float().clone()
    code = start.clone().requires_grad_(True)
    opt = torch.optim.Adam([code], lr=lr)

    # Each step's forward pass also measures the code it started from, so one render per step.
    best, best_err, before = start, float("inf"), None
    done, stopped_early = 0, False
    for step in range(max(0, int(steps))):
        if max_seconds is not None and done and time.perf_counter() - started >= max_seconds:
            stopped_early = True
            break
        opt.zero_grad(set_to_none=True)
        image = _render(bundle, code, cost, render_resolution)
        err = float(F.mse_loss(image.detach(), target))
        if on_step is not None:
            on_step(step, err)
        before = err if before is None else before
        if err <= best_err:  # keep the best, so refinement can never make the result worse
            best, best_err = code.detach().clone(), err
        _loss(image, target).backward()
        opt.step()
        done += 1
    with torch.no_grad():
        final_err = float(F.mse_loss(_render(bundle, code, cost, render_resolution), target))
    if before is None:
        before = best_err = final_err
    elif final_err <= best_err:
        best, best_err = code.detach().clone(), final_err
    seconds = time.perf_counter() - started
    info = {"loss": loss_name(), "steps": done, "stopped_early": stopped_early, "lr": lr, "error_before": before,
            "error_after": best_err, "resolution": cost.resolution, "channels": cost.channels,
            "render_resolution": max(cost.resolution, int(render_resolution or cost.resolution)),
            "seconds": round(seconds, 4)}
    return best, info
