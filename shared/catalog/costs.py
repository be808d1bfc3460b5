"""Channel widths and multiply-accumulate counts of Anycost generators (pure Python, no torch).

Both the worker (to pick sub-networks) and the web portal (to show what a preview costs) use this.

Channel semantics (upstream ``models/dynamic_channel.py``): every resolution level has a base width
(``BASE_CHANNELS``); the full model uses ``min(channel_max, int(base * channel_multiplier))``. A
uniform ratio ``r`` uses ``min(channel_max, int(base * r * m))`` with
``m = full_width(last level) / base(last level)``, once for each of the level's two layers (the
constant input and ``conv1`` at 4 px; the two convs of every later level). A flexible config lists
one count per layer in the same order.

MAC semantics: the published numbers (``macs_res1024.txt``, the flexible configs' ``macs``) were
measured by tracing the reference implementation with torchprofile, which counts convolutions,
matrix products, element-wise multiplies and leaky-ReLUs of one image (batch 1), starting from z.
``generator_macs`` reproduces that count analytically, term by term (see ``_modulated_conv``), so
that its numbers can be compared with the paper's (144.37G full at 1024 px).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

#: Base channel width per resolution level (multiplied by ``channel_multiplier``, capped).
BASE_CHANNELS: dict[int, int] = {
    4: 4096,
    8: 2048,
    16: 1024,
    32: 512,
    64: 256,
    128: 128,
    256: 64,
    512: 32,
    1024: 16,
}

#: The uniform channel ratios the Anycost generators were trained for.
CHANNEL_RATIOS: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0)

ChannelSpec = float | Sequence[int] | None


def check_resolution(resolution: int) -> int:
    """Return ``log2(resolution)``; raise ValueError unless it is a power of two in 4..1024."""
    if resolution not in BASE_CHANNELS:
        raise ValueError(f"resolution must be a power of two from 4 to 1024, got {resolution!r}")
    return int(math.log2(resolution))


def levels(resolution: int) -> list[int]:
    """The generator's resolution levels: ``[4, 8, ..., resolution]``."""
    check_resolution(resolution)
    return [r for r in BASE_CHANNELS if r <= resolution]


def n_channel_layers(resolution: int) -> int:
    """How many per-layer channel counts a flexible config has (18 at 1024 px)."""
    return 2 * len(levels(resolution))


def full_channels(resolution: int, channel_multiplier: float = 2, channel_max: int = 512) -> list[int]:
    """Per-layer channel counts of the full generator (two per level)."""
    return channel_counts(resolution, 1.0, channel_multiplier, channel_max)


def channel_counts(
    resolution: int,
    ratio_or_list: ChannelSpec,
    channel_multiplier: float = 2,
    channel_max: int = 512,
) -> list[int]:
    """Per-layer output channel counts for a uniform ratio or an explicit (flexible) list.

    ``None`` means the full model. A list is validated (length, 1 <= count <= full width) and
    returned as a new list of ints.
    """
    lv = levels(resolution)
    full = [min(channel_max, int(BASE_CHANNELS[r] * channel_multiplier)) for r in lv]
    full_layers = [c for c in full for _ in range(2)]
    if ratio_or_list is None:
        return full_layers
    if isinstance(ratio_or_list, int | float) and not isinstance(ratio_or_list, bool):
        ratio = float(ratio_or_list)
        if not 0.0 < ratio <= 1.0:
            raise ValueError(f"channel ratio must be in (0, 1], got {ratio_or_list!r}")
        # Same float expression (and evaluation order) as upstream, so rounding agrees.
        mult = full[-1] * 1.0 / BASE_CHANNELS[resolution]
        counts = [min(channel_max, int(BASE_CHANNELS[r] * ratio * mult)) for r in lv]
        if min(counts) < 1:
            raise ValueError(f"channel ratio {ratio} leaves a layer without channels")
        return [c for c in counts for _ in range(2)]
    counts = [int(c) for c in ratio_or_list]
    if len(counts) != len(full_layers):
        raise ValueError(
            f"a flexible channel config needs {len(full_layers)} counts for a {resolution} px "
            f"generator, got {len(counts)}"
        )
    for i, (c, f) in enumerate(zip(counts, full_layers, strict=True)):
        if not 1 <= c <= f:
            raise ValueError(f"layer {i}: channel count {c} outside 1..{f}")
    return counts


