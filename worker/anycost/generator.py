"""The Anycost generator: mapping network (z -> w) and synthesis network (W+ -> image).

One model, many costs: ``synthesis`` takes the sub-network per call (a uniform channel ratio or
a per-layer list, and an output resolution), so previews and finals share one set of weights and
nothing is stored on the model between calls. State-dict keys follow the released checkpoints
(``generator_<config>.pt``'s ``g_ema``), so ``load_state_dict(strict=True)`` loads them.
Tensor legend: N batch, S style_dim, L n_style (W+ slots), R output resolution.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Literal

import torch
from torch import nn

from shared import costmodel

from .layers import ConstantInput, EqualLinear, PixelNorm, StyledConv, ToRGB
from .ops import Impl

NoiseMode = Literal["const", "random", "none"]
NOISE_MODES: tuple[str, ...] = ("const", "random", "none")
#: The fast path switches activations to channels_last at this output resolution.
CHANNELS_LAST_FROM = 32


class Generator(nn.Module):
    """StyleGAN2 generator with Anycost's dynamic channels and resolutions."""

    def __init__(
        self,
        resolution: int,
        style_dim: int = 512,
        n_mlp: int = 8,
        channel_multiplier: float = 2,
        channel_max: int = 512,
        lr_mlp: float = 0.01,
        blur_kernel: tuple[int, ...] = (1, 3, 3, 1),
        conv_clamp: float | None = None,
    ):
        """
        resolution: output width of the full model (power of two, 8..1024).
        style_dim: width of z and w.
        n_mlp: EqualLinear layers of the mapping network.
        channel_multiplier, channel_max: full widths = min(channel_max, base[r] * multiplier).
        lr_mlp: equalized-lr multiplier of the mapping network (part of the weights' scale).
        blur_kernel: 1-D taps of the up-sampling low-pass filter.
        conv_clamp: clamp every conv's activations and every ToRGB output to +-conv_clamp
            (NVIDIA's ADA networks are trained with 256; None: no clamping, as in Anycost).
        """
        super().__init__()
        self.log_res = costmodel.check_resolution(resolution)
        if resolution < 8:
            raise ValueError("resolution must be at least 8")
        self.resolution = resolution
        self.style_dim = style_dim
        self.channel_multiplier = channel_multiplier
        self.channel_max = channel_max
        self.conv_clamp = conv_clamp
        self.lr_mlp = lr_mlp
        self.n_style = 2 * self.log_res - 2
        self.num_layers = 2 * (self.log_res - 2) + 1  # styled convs (= noise inputs)

        self.style = nn.Sequential(
            PixelNorm(),
            *[EqualLinear(style_dim, style_dim, lr_mul=lr_mlp, activation="lrelu") for _ in range(n_mlp)],
        )
        widths = costmodel.full_channels(resolution, channel_multiplier, channel_max)[::2]
        self.input = ConstantInput(widths[0])
        clamp = {"conv_clamp": conv_clamp}
        self.conv1 = StyledConv(widths[0], widths[0], 3, style_dim, blur_kernel=blur_kernel, **clamp)
        self.to_rgb1 = ToRGB(widths[0], style_dim, upsample=False, **clamp)
        self.convs = nn.ModuleList()
        self.to_rgbs = nn.ModuleList()
        for c_in, c_out in zip(widths[:-1], widths[1:], strict=True):
            self.convs.append(StyledConv(c_in, c_out, 3, style_dim, upsample=True,
                                         blur_kernel=blur_kernel, **clamp))
            self.convs.append(StyledConv(c_out, c_out, 3, style_dim, blur_kernel=blur_kernel, **clamp))
            self.to_rgbs.append(ToRGB(c_out, style_dim, blur_kernel=blur_kernel, **clamp))
        self.noises = nn.Module()
        for i in range(self.num_layers):
            size = 2 ** ((i + 5) // 2)
            self.noises.register_buffer(f"noise_{i}", torch.randn(1, 1, size, size))

    # ----- config -------------------------------------------------------------------------------
    def channel_config(self, ratio_or_list: costmodel.ChannelSpec = None) -> list[int]:
        """Per-layer output channels (input, conv1, then two per level) for a ratio or a list."""
        return costmodel.channel_counts(
            self.resolution, ratio_or_list, self.channel_multiplier, self.channel_max
        )

    def macs(self, channels: costmodel.ChannelSpec = None, resolution: int | None = None) -> int:
        """Multiply-accumulates of one render from z at this cost (see ``shared.costmodel``)."""
        return costmodel.generator_macs(
            self.resolution, channels, resolution, self.channel_multiplier, self.channel_max,
            self.style_dim, len(self.style) - 1,
        )

    @staticmethod
    def config_from_state_dict(sd: Mapping[str, torch.Tensor]) -> dict:
        """Constructor kwargs (resolution, style_dim, n_mlp, channel_multiplier, channel_max).

        Widths that a cap hides make the multiplier ambiguous; any value that reproduces every
        layer's width (and so the same ratio semantics) is returned, preferring the usual ones.
        """
        try:
            style_dim = sd["style.1.weight"].shape[1]
            channel_max = sd["input.input"].shape[1]
        except KeyError as e:
            raise ValueError(f"not an Anycost generator state_dict (missing {e})") from None
        n_mlp = sum(1 for k in sd if k.startswith("style.") and k.endswith(".weight"))
        n_rgbs = sum(1 for k in sd if k.startswith("to_rgbs.") and k.endswith(".conv.weight"))
        resolution = 2 ** (2 + n_rgbs)
        widths = [channel_max] + [sd[f"to_rgbs.{i}.conv.weight"].shape[2] for i in range(n_rgbs)]
        base = costmodel.BASE_CHANNELS
        candidates = [2, 1, 0.5, 4, 0.25, widths[-1] / base[resolution]]
        for mult in candidates:
            full = costmodel.full_channels(resolution, mult, channel_max)[::2]
            if full == widths:
                return {"resolution": resolution, "style_dim": style_dim, "n_mlp": n_mlp,
                        "channel_multiplier": mult, "channel_max": channel_max}
        raise ValueError(f"channel widths {widths} fit no channel_multiplier")

    # ----- latents ------------------------------------------------------------------------------
    def mapping(self, z: torch.Tensor) -> torch.Tensor:
        """z: [..., S] -> w: [..., S] (PixelNorm, then the MLP)."""
        shape = z.shape
        return self.style(z.reshape(-1, shape[-1])).view(shape)

    @torch.no_grad()
    def mean_latent(self, n: int = 4096, generator: torch.Generator | None = None) -> torch.Tensor:
        """Average w of ``n`` random z: [1, S] (the usual truncation target)."""
        device = self.input.input.device
        z = torch.randn(n, self.style_dim, generator=generator, device=device)
        return self.mapping(z).mean(0, keepdim=True)

    @staticmethod
    def truncate(w: torch.Tensor, truncation: float, target_w: torch.Tensor) -> torch.Tensor:
        """Pull w towards ``target_w`` ([1, S] or [S]): ``target + truncation * (w - target)``."""
        target = target_w.reshape(*([1] * (w.ndim - 1)), -1)
        return (1 - truncation) * target + truncation * w

    def broadcast(self, w: torch.Tensor) -> torch.Tensor:
        """w: [N, S] or [N, 1, S] -> W+: [N, L, S] (the same style in every slot)."""
        w = w.reshape(w.shape[0], 1, -1) if w.ndim == 2 else w
        if w.shape[1] != 1:
            raise ValueError(f"expected one style per sample, got shape {tuple(w.shape)}")
        return w.expand(-1, self.n_style, -1)

    def mix(self, w1: torch.Tensor, w2: torch.Tensor, inject_index: int) -> torch.Tensor:
        """Style mixing: slots [0, inject_index) from ``w1``, the rest from ``w2`` -> [N, L, S]."""
        if not 0 <= inject_index <= self.n_style:
            raise ValueError(f"inject_index must be in 0..{self.n_style}, got {inject_index}")
        a, b = self.broadcast(w1), self.broadcast(w2)
        return torch.cat([a[:, :inject_index], b[:, inject_index:]], dim=1)

    # ----- synthesis ----------------------------------------------------------------------------
    def synthesis(
        self,
        wplus: torch.Tensor,
        channels: costmodel.ChannelSpec = None,
        resolution: int | None = None,
        noise_mode: NoiseMode = "const",
        impl: Impl = "fast",
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Render W+ codes with a sub-network.

        wplus: [N, L, S]. channels: None (full), a uniform ratio (0.25/0.5/0.75/1.0) or a
        per-layer list (``channel_config``). resolution: output width (None = the model's).
        noise_mode: "const" (the model's fixed noise buffers), "random" (fresh noise, from
        ``generator`` if given) or "none". impl: "fast" (default) or "ref" (upstream's formulation).
        Returns [N, 3, R, R], unclamped (about [-1, 1]).
        """
        *_, image = self._synthesize(wplus, channels, resolution, noise_mode, impl, generator)
        return image.contiguous()

    def synthesis_rgbs(
        self,
        wplus: torch.Tensor,
        channels: costmodel.ChannelSpec = None,
        resolution: int | None = None,
        noise_mode: NoiseMode = "const",
        impl: Impl = "fast",
        generator: torch.Generator | None = None,
    ) -> list[torch.Tensor]:
        """Like ``synthesis`` but returns the accumulated RGB after every level: [4 px, 8 px, ... R]."""
        return [x.contiguous() for x in self._synthesize(wplus, channels, resolution, noise_mode, impl, generator)]

    def _synthesize(
        self, wplus: torch.Tensor, channels: costmodel.ChannelSpec, resolution: int | None,
        noise_mode: str, impl: Impl, generator: torch.Generator | None,
    ) -> Iterator[torch.Tensor]:
        target = self.resolution if resolution is None else int(resolution)
        if target not in costmodel.levels(self.resolution):
            raise ValueError(f"resolution must be a power of two from 4 to {self.resolution}, got {resolution!r}")
        if wplus.ndim != 3 or wplus.shape[1] != self.n_style or wplus.shape[2] != self.style_dim:
            raise ValueError(
                f"wplus must be [N, {self.n_style}, {self.style_dim}], got {tuple(wplus.shape)}"
            )
        ch = self.channel_config(channels)
        noise = self._noises(noise_mode, wplus, generator)

        out = self.input(wplus.shape[0], ch[0])  # [N, ch0, 4, 4]
        out = self.conv1(out, wplus[:, 0], noise[0], ch[1], impl=impl)
        skip = self.to_rgb1(out, wplus[:, 1], impl=impl)  # [N, 3, 4, 4]
        yield skip
        if target == 4:
            return
        for level in range(len(self.to_rgbs)):
            i = 2 * level + 1  # W+ slot / noise index of this level's first conv
            conv_up, conv, to_rgb = self.convs[2 * level], self.convs[2 * level + 1], self.to_rgbs[level]
            if impl == "fast" and out.shape[-1] * 2 == CHANNELS_LAST_FROM:
                # From here on channels_last: PyTorch's CPU depthwise blur is many times faster
                # in it; below this size the weights dominate and NCHW avoids weight reorders.
                out = out.contiguous(memory_format=torch.channels_last)
                skip = skip.contiguous(memory_format=torch.channels_last)
            out = conv_up(out, wplus[:, i], noise[i], ch[i + 1], impl=impl)
            out = conv(out, wplus[:, i + 1], noise[i + 1], ch[i + 2], impl=impl)
            skip = to_rgb(out, wplus[:, i + 2], skip, impl=impl)  # [N, 3, 2^(level+3), ...]
            yield skip
            if skip.shape[-1] == target:
                return

    def _noises(
        self, noise_mode: str, wplus: torch.Tensor, generator: torch.Generator | None
    ) -> list[torch.Tensor | None]:
        if noise_mode == "const":
            return [getattr(self.noises, f"noise_{i}") for i in range(self.num_layers)]
        if noise_mode == "none":
            return [None] * self.num_layers
        if noise_mode == "random":
            n = wplus.shape[0]
            sizes = [2 ** ((i + 5) // 2) for i in range(self.num_layers)]
            return [
                torch.randn(n, 1, s, s, generator=generator, device=wplus.device, dtype=wplus.dtype)
                for s in sizes
            ]
        raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")


def n_style_for(resolution: int) -> int:
    """W+ slots of a generator of this resolution (18 at 1024 px)."""
    return 2 * int(math.log2(resolution)) - 2
