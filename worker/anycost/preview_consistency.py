"""Measure how well each preview cost agrees with the full render, and keep the figures beside
the generator (``consistency_<config>.json``, read torch-free by ``shared.catalog.preview_costs``).

For a fixed set of codes (the first ``n`` W of ``SEED``, no truncation) every allowed cost
(channel ratio x resolution) is rendered with the constant noise buffers and compared with the
full render box-filtered to its resolution: PSNR of the mean squared error (images clamped to
[-1, 1], compared in [0, 1]), and LPIPS (VGG) when its files are on disk
(``worker.anycost.perceptual``). The registry measures at every generator install; training
measures its output; ``python -m worker.anycost.weights consistency NAME`` measures again.
Tensor legend: N codes, L W+ slots, S style_dim, R resolution.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import torch
import torch.nn.functional as F

from shared.catalog.costs import CHANNEL_RATIOS
from shared.catalog.preview_costs import SIDECAR_VERSION, psnr_db, sidecar_path
from shared.recipe.parse import allowed_resolutions

from .generator import Generator

#: Codes per measurement: enough to rank costs several dB apart, quick for a 1024 px model.
DEFAULT_N = 8
SEED = 0
BATCH = 4


def _render(generator: Generator, wplus: torch.Tensor, channels: float, resolution: int) -> torch.Tensor:
    image = generator.synthesis(wplus, channels=channels, resolution=resolution, noise_mode="const")
    return image.float().clamp(-1.0, 1.0)


def _lpips_net(device: torch.device):
    from worker.anycost.perceptual import load_lpips, lpips_available

    backbone = os.environ.get("ANYCOST_LPIPS_VGG_PATH", "")
    return load_lpips("vgg", backbone, device) if lpips_available("vgg", backbone) else None


@torch.no_grad()
def measure(generator: Generator, n: int = DEFAULT_N, lpips=True) -> dict:
    """The sidecar's content for ``generator`` (without ``config``): one entry per cost.

    ``lpips``: True to use LPIPS(VGG) when its files are there, False never, or a ready net.
    """
    if n < 1:
        raise ValueError("consistency needs n >= 1")
    device = generator.input.input.device
    net = _lpips_net(device) if lpips is True else (lpips or None)
    z = torch.randn(n, generator.style_dim, generator=torch.Generator().manual_seed(SEED))
    wplus = generator.broadcast(generator.mapping(z.to(device)))  # [N, L, S]
    costs = [(c, r) for c in CHANNEL_RATIOS for r in allowed_resolutions(generator.resolution)]
    sums = {cost: [0.0, 0.0] for cost in costs}  # squared error, LPIPS
    for start in range(0, n, BATCH):
        part = wplus[start:start + BATCH]
        full = _render(generator, part, 1.0, generator.resolution)
        for channels, resolution in costs:
            full_cost = (channels, resolution) == (1.0, generator.resolution)
            preview = full if full_cost else _render(generator, part, channels, resolution)
            target = full if resolution == full.shape[-1] else F.adaptive_avg_pool2d(full, resolution)
            # [-1, 1] -> [0, 1]: a squared error in [-1, 1] units is 4x the [0, 1] one
            sums[channels, resolution][0] += float(((preview - target) ** 2).mean(dim=(1, 2, 3))
                                                   .double().sum()) / 4.0
            if net is not None and not full_cost:  # the final itself: LPIPS 0
                sums[channels, resolution][1] += float(net(preview, target).double().sum())
    return {
        "version": SIDECAR_VERSION, "resolution": generator.resolution, "n": n, "seed": SEED,
        "compare": "full render box-filtered to the preview resolution",
        "lpips": "vgg" if net is not None else None,
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "costs": [{"channels": c, "resolution": r, "psnr": round(psnr_db(se / n), 3),
                   "lpips": None if net is None else round(lp / n, 5)}
                  for (c, r), (se, lp) in sums.items()],
    }


def write_consistency(generator: Generator, config: str, directory: str | Path,
                      n: int = DEFAULT_N, lpips=True) -> Path:
    """Measure ``generator`` and write ``consistency_<config>.json`` in ``directory`` (atomic)."""
    data = {"config": config, **measure(generator, n, lpips)}
    target = sidecar_path(directory, config)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.part")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    os.replace(tmp, target)
    return target