def _modulated_conv(
    style_dim: int, full_in: int, c_in: int, c_out: int, kernel: int, size: int, *,
    demodulate: bool, upsample: bool,
) -> int:
    """MACs of one modulated conv producing ``c_out x size x size`` (torchprofile's counting)."""
    # Modulation linear runs at the full layer's width (the style is sliced afterwards), plus
    # the equalized-lr multiplies of its weight and bias.
    macs = style_dim * full_in + style_dim * full_in + full_in
    # Per-weight multiplies: scale, style, and (if demodulating) the demodulation factor.
    macs += c_out * c_in * kernel * kernel * (3 if demodulate else 2)
    if upsample:
        # Transposed conv, stride 2: counted over its whole (2h + 1)^2 output, then a 4x4 blur.
        half = size // 2
        macs += (2 * half + 1) ** 2 * c_out * c_in * kernel * kernel
        macs += size * size * c_out * 16
    else:
        macs += size * size * c_out * c_in * kernel * kernel
    # Two scalar multiplies from the reshapes (batch * channels) show up in the trace.
    return macs + 2


def _styled_conv(style_dim: int, full_in: int, c_in: int, c_out: int, size: int, upsample: bool) -> int:
    macs = _modulated_conv(style_dim, full_in, c_in, c_out, 3, size, demodulate=True, upsample=upsample)
    # Noise injection (weight * noise) and the activation's gain.
    return macs + size * size + size * size * c_out


def _to_rgb(style_dim: int, full_in: int, c_in: int, size: int, upsample_skip: bool) -> int:
    macs = _modulated_conv(style_dim, full_in, c_in, 3, 1, size, demodulate=False, upsample=False)
    if upsample_skip:
        # Skip upsampling: zero-insertion as a 2x2 transposed conv, then the 4x4 blur (3 channels).
        macs += 3 * size * size * 4 + 3 * size * size * 16
    return macs


def mapping_macs(style_dim: int = 512, n_mlp: int = 8) -> int:
    """MACs of the mapping network for one z (PixelNorm, then ``n_mlp`` EqualLinear + lrelu)."""
    pixel_norm = style_dim + 1  # x * rsqrt(mean(x^2)) and the mean
    per_layer = 2 * style_dim * style_dim + 2 * style_dim  # matmul, weight scale, bias scale, gain
    return pixel_norm + n_mlp * per_layer


def generator_macs(
    resolution: int,
    channels: ChannelSpec = None,
    target_resolution: int | None = None,
    channel_multiplier: float = 2,
    channel_max: int = 512,
    style_dim: int = 512,
    n_mlp: int = 8,
) -> int:
    """Multiply-accumulates to render one image from z with a sub-network.

    ``channels``: None (full), a uniform ratio, or a flexible per-layer list. ``target_resolution``:
    the output width (None = the model's own). Matches the published counts (e.g. 144.37G for the
    full 1024 px model, 28.90G at ratio 0.5 and 256 px).
    """
    target = resolution if target_resolution is None else target_resolution
    check_resolution(target)
    if target > resolution:
        raise ValueError(f"target resolution {target} exceeds the model's {resolution}")
    ch = channel_counts(resolution, channels, channel_multiplier, channel_max)
    full = full_channels(resolution, channel_multiplier, channel_max)

    macs = mapping_macs(style_dim, n_mlp)
    # 4 px: constant input (ch[0] channels), conv1 (ch[1]) and to_rgb1.
    macs += _styled_conv(style_dim, full[0], ch[0], ch[1], 4, upsample=False)
    macs += _to_rgb(style_dim, full[1], ch[1], 4, upsample_skip=False)
    c_prev, layer, size = ch[1], 2, 4
    while size < target:
        size *= 2
        macs += _styled_conv(style_dim, full[layer - 1], c_prev, ch[layer], size, upsample=True)
        macs += _styled_conv(style_dim, full[layer], ch[layer], ch[layer + 1], size, upsample=False)
        macs += _to_rgb(style_dim, full[layer + 1], ch[layer + 1], size, upsample_skip=True)
        c_prev, layer = ch[layer + 1], layer + 2
    return macs
