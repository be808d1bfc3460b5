"""What the encoder trainer is judged by, and the BatchNorm statistics it is used with.

- ``encoder_losses``: W+ MSE plus the image terms (MSE, LPIPS when usable) between the
  generator's renders of the predicted and of the true codes, averaged over the costs. The
  training step and the held-out measurement use the same function.
- ``heldout_losses``: those losses, in eval mode, on ``n`` generator samples fixed by
  ``HELDOUT_SEED`` (not by the run's seed, so runs compare on one set): one w per sample (no
  style mixing: the codes faces have), the encoder's input rendered with noise maps drawn for
  this set (noise no training step drew), the image targets with the fixed noise, as the
  service renders.
- ``calibrate_batchnorm``: in train mode BatchNorm normalises with each batch's statistics; in
  eval mode (every use after training, and the held-out measurement) with its running averages,
  which lag the weights (momentum 0.1; at the start still mean 0, variance 1, far from a random
  ResNet's activations). Before each measurement and checkpoint the running statistics are
  replaced by their exact average over ``n`` fresh samples (``CALIBRATION_SEED``) under the
  current weights, so eval mode sees what training saw. They then depend on the weights alone,
  which keeps a resumed run exact.

Samples are drawn on the CPU from their own generators (the same on every device and rank, the
global RNG untouched) and rendered in chunks: a 1024 px model's noise maps for 64 samples
would not fit in memory at once. Tensor legend: N samples, L n_style, S style_dim.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch.optim.swa_utils import update_bn

from worker.train import losses

HELDOUT_SEED = 20_240_523
CALIBRATION_SEED = 20_240_524
CHUNK = 16


def encoder_losses(g, pred: torch.Tensor, wplus: torch.Tensor, targets: list[torch.Tensor],
                   costs: list[tuple[float, int]], use_lpips: bool = True) -> dict[str, torch.Tensor]:
    """{'w': MSE(pred, W+), 'mse': ..., 'lpips'?: ...}: the image terms averaged over ``costs``
    (the renders of ``pred`` against ``targets``, the renders of the true codes)."""
    out: dict[str, torch.Tensor] = {"w": F.mse_loss(pred, wplus)}
    for (c, r), target in zip(costs, targets, strict=True):
        render = g.synthesis(pred, c, r, "const", "ref")
        for name, v in losses.image_distance(render, target, use_lpips).items():
            out[name] = out.get(name, 0.0) + v / len(costs)
    return out


def sample_chunks(g, n: int, seed: int, device: torch.device,
                  chunk: int = CHUNK) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """``n`` samples fixed by ``seed`` in chunks: (W+ ``[n', L, S]``, the full render with
    per-sample noise maps drawn for them ``[n', 3, R, R]``)."""
    z = torch.randn(n, g.style_dim, generator=torch.Generator().manual_seed(seed))
    sizes = [buf.shape[-2:] for buf in g.noises.buffers()]
    for index, start in enumerate(range(0, n, chunk)):
        part = z[start:start + chunk]
        maps = torch.Generator().manual_seed(seed * 4096 + index + 1)
        noises = [torch.randn(len(part), 1, *s, generator=maps).to(device) for s in sizes]
        with torch.no_grad():
            wplus = g.broadcast(g.mapping(part.to(device)))
            yield wplus, g.synthesis(wplus, None, None, impl="ref", noises=noises)


def calibrate_batchnorm(enc: torch.nn.Module, g, n: int, device: torch.device,
                        seed: int = CALIBRATION_SEED) -> None:
    """Replace every BatchNorm's running statistics by their average over ``n`` samples
    (``n`` = 0: keep what training accumulated). The module's mode is left as it was."""
    if n > 0:
        images = (image for _, image in sample_chunks(g, n, seed, device))
        with torch.no_grad():
            update_bn(images, enc)


def heldout_losses(enc: torch.nn.Module, g, n: int, costs: list[tuple[float, int]],
                   device: torch.device, use_lpips: bool = True,
                   seed: int = HELDOUT_SEED) -> dict[str, float]:
    """The mean losses of ``enc`` (in eval mode) on the ``n`` held-out samples."""
    was_training = enc.training
    enc.eval()
    totals: dict[str, float] = {}
    try:
        with torch.no_grad():
            for wplus, image in sample_chunks(g, n, seed, device):
                targets = [g.synthesis(wplus, c, r, "const", "ref") for c, r in costs]
                found = encoder_losses(g, enc(image), wplus, targets, costs, use_lpips)
                for name, value in found.items():
                    totals[name] = totals.get(name, 0.0) + float(value) * len(wplus)
    finally:
        enc.train(was_training)
    return {name: total / n for name, total in totals.items()}
