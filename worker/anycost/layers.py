"""Layers of the Anycost generator and discriminators (rosinality / Anycost names and keys).

Sub-networks are chosen per call: a layer takes ``out_channels`` (keep the first k output
channels) and infers its input width from the input tensor; inputs, styles and biases are sliced
to match and the weight-scaling constants stay those of the full layer. Nothing about a call is
stored on the module, so one model can serve concurrent renders of different costs.
Tensor legend: N batch, C channels, H/W height/width, S style_dim.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .ops import Impl, fused_leaky_relu, fused_leaky_relu_, make_kernel, upfirdn2d


class PixelNorm(nn.Module):
    """Normalize each vector to unit root-mean-square over dim 1."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(torch.mean(x**2, dim=1, keepdim=True) + 1e-8)


class FusedLeakyReLU(nn.Module):
    """Per-channel bias, leaky ReLU (slope 0.2) and gain sqrt(2); parameter key ``bias``."""

    def __init__(self, channel: int, negative_slope: float = 0.2, scale: float = 2**0.5):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channel))
        self.negative_slope = negative_slope
        self.scale = scale

    def forward(self, x: torch.Tensor, impl: Impl = "ref") -> torch.Tensor:
        return fused_leaky_relu(x, self.bias, self.negative_slope, self.scale, impl=impl)


class EqualLinear(nn.Module):
    """Linear layer with equalized learning rate (weights scaled at run time)."""

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        bias: bool = True,
        bias_init: float = 0.0,
        lr_mul: float = 1.0,
        activation: str | None = None,
    ):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim).div_(lr_mul))
        self.bias = nn.Parameter(torch.full((out_dim,), float(bias_init))) if bias else None
        if activation not in (None, "lrelu"):
            raise ValueError(f"unsupported activation {activation!r}")
        self.activation = activation
        self.scale = (1 / math.sqrt(in_dim)) * lr_mul
        self.lr_mul = lr_mul

    def forward(self, x: torch.Tensor, out_features: int | None = None) -> torch.Tensor:
        """x: [N, in] -> [N, out] (or [N, out_features]: only the first rows are computed)."""
        weight, bias = self.weight, self.bias
        if out_features is not None:
            weight = weight[:out_features]
            bias = bias[:out_features] if bias is not None else None
        weight = weight * self.scale
        if self.activation:
            return fused_leaky_relu(F.linear(x, weight), bias * self.lr_mul)
        return F.linear(x, weight, bias * self.lr_mul if bias is not None else None)


class EqualConv2d(nn.Module):
    """Conv2d with equalized learning rate; slices to the input's channels (and ``out_channels``)."""

    def __init__(
        self, in_channel: int, out_channel: int, kernel_size: int, stride: int = 1,
        padding: int = 0, bias: bool = True,
    ):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channel, in_channel, kernel_size, kernel_size))
        self.scale = 1 / math.sqrt(in_channel * kernel_size**2)
        self.stride = stride
        self.padding = padding
        self.bias = nn.Parameter(torch.zeros(out_channel)) if bias else None

    def forward(self, x: torch.Tensor, out_channels: int | None = None) -> torch.Tensor:
        weight = self.weight[:out_channels, : x.shape[1]]
        bias = self.bias[:out_channels] if self.bias is not None else None
        return F.conv2d(x, weight * self.scale, bias=bias, stride=self.stride, padding=self.padding)


class ConstantInput(nn.Module):
    """The learned 4x4 input of the synthesis network."""

    def __init__(self, channel: int, size: int = 4):
        super().__init__()
        self.input = nn.Parameter(torch.randn(1, channel, size, size))

    def forward(self, batch: int, out_channels: int | None = None) -> torch.Tensor:
        """-> [batch, out_channels, 4, 4] (a broadcast view, not a copy)."""
        x = self.input[:, :out_channels]
        return x.expand(batch, *x.shape[1:])


