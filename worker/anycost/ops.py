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
    if impl == "fast" and down == 1 and up in (1, 2):
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
    """Separable (rank-1) kernels run as two 1-D passes; 2x upsampling via polyphase filters.

    Zero insertion followed by a kh-tap filter equals, for each output phase, a filter with every
    ``up``-th tap on the original grid, so nothing is multiplied by inserted zeros.
    """
    n, c, h, w = x.shape
    k = kernel.to(x.dtype)
    col, row = _rank1_factors(k)
    if col is None:
        return _upfirdn2d_ref(x, kernel, up, 1, pad)
    # Vertical pass then horizontal pass (both as depthwise 1-D convolutions).
    x = _fir1d(x, col, up, pad, dim=2)
    return _fir1d(x, row, up, pad, dim=3)


def _rank1_factors(k: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """Return (col, row) with ``k == col[:, None] * row[None, :]`` if k is rank 1, else (None, None)."""
    i = int(torch.argmax(k.abs()))
    r, q = divmod(i, k.shape[1])
    pivot = k[r, q]
    if pivot == 0:
        return None, None
    col = k[:, q]
    row = k[r, :] / pivot
    if not torch.allclose(col[:, None] * row[None, :], k, atol=1e-7, rtol=1e-6):
        return None, None
    return col, row


def _fir1d(x: torch.Tensor, taps: torch.Tensor, up: int, pad: tuple[int, int], dim: int) -> torch.Tensor:
    """1-D upfirdn along ``dim`` (2 = H, 3 = W) of a [N, C, H, W] tensor."""
    n, c = x.shape[:2]
    kt = taps.numel()
    p0, p1 = pad
    if up == 1:
        pads = [p0, p1, 0, 0] if dim == 3 else [0, 0, p0, p1]
        x = F.pad(x, pads)
        shape = (c, 1, 1, kt) if dim == 3 else (c, 1, kt, 1)
        return F.conv2d(x, taps.view(1, 1, *shape[2:]).expand(*shape), groups=c)
    # up == 2: output index y = 2*i + phase. Ref: out[y] = sum_j taps[j] * u[y + j - p0], where u
    # is the zero-inserted input (u[2m] = x[m]); so for each phase only taps with y + j - p0 even
    # contribute. Build both phase filters on the input grid and interleave.
    length = x.shape[dim]
    out_len = length * 2 + p0 + p1 - kt + 1
    phases = []
    for phase in range(2):
        # taps j with (phase + j - p0) even; input index m = (2*i + phase + j - p0) / 2 = i + d_j.
        js = [j for j in range(kt) if (phase + j - p0) % 2 == 0]
        ds = [(phase + j - p0) // 2 for j in js]
        lo, hi = min(ds), max(ds)
        sub = torch.zeros(hi - lo + 1, dtype=taps.dtype, device=taps.device)
        for j, d in zip(js, ds, strict=True):
            sub[d - lo] = taps[j]
        n_out = (out_len - phase + 1) // 2
        # out_phase[i] = sum_t sub[t] * x[i + lo + t]: pad so index i + lo starts at 0.
        left = -lo
        right = n_out - 1 + hi - (length - 1)
        pads = [left, right, 0, 0] if dim == 3 else [0, 0, left, right]
        xp = F.pad(x, pads)
        shape = (c, 1, 1, sub.numel()) if dim == 3 else (c, 1, sub.numel(), 1)
        phases.append(F.conv2d(xp, sub.view(*shape[2:]).expand(*shape).contiguous(), groups=c))
    even, odd = phases
    if even.shape[dim] != odd.shape[dim]:
        pad_odd = [0, 1, 0, 0] if dim == 3 else [0, 0, 0, 1]
        odd = F.pad(odd, pad_odd)
    out = torch.stack([even, odd], dim=dim + 1).flatten(dim, dim + 1)
    return out.narrow(dim, 0, out_len)


def fused_leaky_relu(
    x: torch.Tensor,
    bias: torch.Tensor,
    negative_slope: float = 0.2,
    scale: float = 2**0.5,
    impl: Impl = "ref",
) -> torch.Tensor:
    """``scale * leaky_relu(x + bias)``, bias broadcast over dim 1 (and sliced to x's channels).

    x: [N, C, ...]; bias: [>= C]. The fast path works in place on a fresh sum.
    """
    _check_impl(impl)
    c = x.shape[1]
    b = bias[:c].view(1, c, *([1] * (x.ndim - 2)))
    if impl == "fast":
        out = x + b
        F.leaky_relu_(out, negative_slope)
        return out.mul_(scale)
    return F.leaky_relu(x + b, negative_slope) * scale
