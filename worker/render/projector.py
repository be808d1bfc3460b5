"""Projecting an aligned face into W the way NVIDIA's StyleGAN2 projector does (Karras et al.,
"Analyzing and Improving the Image Quality of StyleGAN", section 5), then optionally refining W+.

Stage 1 optimises ONE w (shared by every style slot) and the generator's noise maps:

- start at ``w_avg``; ``w_std`` is the spread of the mapping network's output over fixed z;
- learning rate: ``lr * ramp``, a linear warm-up over the first 5 % of the steps and a cosine
  ramp-down over the last 25 %;
- Gaussian noise added to w, ``w_std * 0.05 * max(0, 1 - t / 0.75) ** 2``: large at first, none
  in the last quarter (explores, then settles);
- the noise maps are optimised too, with a regulariser that penalises their spatial
  autocorrelation at every scale (weight 1e5), and renormalised to zero mean, unit variance
  after each step, so they cannot carry the face;
- distance: LPIPS(VGG) at no more than 256 px when its files are on disk
  (``worker.anycost.perceptual``); otherwise a documented fallback, MSE plus L1 at a quarter of
  the size (``distance_name`` says which). The generator renders at ``render_resolution``
  (``projection.fit_render_resolution``: the model's own side, box-filtered to the target's, for
  a model whose smaller outputs were not trained to match its full one, as NVIDIA renders).

The code stays on the W manifold, which is what keeps edits of a projected photo looking right.
Stage 2 (``wplus_steps`` > 0) refines the W+ code from there (``inversion.refine``: a pixel fit,
more faithful, less editable). Tensor legend: F faces, L W+ slots, S style_dim, R resolution.
"""

from __future__ import annotations

import math
import time
import weakref
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from shared.recipe.parse import Cost
from worker.anycost.perceptual import lpips_available, optional_lpips
from worker.render import inversion
from worker.render.images import from_uint8

METHOD = "w_projector"
LEARNING_RATE = 0.1
LR_RAMPUP = 0.05  # fraction of the steps
LR_RAMPDOWN = 0.25
NOISE_FACTOR = 0.05  # initial w noise, in w_std
NOISE_RAMP = 0.75  # fraction of the steps after which no noise is added to w
REG_NOISE_WEIGHT = 1e5
LPIPS_MAX_RESOLUTION = 256
W_STD_SAMPLES = 4096


def learning_rate(t: float, base: float = LEARNING_RATE) -> float:
    """The rate at progress ``t`` in [0, 1): warm-up, flat, cosine ramp-down."""
    ramp = min(1.0, (1.0 - t) / LR_RAMPDOWN)
    ramp = 0.5 - 0.5 * math.cos(ramp * math.pi)
    return base * ramp * min(1.0, t / LR_RAMPUP)


def w_noise_scale(t: float, w_std: float) -> float:
    return w_std * NOISE_FACTOR * max(0.0, 1.0 - t / NOISE_RAMP) ** 2


_W_STD: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def w_std(bundle) -> float:
    """The root-mean-square distance of the mapping's w from ``w_avg`` over fixed z (computed
    once per generator: 4096 mapping passes cost ~0.5 s on a CPU, more than a tiny model's step)."""
    generator = bundle.generator
    if generator in _W_STD:
        return _W_STD[generator]
    g = torch.Generator(device="cpu").manual_seed(123)
    z = torch.randn(W_STD_SAMPLES, generator.style_dim, generator=g).to(bundle.device)
    with torch.no_grad():
        w = generator.mapping(z).float()
    avg = bundle.w_avg().detach().float().reshape(1, -1).to(w.device)
    _W_STD[generator] = float(((w - avg) ** 2).sum(1).mean().sqrt())
    return _W_STD[generator]


def noise_regularizer(noises: list[torch.Tensor]) -> torch.Tensor:
    """Squared autocorrelation of each noise map with itself shifted by one pixel, at every
    scale down to 8 px: zero for white noise, large when the maps hold structure."""
    loss = torch.zeros(())
    for noise in noises:
        while True:
            loss = loss + (noise * torch.roll(noise, 1, dims=3)).mean() ** 2
            loss = loss + (noise * torch.roll(noise, 1, dims=2)).mean() ** 2
            if noise.shape[-1] <= 8:
                break
            noise = F.avg_pool2d(noise, 2)
    return loss


