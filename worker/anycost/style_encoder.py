"""The e4e and pSp image encoders: an IR-SE50 body, a feature pyramid and one style block per slot.

Both put a 256x256 face into the W+ space of the StyleGAN2 they were trained against (e4e:
Tov et al. 2021, "Designing an Encoder for StyleGAN Image Manipulation"; pSp: Richardson et al.
2021). They share every layer and differ only in how slots are read (``method``):
- ``psp``: each style block gives its slot's code;
- ``e4e``: slot 0's block gives one w for every slot, each later block adds a delta to its slot
  (codes stay near one W, which is what makes edits behave).
``latent_avg`` (a buffer, [L, S]) is added to every code: the decoder's mean w when the
checkpoint's opts say ``start_from_latent_avg``, zeros otherwise. Layer names follow the released
checkpoints' ``encoder.*`` keys, so their state_dict loads strictly once the prefix is dropped
(``worker.anycost.e4e`` reads and converts those files).
Tensor legend: N batch, C channels, H W spatial, L n_style (W+ slots), S style_dim.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .layers import EqualLinear

#: The encoders were trained on 256x256 inputs in [-1, 1].
INPUT_SIZE = 256
METHODS: tuple[str, ...] = ("e4e", "psp")
#: IR-SE50 stages: (output channels, units); each stage's first unit has stride 2.
STAGES: tuple[tuple[int, int], ...] = ((64, 3), (128, 4), (256, 14), (512, 3))
#: The body's units whose outputs feed the pyramid: c1 (128 ch, 1/4), c2 (256, 1/8), c3 (512, 1/16).
FEATURE_UNITS = (6, 20, 23)
#: Slots [0, 3) read c3 (16 px), [3, 7) the middle pyramid level (32 px), the rest the fine (64 px).
COARSE_END, MIDDLE_END = 3, 7


def n_style_for(resolution: int) -> int:
    """W+ slots of a decoder of this resolution (18 at 1024 px, 14 at 256 px)."""
    return 2 * int(math.log2(resolution)) - 2


class SqueezeExcite(nn.Module):
    """Channel gates from global average pooling (reduction 16, no biases)."""

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        self.fc1 = nn.Conv2d(channels, channels // reduction, 1, bias=False)
        self.fc2 = nn.Conv2d(channels // reduction, channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = self.fc2(F.relu(self.fc1(F.adaptive_avg_pool2d(x, 1))))
        return x * torch.sigmoid(gate)


class BottleneckIRSE(nn.Module):
    """One IR-SE unit: BN, conv3x3, PReLU, conv3x3 (stride), BN, SE; plus a shortcut."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        if c_in == c_out:
            self.shortcut_layer: nn.Module = nn.MaxPool2d(1, stride)  # a strided pick, no weights
        else:
            self.shortcut_layer = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False),
                                                nn.BatchNorm2d(c_out))
        self.res_layer = nn.Sequential(
            nn.BatchNorm2d(c_in),
            nn.Conv2d(c_in, c_out, 3, 1, 1, bias=False),
            nn.PReLU(c_out),
            nn.Conv2d(c_out, c_out, 3, stride, 1, bias=False),
            nn.BatchNorm2d(c_out),
            SqueezeExcite(c_out),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.res_layer(x) + self.shortcut_layer(x)


class StyleBlock(nn.Module):
    """Features [N, 512, s, s] -> one code [N, 512]: log2(s) strided conv3x3 + LeakyReLU(0.01),
    then an equalised linear layer."""

    def __init__(self, channels: int, spatial: int):
        super().__init__()
        layers: list[nn.Module] = []
        for _ in range(int(math.log2(spatial))):
            layers += [nn.Conv2d(channels, channels, 3, 2, 1), nn.LeakyReLU(0.01)]
        self.convs = nn.Sequential(*layers)
        self.linear = EqualLinear(channels, channels)
        self.channels = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.convs(x).reshape(-1, self.channels))


class StyleEncoder(nn.Module):
    """e4e / pSp encoder: aligned face [N, 3, 256, 256] in [-1, 1] -> W+ codes [N, L, S]."""

    def __init__(self, method: str, n_style: int = 18, style_dim: int = 512):
        """method: "e4e" (one w plus per-slot deltas) or "psp" (a code per slot).
        n_style: W+ slots of the decoder (18 at 1024 px). style_dim: width of w (512)."""
        super().__init__()
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {method!r}")
        if n_style <= MIDDLE_END:
            raise ValueError(f"n_style must be more than {MIDDLE_END}, got {n_style}")
        self.method = method
        self.n_style = n_style
        self.style_dim = style_dim
        self.input_layer = nn.Sequential(nn.Conv2d(3, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64),
                                         nn.PReLU(64))
        units: list[nn.Module] = []
        c_in = 64
        for c_out, count in STAGES:
            units += [BottleneckIRSE(c_in, c_out, 2)] + [BottleneckIRSE(c_out, c_out, 1)
                                                         for _ in range(count - 1)]
            c_in = c_out
        self.body = nn.Sequential(*units)
        self.styles = nn.ModuleList(
            StyleBlock(style_dim, 16 if i < COARSE_END else 32 if i < MIDDLE_END else 64)
            for i in range(n_style)
        )
        self.latlayer1 = nn.Conv2d(256, style_dim, 1)
        self.latlayer2 = nn.Conv2d(128, style_dim, 1)
        self.register_buffer("latent_avg", torch.zeros(n_style, style_dim))

    def extra_repr(self) -> str:
        return f"method={self.method}, n_style={self.n_style}, style_dim={self.style_dim}"

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x [N, 3, 256, 256] -> c1 [N, 128, 64, 64], c2 [N, 256, 32, 32], c3 [N, 512, 16, 16]."""
        x = self.input_layer(x)
        found = []
        for i, unit in enumerate(self.body):
            x = unit(x)
            if i in FEATURE_UNITS:
                found.append(x)
        c1, c2, c3 = found
        return c1, c2, c3

    @staticmethod
    def _upsample_add(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, size=y.shape[-2:], mode="bilinear", align_corners=True) + y

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [N, 3, H, W] in [-1, 1] (resized to 256 when needed) -> W+ [N, L, S]."""
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected [N, 3, H, W] images, got {tuple(x.shape)}")
        if x.shape[-2:] != (INPUT_SIZE, INPUT_SIZE):
            x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=True)
        c1, c2, c3 = self.features(x)
        p2 = self._upsample_add(c3, self.latlayer1(c2))  # [N, S, 32, 32]
        p1 = self._upsample_add(p2, self.latlayer2(c1))  # [N, S, 64, 64]
        level = [c3] * COARSE_END + [p2] * (MIDDLE_END - COARSE_END)
        level += [p1] * (self.n_style - MIDDLE_END)
        if self.method == "psp":
            codes = torch.stack([block(f) for block, f in zip(self.styles, level, strict=True)], 1)
        else:
            w = self.styles[0](c3)
            deltas = [torch.zeros_like(w)] + [self.styles[i](level[i]) for i in range(1, self.n_style)]
            codes = w.unsqueeze(1) + torch.stack(deltas, 1)
        return codes + self.latent_avg.unsqueeze(0)

