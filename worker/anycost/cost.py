"""Torch-side entry to the cost model: MACs of a generator instance's sub-networks.

The arithmetic lives in ``shared.catalog.costs`` (pure Python, also used by the web portal).
"""

from __future__ import annotations

from shared.catalog.costs import (
    BASE_CHANNELS,
    CHANNEL_RATIOS,
    ChannelSpec,
    channel_counts,
    full_channels,
    generator_macs,
    mapping_macs,
)

from .generator import Generator

__all__ = [
    "BASE_CHANNELS",
    "CHANNEL_RATIOS",
    "ChannelSpec",
    "channel_counts",
    "full_channels",
    "generator_macs",
    "mapping_macs",
    "model_macs",
]


def model_macs(g: Generator, channels: ChannelSpec = None, resolution: int | None = None) -> int:
    """MACs of one render from z with ``g`` at this cost (channels, output resolution)."""
    return g.macs(channels, resolution)
