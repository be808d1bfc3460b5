"""What every metric shares: the error a metric raises, seeded latent samples, cost lists.
(W+ sampling and the box-filter ``downsample`` live in ``worker.anycost.sampling``.)

Tensor legend: N samples, L W+ slots (n_style), S style_dim, R resolution.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch

from shared.codes.errors import ErrorCode
from shared.recipe.parse import CHANNEL_RATIOS, Cost, allowed_resolutions
from worker.anycost.sampling import wplus_from_z


class EvaluationError(Exception):
    """A metric cannot run; ``code`` is a stable ``shared.codes.errors.ErrorCode`` value."""

    def __init__(self, code: ErrorCode | str, message: str):
        super().__init__(message)
        self.code = str(code)
        self.message = message


def all_costs(model_resolution: int) -> list[Cost]:
    """Every sub-network the service can render: each channel ratio at each resolution."""
    return [Cost(c, r) for c in CHANNEL_RATIOS for r in allowed_resolutions(model_resolution)]


def select_costs(model_resolution: int, channels: float | None = None,
                 resolution: int | None = None) -> list[Cost]:
    """``all_costs`` narrowed to one channel ratio and/or one resolution when given."""
    costs = [c for c in all_costs(model_resolution)
             if (channels is None or c.channels == channels)
             and (resolution is None or c.resolution == resolution)]
    if not costs:
        raise ValueError(
            f"no cost with channels={channels} resolution={resolution}: channels are one of "
            f"{', '.join(map(str, CHANNEL_RATIOS))}, resolutions one of "
            f"{', '.join(map(str, allowed_resolutions(model_resolution)))}")
    return costs


def full_cost(model_resolution: int) -> Cost:
    return Cost(1.0, model_resolution)


def sample_z(n: int, style_dim: int, seed: int) -> torch.Tensor:
    """``[N, S]`` standard normal codes, the same for a seed on any device (drawn on the CPU)."""
    gen = torch.Generator().manual_seed(int(seed))
    return torch.randn(int(n), style_dim, generator=gen)


@torch.no_grad()
def sample_wplus(generator, n: int, seed: int) -> torch.Tensor:
    """``[N, L, S]`` W+ codes of ``n`` random faces (no truncation), on the generator's device."""
    device = generator.input.input.device
    return wplus_from_z(generator, sample_z(n, generator.style_dim, seed).to(device))


def batches(n: int, size: int) -> Iterator[slice]:
    for start in range(0, n, max(1, size)):
        yield slice(start, min(n, start + size))


@torch.no_grad()
def render(generator, wplus: torch.Tensor, cost: Cost, noise_mode: str = "const",
           noise: torch.Generator | None = None) -> torch.Tensor:
    """``[N, L, S]`` -> ``[N, 3, R, R]`` float32 in [-1, 1] (clamped: what a user downloads).
    ``noise_mode`` "random" draws every sample's noise maps from ``noise``."""
    image = generator.synthesis(wplus, channels=cost.channels, resolution=cost.resolution,
                                noise_mode=noise_mode, generator=noise)
    return image.float().clamp(-1.0, 1.0)


def seeded(device: torch.device | str, seed: int) -> torch.Generator:
    """A torch generator on ``device`` seeded with ``seed`` (noise maps drawn where used)."""
    return torch.Generator(device=device).manual_seed(int(seed))


def describe(costs: Sequence[Cost]) -> list[dict]:
    return [c.as_dict() for c in costs]
