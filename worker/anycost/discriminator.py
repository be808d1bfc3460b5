"""Anycost discriminators (keys of the training code; no discriminator weights were released).

``Discriminator``: the StyleGAN2 discriminator. ``DiscriminatorMultiRes``: Anycost's variant that
scores images of several resolutions (one 1x1 input conv per resolution) and, with
``modulate=True``, conditions its last blocks on the generator architecture (``g_arch``).
Output: [N, 1] realism scores. Tensor legend: N batch, C channels, R resolution.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import nn

from shared.catalog.costs import BASE_CHANNELS, check_resolution

from .layers import ConvLayer, EqualLinear, ResBlock


def _widths(channel_multiplier: float, channel_max: int) -> dict[int, int]:
    return {r: min(channel_max, int(b * channel_multiplier)) for r, b in BASE_CHANNELS.items()}


def minibatch_stddev(x: torch.Tensor, group_size: int = 4, n_feat: int = 1) -> torch.Tensor:
    """Append the per-group standard deviation as extra feature map(s): [N, C, H, W] -> [N, C+1, H, W]."""
    n, c, h, w = x.shape
    group = min(n, group_size) if group_size else n
    if n % group:
        raise ValueError(f"batch size {n} must be divisible by the stddev group size {group}")
    y = x.view(group, -1, n_feat, c // n_feat, h, w)
    y = torch.sqrt(y.var(0, unbiased=False) + 1e-8)
    y = y.mean([2, 3, 4], keepdim=True).squeeze(2)  # [N/group, n_feat, 1, 1]
    y = y.repeat(group, 1, h, w)
    return torch.cat([x, y], 1)


class _Head(nn.Module):
    """Shared tail: minibatch stddev, 3x3 conv, two linears -> [N, 1]."""

    def _init_head(self, in_channel: int, widths: dict[int, int], conv_clamp: float | None = None,
                   mbstd_group_size: int = 4) -> None:
        self.mbstd_group_size = mbstd_group_size
        self.final_conv = ConvLayer(in_channel + 1, widths[4], 3, conv_clamp=conv_clamp)
        self.final_linear = nn.Sequential(
            EqualLinear(widths[4] * 4 * 4, widths[4], activation="lrelu"),
            EqualLinear(widths[4], 1),
        )

    def _head(self, x: torch.Tensor) -> torch.Tensor:
        x = self.final_conv(minibatch_stddev(x, self.mbstd_group_size))
        return self.final_linear(x.reshape(x.shape[0], -1))


class Discriminator(_Head):
    """StyleGAN2 residual discriminator for ``resolution`` px images."""

    def __init__(self, resolution: int, channel_multiplier: float = 2, channel_max: int = 512,
                 blur_kernel: tuple[int, ...] = (1, 3, 3, 1), conv_clamp: float | None = None,
                 mbstd_group_size: int = 4):
        """resolution: input width. channel_multiplier, channel_max: widths as in the generator.
        conv_clamp: clamp every conv's output to +-conv_clamp (NVIDIA's ADA networks: 256).
        mbstd_group_size: samples per minibatch-stddev group (0: the whole batch)."""
        super().__init__()
        log_res = check_resolution(resolution)
        self.resolution = resolution
        self.channel_multiplier = channel_multiplier
        self.channel_max = channel_max
        self.conv_clamp = conv_clamp
        widths = _widths(channel_multiplier, channel_max)
        convs: list[nn.Module] = [ConvLayer(3, widths[resolution], 1, conv_clamp=conv_clamp)]
        in_channel = widths[resolution]
        for i in range(log_res, 2, -1):
            out_channel = widths[2 ** (i - 1)]
            convs.append(ResBlock(in_channel, out_channel, blur_kernel, conv_clamp=conv_clamp))
            in_channel = out_channel
        self.convs = nn.Sequential(*convs)
        self._init_head(in_channel, widths, conv_clamp, mbstd_group_size)

    @staticmethod
    def config_from_state_dict(sd: Mapping[str, torch.Tensor]) -> dict:
        """Constructor kwargs (resolution, channel_multiplier, channel_max) from key shapes."""
        n_blocks = sum(1 for k in sd if k.startswith("convs.") and k.endswith(".conv1.0.weight"))
        resolution = 2 ** (2 + n_blocks)
        widths = {resolution: sd["convs.0.0.weight"].shape[0]}
        for i in range(1, n_blocks + 1):
            widths[resolution >> i] = sd[f"convs.{i}.conv2.1.weight"].shape[0]
        channel_max = max(widths.values())
        for mult in (2, 1, 0.5, 4, 0.25, widths[resolution] / BASE_CHANNELS[resolution]):
            full = _widths(mult, channel_max)
            if all(full[r] == w for r, w in widths.items()):
                return {"resolution": resolution, "channel_multiplier": mult, "channel_max": channel_max}
        raise ValueError(f"channel widths {widths} fit no channel_multiplier")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [N, 3, R, R] -> [N, 1]."""
        if x.ndim != 4 or x.shape[1] != 3 or x.shape[-1] != self.resolution or x.shape[-2] != self.resolution:
            raise ValueError(f"expected [N, 3, {self.resolution}, {self.resolution}], got {tuple(x.shape)}")
        return self._head(self.convs(x))


class DiscriminatorMultiRes(_Head):
    """Anycost's multi-resolution discriminator (optionally modulated by the sub-network config)."""

    def __init__(self, resolution: int, channel_multiplier: float = 2, n_res: int = 4,
                 modulate: bool = True, channel_max: int = 512,
                 blur_kernel: tuple[int, ...] = (1, 3, 3, 1)):
        """n_res: input resolutions accepted (R, R/2, ...). modulate: condition the last two
        blocks on ``g_arch`` (a vector of 4 * n_style values describing the sub-network)."""
        super().__init__()
        log_res = check_resolution(resolution)
        widths = _widths(channel_multiplier, channel_max)
        self.resolution = resolution
        self.g_arch_len = 4 * (log_res * 2 - 2)
        self.convs = nn.ModuleList(
            [ConvLayer(3, widths[resolution // 2**i], 1) for i in range(n_res)]
        )
        self.blocks = nn.ModuleList()
        in_channel = widths[resolution]
        n_blocks = log_res - 2
        for j, i in enumerate(range(log_res, 2, -1)):
            out_channel = widths[2 ** (i - 1)]
            self.blocks.append(ResBlock(
                in_channel, out_channel, blur_kernel,
                modulate=modulate and j >= n_blocks - 2, g_arch_len=self.g_arch_len,
            ))
            in_channel = out_channel
        self._init_head(in_channel, widths)

    def forward(self, x: torch.Tensor, g_arch: torch.Tensor | None = None) -> torch.Tensor:
        """x: [N, 3, r, r] with r one of R, R/2, ...; g_arch: [g_arch_len] if modulated -> [N, 1]."""
        idx = int(round(math.log2(self.resolution / x.shape[-1])))
        if not 0 <= idx < len(self.convs) or x.shape[-1] * 2**idx != self.resolution:
            raise ValueError(f"input width {x.shape[-1]} is not one this discriminator accepts")
        out = self.convs[idx](x)
        for block in self.blocks[idx:]:
            out = block(out, g_arch)
        return self._head(out)