def _distance(lpips_net, image: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    if lpips_net is not None:
        if image.shape[-1] > LPIPS_MAX_RESOLUTION:
            image = F.interpolate(image, size=(LPIPS_MAX_RESOLUTION,) * 2, mode="area")
            target = F.interpolate(target, size=(LPIPS_MAX_RESOLUTION,) * 2, mode="area")
        return lpips_net(image, target).sum()
    low = F.l1_loss(F.avg_pool2d(image, 4), F.avg_pool2d(target, 4)) if image.shape[-1] >= 8 else 0
    return (F.mse_loss(image, target) + low) * image.shape[0]  # a sum over faces, as LPIPS's


def _render(generator, wplus: torch.Tensor, size: int, render_resolution: int,
            noises=None) -> torch.Tensor:
    """``wplus`` at full width, rendered at ``render_resolution`` and box-filtered to ``size``
    (the fixed noise buffers unless ``noises``)."""
    image = generator.synthesis(wplus, channels=1.0, resolution=render_resolution,
                                noise_mode="const", noises=noises, impl="ref").float()
    if render_resolution != size:
        image = F.interpolate(image, size=(size, size), mode="area")
    return image


def distance_name() -> str:
    return "lpips_vgg" if lpips_available("vgg") else "mse+l1_down4"


def project_w(
    bundle, targets: np.ndarray, steps: int, lr: float = LEARNING_RATE, seed: int = 0,
    on_step: Callable[[int, float], None] | None = None, max_seconds: float | None = None,
    optimize_noise: bool = False, render_resolution: int | None = None,
) -> tuple[torch.Tensor, dict]:
    """Stage 1 for ``targets`` ``[F, R, R, 3]`` uint8 (R a resolution the model renders), each
    face on its own w; the generator renders at ``render_resolution`` (default R) and is
    box-filtered to R. Returns W+ codes ``[F, L, S]`` (w in every slot) and info."""
    started = time.perf_counter()
    generator = bundle.generator
    device = bundle.device
    target = from_uint8(np.asarray(targets), device).float()
    n, size = target.shape[0], int(target.shape[-1])
    side = max(size, int(render_resolution or size))
    lpips_net = optional_lpips("vgg")
    if lpips_net is not None:
        lpips_net = lpips_net.to(device)
    std = w_std(bundle)
    w_avg = bundle.w_avg().detach().float().reshape(1, 1, -1).to(device)
    w = w_avg.repeat(n, 1, 1).requires_grad_(True)  # [F, 1, S]
    g = torch.Generator(device="cpu").manual_seed(seed)
    if optimize_noise:
        noises = [torch.randn(n, 1, *buf.shape[-2:], generator=g).to(device).requires_grad_(True)
                  for buf in generator.noises.buffers()]
    else:  # the model's own fixed maps, as previews and finals render
        noises = [buf.detach().expand(n, -1, -1, -1) for buf in generator.noises.buffers()]
    with torch.no_grad():  # the error at w_avg, the start every method reports
        start = _render(generator, w.detach().expand(-1, generator.n_style, -1), size, side)
        before = float(F.mse_loss(start, target))
    opt = torch.optim.Adam([w, *noises] if optimize_noise else [w], lr=lr, betas=(0.9, 0.999))
    done, stopped_early, last = 0, False, float("nan")
    for step in range(max(1, int(steps))):
        if max_seconds is not None and done and time.perf_counter() - started >= max_seconds:
            stopped_early = True
            break
        t = step / max(1, int(steps))
        for group in opt.param_groups:
            group["lr"] = learning_rate(t, lr)
        shake = torch.randn(w.shape, generator=g).to(device) * w_noise_scale(t, std)
        wplus = (w + shake).expand(-1, generator.n_style, -1)
        image = _render(generator, wplus, size, side, noises)
        dist = _distance(lpips_net, image, target)
        loss = dist + REG_NOISE_WEIGHT * noise_regularizer(noises) if optimize_noise else dist
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            for noise in noises if optimize_noise else ():
                noise -= noise.mean()
                noise *= noise.square().mean().rsqrt()
        last = float(dist.detach()) / n
        if on_step is not None:
            on_step(step, last)
        done += 1
    code = w.detach().expand(-1, generator.n_style, -1).clone()
    with torch.no_grad():
        error = float(F.mse_loss(_render(generator, code, size, side), target))
    info = {"method": METHOD, "distance": distance_name(), "steps": done, "lr": lr,
            "stopped_early": stopped_early, "final_distance": last, "error": error,
            "error_before": before, "resolution": size, "render_resolution": side,
            "seconds": round(time.perf_counter() - started, 4)}
    return code, info


def project(
    bundle, targets: np.ndarray, steps: int, wplus_steps: int = 0, seed: int = 0,
    on_step: Callable[[int, float], None] | None = None, max_seconds: float | None = None,
    optimize_noise: bool = False, render_resolution: int | None = None,
) -> tuple[torch.Tensor, dict]:
    """Stage 1 (``steps`` on W), then stage 2 (``wplus_steps`` of W+ refinement, 0 for none)
    within ``max_seconds`` overall. The code is rendered with the model's fixed noise buffers
    afterwards (the optimised maps belong to this photo only), which ``error`` measures."""
    targets = np.asarray(targets)
    if targets.ndim == 3:
        targets = targets[None]
    code, info = project_w(bundle, targets, steps, seed=seed, on_step=on_step,
                           max_seconds=max_seconds, optimize_noise=optimize_noise,
                           render_resolution=render_resolution)
    if wplus_steps > 0:
        left = None if max_seconds is None else max(0.0, max_seconds - info["seconds"])
        size = int(targets.shape[1])
        code, refined = inversion.refine(bundle, targets, code, wplus_steps,
                                         cost=Cost(channels=1.0, resolution=size),
                                         max_seconds=left, render_resolution=render_resolution)
        info = {**info, "method": f"{METHOD}+wplus", "wplus_steps": refined["steps"],
                "error": refined["error_after"],
                "seconds": round(info["seconds"] + refined["seconds"], 4)}
    return code, info