class NoiseInjection(nn.Module):
    """Adds ``weight * noise`` (one scalar weight, noise broadcast over channels)."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor, noise: torch.Tensor | None) -> torch.Tensor:
        """x: [N, C, H, W]; noise: [1 or N, 1, H, W], or None for no noise."""
        if noise is None:
            return x
        return x + self.weight * noise


class Blur(nn.Module):
    """FIR low-pass filter (buffer key ``kernel``) with fixed padding."""

    def __init__(self, kernel: tuple[int, ...], pad: tuple[int, int], upsample_factor: int = 1):
        super().__init__()
        k = make_kernel(kernel)
        if upsample_factor > 1:
            k = k * (upsample_factor**2)
        self.register_buffer("kernel", k)
        self.pad = pad

    def forward(self, x: torch.Tensor, impl: Impl = "ref") -> torch.Tensor:
        return upfirdn2d(x, self.kernel, pad=self.pad, impl=impl)


class Upsample(nn.Module):
    """2x FIR upsampling (zero insertion + low-pass), used on ToRGB skips."""

    def __init__(self, kernel: tuple[int, ...], factor: int = 2):
        super().__init__()
        self.factor = factor
        self.register_buffer("kernel", make_kernel(kernel) * (factor**2))
        p = self.kernel.shape[0] - factor
        self.pad = ((p + 1) // 2 + factor - 1, p // 2)

    def forward(self, x: torch.Tensor, impl: Impl = "ref") -> torch.Tensor:
        return upfirdn2d(x, self.kernel, up=self.factor, pad=self.pad, impl=impl)


class ModulatedConv2d(nn.Module):
    """StyleGAN2 modulated convolution; optional 2x upsampling (transposed conv + blur).

    Keys: ``weight`` [1, out, in, k, k], ``modulation.{weight,bias}``, ``blur.kernel`` if upsampling.
    """

    def __init__(
        self,
        in_channel: int,
        out_channel: int,
        kernel_size: int,
        style_dim: int,
        demodulate: bool = True,
        upsample: bool = False,
        blur_kernel: tuple[int, ...] = (1, 3, 3, 1),
    ):
        super().__init__()
        self.eps = 1e-8
        self.kernel_size = kernel_size
        self.in_channel = in_channel
        self.out_channel = out_channel
        self.upsample = upsample
        self.demodulate = demodulate
        self.weight = nn.Parameter(torch.randn(1, out_channel, in_channel, kernel_size, kernel_size))
        self.modulation = EqualLinear(style_dim, in_channel, bias_init=1)
        if upsample:
            factor = 2
            p = (len(blur_kernel) - factor) - (kernel_size - 1)
            self.blur = Blur(blur_kernel, pad=((p + 1) // 2 + factor - 1, p // 2 + 1), upsample_factor=factor)
        # Scale of the FULL layer, also for sub-networks (that is how Anycost was trained).
        self.scale = 1 / math.sqrt(in_channel * kernel_size**2)
        self.padding = kernel_size // 2

    def forward(
        self, x: torch.Tensor, style: torch.Tensor, out_channels: int | None = None,
        impl: Impl = "ref",
    ) -> torch.Tensor:
        """x: [N, Cin, H, W], style: [N, S] -> [N, out_channels, H', W'] (H' = 2H if upsampling).

        ``ref`` builds one modulated weight per sample and runs a grouped conv (upstream's way);
        ``fast`` scales the input by the style and the output by the demodulation factor around a
        single shared-weight conv (mathematically identical, no per-sample weights).
        """
        n, c_in, h, w = x.shape
        weight = self.weight[0, :out_channels, :c_in]  # [Cout, Cin, k, k]
        s = self.modulation(style, out_features=c_in)  # [N, Cin]
        if impl == "fast":
            return self._forward_fast(x, s, weight)
        c_out = weight.shape[0]
        wmod = self.scale * weight.unsqueeze(0) * s.view(n, 1, c_in, 1, 1)  # [N, Cout, Cin, k, k]
        if self.demodulate:
            wmod = wmod * torch.rsqrt(wmod.pow(2).sum([2, 3, 4], keepdim=True) + self.eps)
        xg = x.reshape(1, n * c_in, h, w)
        if self.upsample:
            wt = wmod.transpose(1, 2).reshape(n * c_in, c_out, self.kernel_size, self.kernel_size)
            out = F.conv_transpose2d(xg, wt, padding=0, stride=2, groups=n)
            out = out.view(n, c_out, out.shape[-2], out.shape[-1])
            return self.blur(out)
        wg = wmod.reshape(n * c_out, c_in, self.kernel_size, self.kernel_size)
        out = F.conv2d(xg, wg, padding=self.padding, groups=n)
        return out.view(n, c_out, h, w)

    def _forward_fast(self, x: torch.Tensor, s: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        n, c_in, h, w = x.shape
        c_out, k = weight.shape[0], self.kernel_size
        s = s * self.scale  # [N, Cin]
        if n == 1 and h * w >= c_out * k * k:
            # One sample, large maps: modulating the weight is cheaper than the activations.
            wmod = weight * s.view(1, c_in, 1, 1)
            if self.demodulate:
                # vector_norm reduces in one pass without a squared temporary.
                norm = torch.linalg.vector_norm(wmod, dim=(1, 2, 3), keepdim=True)
                wmod.mul_(torch.rsqrt(norm.square() + self.eps))
            if self.upsample:
                return self.blur(F.conv_transpose2d(x, wmod.transpose(0, 1), stride=2), impl="fast")
            return F.conv2d(x, wmod, padding=self.padding)
        # Scale the input by the style, run one shared-weight conv for the whole batch, then
        # scale the output by the demodulation factor.
        x = x * s.view(n, c_in, 1, 1)
        if self.upsample:
            out = F.conv_transpose2d(x, weight.transpose(0, 1), stride=2)
        else:
            out = F.conv2d(x, weight, padding=self.padding)
        if self.demodulate:
            # d[n, o] = rsqrt(sum_i s[n, i]^2 * sum_k w[o, i, k]^2 + eps)
            wsq = torch.linalg.vector_norm(weight, dim=(2, 3)).square()  # [Cout, Cin]
            d = torch.rsqrt(s.square() @ wsq.t() + self.eps)  # [N, Cout]
            out.mul_(d.view(n, c_out, 1, 1))
        return self.blur(out, impl="fast") if self.upsample else out


class StyledConv(nn.Module):
    """Modulated conv, noise injection and biased leaky ReLU (keys ``conv``, ``noise``, ``activate``)."""

    def __init__(
        self, in_channel: int, out_channel: int, kernel_size: int, style_dim: int,
        upsample: bool = False, blur_kernel: tuple[int, ...] = (1, 3, 3, 1), demodulate: bool = True,
        conv_clamp: float | None = None,
    ):
        """conv_clamp: clamp activations to [-conv_clamp, conv_clamp] (NVIDIA's ADA networks)."""
        super().__init__()
        self.conv_clamp = conv_clamp
        self.conv = ModulatedConv2d(
            in_channel, out_channel, kernel_size, style_dim,
            upsample=upsample, blur_kernel=blur_kernel, demodulate=demodulate,
        )
        self.noise = NoiseInjection()
        self.activate = FusedLeakyReLU(out_channel)

    def forward(
        self, x: torch.Tensor, style: torch.Tensor, noise: torch.Tensor | None,
        out_channels: int | None = None, impl: Impl = "ref",
    ) -> torch.Tensor:
        out = self.conv(x, style, out_channels, impl=impl)
        if impl == "fast":
            # `out` is a fresh tensor: add noise, bias, activation in place (no big temporaries).
            if noise is not None:
                out.addcmul_(noise, self.noise.weight)
            out = fused_leaky_relu_(out, self.activate.bias, self.activate.negative_slope, self.activate.scale)
            return out.clamp_(-self.conv_clamp, self.conv_clamp) if self.conv_clamp is not None else out
        out = self.activate(self.noise(out, noise), impl=impl)
        return out.clamp(-self.conv_clamp, self.conv_clamp) if self.conv_clamp is not None else out


class ToRGB(nn.Module):
    """1x1 modulated conv to RGB (no demodulation) plus the upsampled skip image."""

    def __init__(
        self, in_channel: int, style_dim: int, upsample: bool = True,
        blur_kernel: tuple[int, ...] = (1, 3, 3, 1), conv_clamp: float | None = None,
    ):
        """conv_clamp: clamp this layer's RGB (before the skip is added) to +-conv_clamp."""
        super().__init__()
        self.conv_clamp = conv_clamp
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))
        if upsample:
            self.upsample = Upsample(blur_kernel)
        self.conv = ModulatedConv2d(in_channel, 3, 1, style_dim, demodulate=False)

    def forward(
        self, x: torch.Tensor, style: torch.Tensor, skip: torch.Tensor | None = None,
        impl: Impl = "ref",
    ) -> torch.Tensor:
        """x: [N, C, H, W], skip: [N, 3, H/2, W/2] or None -> [N, 3, H, W]."""
        out = self.conv(x, style, impl=impl)
        if impl == "fast":
            out.add_(self.bias)
            if self.conv_clamp is not None:
                out.clamp_(-self.conv_clamp, self.conv_clamp)
            return out.add_(self.upsample(skip, impl=impl)) if skip is not None else out
        out = out + self.bias
        if self.conv_clamp is not None:
            out = out.clamp(-self.conv_clamp, self.conv_clamp)
        if skip is not None:
            out = out + self.upsample(skip, impl=impl)
        return out


class AdaptiveModulate(nn.Module):
    """Per-channel affine transform predicted from the generator architecture (discriminator)."""

    def __init__(self, num_features: int, g_arch_len: int):
        super().__init__()
        self.weight_mapping = nn.Linear(g_arch_len, num_features)
        self.bias_mapping = nn.Linear(g_arch_len, num_features)

    def forward(self, x: torch.Tensor, g_arch: torch.Tensor) -> torch.Tensor:
        weight = self.weight_mapping(g_arch.view(1, -1)).view(1, -1, 1, 1) + 1.0
        bias = self.bias_mapping(g_arch.view(1, -1)).view(1, -1, 1, 1)
        return x * weight + bias


class ConvLayer(nn.Sequential):
    """[Blur] + EqualConv2d + [AdaptiveModulate] + [FusedLeakyReLU], as a numbered Sequential."""

    def __init__(
        self, in_channel: int, out_channel: int, kernel_size: int, downsample: bool = False,
        blur_kernel: tuple[int, ...] = (1, 3, 3, 1), bias: bool = True, activate: bool = True,
        modulate: bool = False, g_arch_len: int = 18 * 4, conv_clamp: float | None = None,
    ):
        """conv_clamp: clamp the output to +-conv_clamp (NVIDIA's ADA discriminators)."""
        layers: list[nn.Module] = []
        if downsample:
            p = (len(blur_kernel) - 2) + (kernel_size - 1)
            layers.append(Blur(blur_kernel, pad=((p + 1) // 2, p // 2)))
            stride, padding = 2, 0
        else:
            stride, padding = 1, kernel_size // 2
        # With an activation the bias lives in FusedLeakyReLU, not in the conv.
        layers.append(EqualConv2d(in_channel, out_channel, kernel_size, padding=padding,
                                  stride=stride, bias=bias and not activate))
        if modulate:
            layers.append(AdaptiveModulate(out_channel, g_arch_len))
        if activate:
            layers.append(FusedLeakyReLU(out_channel))
        super().__init__(*layers)
        self.conv_clamp = conv_clamp

    def forward(self, x: torch.Tensor, g_arch: torch.Tensor | None = None) -> torch.Tensor:
        for module in self:
            if isinstance(module, AdaptiveModulate):
                if g_arch is None:
                    raise ValueError("this layer is modulated by the generator architecture: pass g_arch")
                x = module(x, g_arch)
            else:
                x = module(x)
        return x.clamp(-self.conv_clamp, self.conv_clamp) if self.conv_clamp is not None else x


class ResBlock(nn.Module):
    """Discriminator residual block: two 3x3 convs (the second downsamples) + 1x1 skip."""

    def __init__(
        self, in_channel: int, out_channel: int, blur_kernel: tuple[int, ...] = (1, 3, 3, 1),
        modulate: bool = False, g_arch_len: int = 18 * 4, conv_clamp: float | None = None,
    ):
        super().__init__()
        common = {"modulate": modulate, "g_arch_len": g_arch_len, "conv_clamp": conv_clamp}
        self.conv1 = ConvLayer(in_channel, in_channel, 3, **common)
        self.conv2 = ConvLayer(in_channel, out_channel, 3, downsample=True, blur_kernel=blur_kernel,
                               **common)
        self.skip = ConvLayer(in_channel, out_channel, 1, downsample=True, activate=False,
                              bias=False, **common)

    def forward(self, x: torch.Tensor, g_arch: torch.Tensor | None = None) -> torch.Tensor:
        out = self.conv2(self.conv1(x, g_arch), g_arch)
        return (out + self.skip(x, g_arch)) / math.sqrt(2)
