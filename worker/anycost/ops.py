"""Low-level ops of the StyleGAN2 / Anycost generator: FIR up/down-sampling and biased leaky ReLU.

Each op has a pure-PyTorch reference (``impl="ref"``, correct on any device) and a faster path
(``impl="fast"``) that must agree with it to 1e-5; the choice is explicit, never a fallback.
Tensor legend: N batch, C channels, H/W height/width.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

Impl = Literal["ref", "fast"]
IMPLS: tuple[str, ...] = ("ref", "fast")


def _check_impl(impl: str) -> None:
    if impl not in IMPLS:
        raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}")


def make_kernel(k: tuple[float, ...] | list[float], flip: bool = True) -> torch.Tensor:
    """2-D FIR kernel from 1-D taps (outer product), normalized to sum 1.

    Stored flipped, as upstream does, so that ``upfirdn2d`` (a correlation) convolves with ``k``.
    """
    t = torch.tensor(k, dtype=torch.float32)
    if t.ndim == 1:
        t = t[None, :] * t[:, None]
    t = t / t.sum()
    return torch.flip(t, [0, 1]) if flip else t


def upfirdn2d(
    x: torch.Tensor,
    kernel: torch.Tensor,
    up: int = 1,
    down: int = 1,
    pad: tuple[int, int] = (0, 0),
    impl: Impl = "ref",
) -> torch.Tensor:
    """Upsample by zero insertion, pad, correlate each channel with ``kernel``, then subsample.

    x: [N, C, H, W]; kernel: [kh, kw]; pad: (before, after), the same for both axes (negative
    values crop). Output: [N, C, (H*up + p0 + p1 - kh + 1) // down, ...].
    """
    _check_impl(impl)
    if impl == "fast" and down == 1:
        return _upfirdn2d_fast(x, kernel, up, pad)
    return _upfirdn2d_ref(x, kernel, up, down, pad)


def _upfirdn2d_ref(
    x: torch.Tensor, kernel: torch.Tensor, up: int, down: int, pad: tuple[int, int]
) -> torch.Tensor:
    n, c, h, w = x.shape
    kh, kw = kernel.shape
    if up > 1:
        # Zero insertion: every input pixel lands on the top-left of an up x up cell.
        x = x.reshape(n, c, h, 1, w, 1)
        x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1])
        x = x.reshape(n, c, h * up, w * up)
    x = F.pad(x, [pad[0], pad[1], pad[0], pad[1]])
    weight = kernel.to(x.dtype).view(1, 1, kh, kw).expand(c, 1, kh, kw)
    out = F.conv2d(x, weight, groups=c)
    return out[:, :, ::down, ::down] if down > 1 else out


def _upfirdn2d_fast(x: torch.Tensor, kernel: torch.Tensor, up: int, pad: tuple[int, int]) -> torch.Tensor:
    """One depthwise (transposed) convolution, no padded or zero-inserted copies.

    Keeps the input's memory format: in channels_last, PyTorch's CPU depthwise conv is many
    times faster than in NCHW, which is why the fast synthesis path runs channels_last.
    """
    c = x.shape[1]
    kh, kw = kernel.shape
    p0, p1 = pad
    if up == 1:
        if p0 != p1 or p0 < 0:
            return _upfirdn2d_ref(x, kernel, 1, 1, pad)
        weight = kernel.to(x.dtype).view(1, 1, kh, kw).expand(c, 1, kh, kw).contiguous()
        return F.conv2d(x, weight, padding=p0, groups=c)
    # Zero insertion + correlation with k == a stride-`up` transposed conv with flip(k), whose
    # full output starts (kh - 1 - p0) samples before the reference output.
    h, w = x.shape[-2:]
    start = kh - 1 - p0
    out_h = h * up + p0 + p1 - kh + 1
    out_w = w * up + p0 + p1 - kw + 1
    full_h, full_w = (h - 1) * up + kh, (w - 1) * up + kw
    if kh != kw or start < 0 or start + out_h > full_h or start + out_w > full_w:
        return _upfirdn2d_ref(x, kernel, up, 1, pad)
    weight = torch.flip(kernel.to(x.dtype), [0, 1]).view(1, 1, kh, kw).expand(c, 1, kh, kw).contiguous()
    out = F.conv_transpose2d(x, weight, stride=up, groups=c)
    return out[:, :, start : start + out_h, start : start + out_w]


def fused_leaky_relu(
    x: torch.Tensor,
    bias: torch.Tensor,
    negative_slope: float = 0.2,
    scale: float = 2**0.5,
    impl: Impl = "ref",
) -> torch.Tensor:
    """``scale * leaky_relu(x + bias)``, bias broadcast over dim 1 (and sliced to x's channels).

    x: [N, C, ...]; bias: [>= C]. The fast path works in place on a fresh sum; see also
    ``fused_leaky_relu_`` for callers that own ``x``.
    """
    _check_impl(impl)
    c = x.shape[1]
    b = bias[:c].view(1, c, *([1] * (x.ndim - 2)))
    if impl == "fast":
        return fused_leaky_relu_(x + b, bias, negative_slope, scale, add_bias=False)
    return F.leaky_relu(x + b, negative_slope) * scale


def fused_leaky_relu_(
    x: torch.Tensor,
    bias: torch.Tensor,
    negative_slope: float = 0.2,
    scale: float = 2**0.5,
    add_bias: bool = True,
) -> torch.Tensor:
    """In-place ``fused_leaky_relu`` on a tensor the caller owns (no new allocation): returns x."""
    if add_bias:
        c = x.shape[1]
        x.add_(bias[:c].view(1, c, *([1] * (x.ndim - 2))))
    F.leaky_relu_(x, negative_slope)
    return x.mul_(scale)
