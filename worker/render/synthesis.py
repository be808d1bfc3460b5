"""Latent codes for new images: seeds -> z -> w (truncated, optionally style-mixed) -> W+.

A seed means what it means in NVIDIA's tools: ``z = numpy.random.RandomState(seed).randn(1, S)``
(float64 draws, then float32), so a seed gives the same face as NVIDIA's published grids for
imported weights. Truncation pulls w towards the model's w_avg: ``w_avg + psi * (w - w_avg)``.
Style mixing takes the W+ slots from ``from_slot`` on from a second seed's (truncated) w.
The W+ code is exact: a synthesised item needs no encoder and has no projection error.
Tensor legend: L n_style, S style_dim.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from worker.anycost.generator import Generator

MAX_SEED = 2**32 - 1  # numpy's RandomState accepts seeds in [0, 2**32)


@dataclass(frozen=True)
class SynthesisSpec:
    """What one synthesised item is made of (all JSON-friendly, stored with the item)."""

    seed: int
    truncation: float = 0.7
    mix_seed: int | None = None
    mix_from_slot: int | None = None


def z_for_seed(seed: int, style_dim: int = 512) -> torch.Tensor:
    """NVIDIA's z for a seed: [1, S] float32."""
    if not 0 <= int(seed) <= MAX_SEED:
        raise ValueError(f"seed must be in 0..{MAX_SEED}, got {seed}")
    return torch.from_numpy(np.random.RandomState(int(seed)).randn(1, style_dim)).to(torch.float32)


@torch.no_grad()
def wplus_for(generator: Generator, spec: SynthesisSpec, w_avg: torch.Tensor) -> torch.Tensor:
    """The W+ code [1, L, S] of a spec, on the generator's device."""
    device = generator.input.input.device
    target = w_avg.reshape(1, -1).to(device)

    def w_of(seed: int) -> torch.Tensor:
        w = generator.mapping(z_for_seed(seed, generator.style_dim).to(device))
        return generator.truncate(w, float(spec.truncation), target)

    w = w_of(spec.seed)
    if spec.mix_seed is None:
        return generator.broadcast(w).clone()
    start = generator.n_style if spec.mix_from_slot is None else int(spec.mix_from_slot)
    if not 0 <= start <= generator.n_style:
        raise ValueError(f"mix from_slot must be in 0..{generator.n_style}, got {start}")
    return generator.mix(w, w_of(spec.mix_seed), start)
