"""How well a preview predicts its final: the distance between each sub-network's render and the
full-cost render of the same W+ code, over N random codes.

As in the Anycost paper's consistency loss, the full render is downsampled (box filter) to the
preview's resolution and compared there, so a preview is judged on what it can show. Measures:
MSE and PSNR (images in [0, 1], clamped) always; LPIPS (VGG, else AlexNet) when its files are on
disk. At full cost the two renders are the same computation, so every distance is exactly 0.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import torch

from shared.catalog.preview_costs import psnr_db
from shared.recipe.parse import Cost
from worker.anycost.sampling import downsample
from worker.evaluate.common import batches, full_cost, render, sample_wplus


@torch.no_grad()
def evaluate_consistency(bundle, n: int, costs: Sequence[Cost], seed: int = 0, lpips_net=None,
                         lpips_name: str | None = None, batch_size: int = 8) -> dict:
    """Per cost: mean MSE, PSNR of that mean, mean LPIPS (None without LPIPS files)."""
    if n < 1:
        raise ValueError("consistency needs n >= 1")
    started = time.perf_counter()
    generator = bundle.generator
    full = full_cost(bundle.resolution)
    wplus = sample_wplus(generator, n, seed)
    sums = {c: {"mse": 0.0, "lpips": 0.0, "seconds": 0.0} for c in costs}
    for part in batches(n, batch_size):
        finals = render(generator, wplus[part], full)
        for cost in costs:
            t0 = time.perf_counter()
            preview = render(generator, wplus[part], cost)
            target = downsample(finals, cost.resolution)
            # [-1, 1] -> [0, 1]: a squared error in [-1, 1] units is 4x the [0, 1] one.
            per_image = ((preview - target) ** 2).mean(dim=(1, 2, 3)) / 4.0
            sums[cost]["mse"] += float(per_image.double().sum())
            if lpips_net is not None:
                sums[cost]["lpips"] += float(lpips_net(preview, target).double().sum())
            sums[cost]["seconds"] += time.perf_counter() - t0
    results = []
    for cost in costs:
        mse = sums[cost]["mse"] / n
        value = psnr_db(mse, cap=None)  # identical images: infinite, reported as None
        results.append({
            **cost.as_dict(), "mse": mse, "psnr": None if math.isinf(value) else round(value, 4),
            "lpips": None if lpips_net is None else sums[cost]["lpips"] / n,
            "seconds": round(sums[cost]["seconds"], 3),
        })
    return {"metric": "consistency", "n": n, "seed": seed, "compare": "final downsampled to the "
            "preview resolution (box filter)", "distance": lpips_name or "mse/psnr only",
            "results": results, "seconds": round(time.perf_counter() - started, 3)}
