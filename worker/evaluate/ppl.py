"""Perceptual Path Length in W, as StyleGAN2 measures it.

For each of N pairs of random codes, take a point ``t`` on the segment between their w (``end``:
t = 0, the segment's start; ``full``: t ~ U(0, 1)), step ``epsilon`` (1e-4) along it, render both
codes with the same fixed noise, crop to the face's centre (the middle half of the height, rows
3/8..7/8, and of the width, columns 2/8..6/8), box-filter to at most 256 px and take the LPIPS
(VGG) distance divided by epsilon squared. The mean over the pairs between the 1st and 99th
percentile is the PPL (the tails are dominated by a few discontinuities).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import torch

from shared.recipe.parse import Cost
from worker.evaluate.common import batches, downsample, render, sample_z

EPSILON = 1e-4
SAMPLINGS = ("end", "full")
MAX_SIDE = 256


def face_crop(images: torch.Tensor) -> torch.Tensor:
    """``[N, 3, R, R]`` -> the centre ``[N, 3, R/2, R/2]`` StyleGAN2 uses for faces."""
    c = images.shape[-1] // 8
    return images[:, :, c * 3:c * 7, c * 2:c * 6]


@torch.no_grad()
def path_lengths(bundle, lpips_net, n: int, cost: Cost, seed: int = 0, epsilon: float = EPSILON,
                 sampling: str = "end", crop: bool = True, batch_size: int = 8) -> np.ndarray:
    """The ``n`` scaled LPIPS distances (before the percentile filter)."""
    if sampling not in SAMPLINGS:
        raise ValueError(f"sampling must be one of {', '.join(SAMPLINGS)}")
    generator = bundle.generator
    device = generator.input.input.device
    z = sample_z(2 * n, generator.style_dim, seed).to(device)
    t = torch.rand(n, 1, generator=torch.Generator().manual_seed(seed + 1)).to(device)
    if sampling == "end":
        t = torch.zeros_like(t)
    w = generator.mapping(z)
    w0, w1 = w[:n], w[n:]
    out = []
    for part in batches(n, batch_size):
        a = torch.lerp(w0[part], w1[part], t[part])
        b = torch.lerp(w0[part], w1[part], t[part] + epsilon)
        images = render(generator, generator.broadcast(torch.cat([a, b])), cost)
        if crop:
            images = face_crop(images)
        if images.shape[-1] > MAX_SIDE:
            images = downsample(images, MAX_SIDE)
        first, second = images.chunk(2)
        dist = lpips_net(first, second).reshape(-1).double() / (epsilon ** 2)
        out.append(dist.cpu().numpy())
    return np.concatenate(out)


def filtered_mean(values: np.ndarray) -> float:
    """Mean of the values between the 1st and 99th percentile (inclusive)."""
    low, high = np.percentile(values, 1, method="lower"), np.percentile(values, 99, method="higher")
    kept = values[(values >= low) & (values <= high)]
    return float(kept.mean())


def evaluate_ppl(bundle, lpips_net, n: int, costs: Sequence[Cost], seed: int = 0,
                 epsilon: float = EPSILON, sampling: str = "end", crop: bool = True,
                 batch_size: int = 8) -> dict:
    """PPL of each cost (the same pairs of codes for every cost)."""
    if n < 1:
        raise ValueError("PPL needs n >= 1")
    started = time.perf_counter()
    results = []
    for cost in costs:
        t0 = time.perf_counter()
        values = path_lengths(bundle, lpips_net, n, cost, seed, epsilon, sampling, crop, batch_size)
        results.append({**cost.as_dict(), "ppl": filtered_mean(values),
                        "median": float(np.median(values)),
                        "seconds": round(time.perf_counter() - t0, 3)})
    return {"metric": "ppl", "n": n, "seed": seed, "space": "w", "epsilon": epsilon,
            "sampling": sampling, "crop": crop, "distance": "lpips_vgg", "results": results,
            "seconds": round(time.perf_counter() - started, 3)}
