"""Random W+ codes and smaller images, as every user of the generator draws and shrinks them.

- ``mixing_index``: the style-mixing choice of one batch (StyleGAN2's rule, a whole batch at a
  time: with probability ``prob`` a crossover slot in 1..L-1, else no mixing).
- ``wplus_from_z``: z (one code, or two for mixing) -> W+ through the mapping network, slots
  [0, inject) from the first code's w and the rest from the second's.
- ``downsample``: the box filter (an exact average over 2^k x 2^k blocks for powers of two)
  that evaluation and training use to compare a full render with a smaller one.

Gradients flow through ``wplus_from_z`` (training the mapping network needs them); callers that
only sample wrap it in ``torch.no_grad()``. Tensor legend: N batch, L n_style, S style_dim.
"""

from __future__ import annotations

import random

import torch
import torch.nn.functional as F


def mixing_index(rng: random.Random, n_style: int, prob: float) -> int | None:
    """A batch's crossover slot (1..L-1) with probability ``prob``, else None (no mixing).
    Draws ``rng.random()`` first, then the slot only when mixing."""
    if rng.random() < prob:
        return rng.randrange(1, n_style)
    return None


def wplus_from_z(generator, z: torch.Tensor, inject_index: int | None = None) -> torch.Tensor:
    """``z`` ``[N, S]`` or ``[2, N, S]`` -> W+ ``[N, L, S]``. With two codes and an
    ``inject_index``, slots [0, inject_index) come from ``z[0]`` and the rest from ``z[1]``;
    otherwise every slot holds the w of ``z[0]`` (the second code is not mapped)."""
    if z.ndim == 2:
        z = z.unsqueeze(0)
    if z.ndim != 3 or z.shape[-1] != generator.style_dim:
        raise ValueError(f"z must be [N, {generator.style_dim}] or [2, N, "
                         f"{generator.style_dim}], got {tuple(z.shape)}")
    if inject_index is None:
        return generator.broadcast(generator.mapping(z[0]))
    if z.shape[0] < 2:
        raise ValueError("style mixing needs two codes per sample (z of shape [2, N, S])")
    w = generator.mapping(z[:2])  # one mapping call for both codes
    return generator.mix(w[0], w[1], inject_index)


def downsample(images: torch.Tensor, resolution: int) -> torch.Tensor:
    """Box-filter ``[N, C, R, R]`` to ``resolution`` (identity at the same size)."""
    if images.shape[-1] == resolution:
        return images
    return F.adaptive_avg_pool2d(images, resolution)
