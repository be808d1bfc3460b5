"""Measures of a rendered result: the discriminator's realism logit, and how consistent a final
is with the item's last preview (PSNR always, LPIPS when its weights are on disk).

Realism: the discriminator sees what the user sees (the render clamped to [-1, 1]) at its own
input size (the render is resized when the cost's resolution differs), one image at a time, so
a face's score never depends on the other faces in the forward pass (minibatch stddev). The
0..1 score is ``sigmoid(logit)`` (``shared.items.quality``). Tensor legend: N images, R resolution.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from shared.catalog.preview_costs import IDENTICAL_PSNR, psnr_db
from worker.anycost.discriminator import Discriminator
from worker.anycost.layers import ResBlock
from worker.render import inversion

#: PSNR of two identical images (dB): a finite stand-in for infinity, JSON has no inf.
PSNR_IDENTICAL = IDENTICAL_PSNR
#: LPIPS(alex) needs a few pixels per feature map; smaller images are upsampled to this.
LPIPS_MIN_SIDE = 64


def discriminator_resolution(discriminator: torch.nn.Module) -> int:
    """The input width of ``discriminator``: its ``resolution`` attribute, else counted from its
    blocks (a 1x1 input conv, then one ResBlock per halving down to 4 px)."""
    resolution = getattr(discriminator, "resolution", None)
    if resolution:
        return int(resolution)
    blocks = sum(1 for m in discriminator.modules() if isinstance(m, ResBlock))
    return 4 * 2 ** blocks


def resize(images: torch.Tensor, size: int) -> torch.Tensor:
    """``[N, 3, R, R]`` -> ``[N, 3, size, size]``: area-average down, bilinear up."""
    if images.shape[-1] == size:
        return images
    if images.shape[-1] > size:
        return F.interpolate(images, size=(size, size), mode="area")
    return F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)


@torch.no_grad()
def realism_logits(discriminator: torch.nn.Module, images: torch.Tensor) -> list[float]:
    """The discriminator's logit for each of ``images`` ``[N, 3, R, R]`` (about [-1, 1])."""
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"expected [N, 3, R, R] images, got {tuple(images.shape)}")
    param = next(discriminator.parameters())
    x = resize(images.detach().float().clamp(-1.0, 1.0), discriminator_resolution(discriminator))
    x = x.to(device=param.device)
    if type(discriminator) is Discriminator:
        # The convolutions (nearly all the cost) in one batched pass; the head, whose minibatch
        # stddev would mix the images, once per image: the same numbers as one call per image.
        features = discriminator.convs(x)
        heads = [discriminator._head(features[i:i + 1]) for i in range(x.shape[0])]  # noqa: SLF001
    else:
        heads = [discriminator(x[i:i + 1]) for i in range(x.shape[0])]
    return [float(h.float().reshape(-1)[0]) for h in heads]


def item_logit(logits: list[float]) -> float | None:
    """One logit for an item from its faces' logits (the mean of the finite ones); None when
    there is none (a render gone NaN has no score rather than a made-up one)."""
    finite = [v for v in logits if math.isfinite(v)]
    return sum(finite) / len(finite) if finite else None


def finite(value: float, digits: int = 6) -> float | None:
    """``value`` rounded, or None when it is NaN or infinite (JSON and SQL take no NaN)."""
    value = float(value)
    return round(value, digits) if math.isfinite(value) else None


def _quantise(images: torch.Tensor) -> torch.Tensor:
    """What the stored 8-bit image holds, in [0, 255] floats."""
    return ((images.detach().float().clamp(-1.0, 1.0) + 1.0) * 127.5).round()


def psnr(a: torch.Tensor, b: torch.Tensor) -> float | None:
    """PSNR (dB) of two same-sized image batches in about [-1, 1], as 8-bit images; None when
    either holds NaN."""
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {tuple(a.shape)} vs {tuple(b.shape)}")
    mse = float(F.mse_loss(_quantise(a), _quantise(b)))
    if not math.isfinite(mse):
        return None
    return round(psnr_db(mse, peak=255.0, cap=PSNR_IDENTICAL), 4)


@torch.no_grad()
def lpips_distance(a: torch.Tensor, b: torch.Tensor) -> float | None:
    """LPIPS(alex) of two same-sized batches; None when the lpips weights are not installed."""
    model = inversion.lpips_model()
    if model is None:
        return None
    side = max(LPIPS_MIN_SIDE, a.shape[-1])
    model.to(a.device)
    value = model(resize(a.float().clamp(-1, 1), side), resize(b.float().clamp(-1, 1), side))
    return finite(float(value.mean()), 5)


def consistency(final: torch.Tensor, preview: torch.Tensor) -> dict:
    """How close a final ``[F, 3, Rf, Rf]`` is to its item's preview ``[F, 3, Rp, Rp]`` (the same
    faces, same edits): compared at the preview's resolution, the final area-downsampled."""
    size = int(preview.shape[-1])
    final = resize(final.float(), size)
    preview = preview.float().to(final.device)
    return {"psnr": psnr(final, preview), "lpips": lpips_distance(final, preview),
            "resolution": size}
