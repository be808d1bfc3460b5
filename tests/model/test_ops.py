"""Fast op paths agree with the pure-PyTorch references (1e-5), in NCHW and channels_last."""

from __future__ import annotations

import pytest
import torch

from worker.anycost.layers import ModulatedConv2d, StyledConv, ToRGB
from worker.anycost.ops import fused_leaky_relu, fused_leaky_relu_, make_kernel, upfirdn2d

ATOL = 1e-5


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize(
    ("up", "pad", "gain"),
    [(1, (1, 1), 1), (1, (2, 2), 1), (1, (0, 0), 1), (1, (2, 1), 1), (2, (2, 1), 4), (2, (1, 1), 4), (2, (0, 0), 4)],
)
def test_upfirdn2d_fast_matches_ref(up, pad, gain, channels_last):
    torch.manual_seed(0)
    kernel = make_kernel([1, 3, 3, 1]) * gain
    for size in (4, 7, 16):
        x = torch.randn(2, 5, size, size + 1)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        ref = upfirdn2d(x, kernel, up=up, pad=pad, impl="ref")
        fast = upfirdn2d(x, kernel, up=up, pad=pad, impl="fast")
        assert fast.shape == ref.shape
        assert (fast - ref).abs().max().item() <= ATOL


def test_upfirdn2d_ref_semantics():
    # Upsampling a constant image by 2 with a normalized kernel * 4 keeps it constant inside.
    x = torch.ones(1, 1, 6, 6)
    out = upfirdn2d(x, make_kernel([1, 3, 3, 1]) * 4, up=2, pad=(2, 1))
    assert out.shape == (1, 1, 12, 12)
    assert torch.allclose(out[..., 2:-2, 2:-2], torch.ones(1, 1, 8, 8))
    # Down-sampling keeps every second sample of the filtered image.
    y = torch.arange(16.0).view(1, 1, 4, 4)
    assert torch.equal(upfirdn2d(y, torch.ones(1, 1), down=2), y[..., ::2, ::2])
    with pytest.raises(ValueError):
        upfirdn2d(y, torch.ones(1, 1), impl="cuda")


def test_upfirdn2d_asymmetric_kernel_fast():
    torch.manual_seed(1)
    k = torch.rand(3, 3)
    x = torch.randn(1, 2, 5, 5)
    for up, pad in ((1, (1, 1)), (2, (1, 1)), (2, (2, 2))):
        assert torch.allclose(upfirdn2d(x, k, up=up, pad=pad), upfirdn2d(x, k, up=up, pad=pad, impl="fast"), atol=ATOL)


def test_fused_leaky_relu():
    torch.manual_seed(0)
    x = torch.randn(2, 6, 3, 3)
    bias = torch.randn(8)
    expected = torch.where(x + bias[:6].view(1, 6, 1, 1) >= 0, 1.0, 0.2) * (x + bias[:6].view(1, 6, 1, 1)) * 2**0.5
    ref = fused_leaky_relu(x, bias)
    assert torch.allclose(ref, expected, atol=1e-6)
    assert torch.allclose(fused_leaky_relu(x, bias, impl="fast"), ref, atol=ATOL)
    y = x.clone()
    assert fused_leaky_relu_(y, bias) is y and torch.allclose(y, ref, atol=ATOL)
    # 2-D input (the mapping network)
    v = torch.randn(3, 8)
    assert torch.allclose(fused_leaky_relu(v, bias, impl="fast"), fused_leaky_relu(v, bias), atol=ATOL)


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("upsample", [False, True])
@pytest.mark.parametrize("size", [4, 32])
def test_modulated_conv_fast_matches_ref(batch, upsample, size):
    torch.manual_seed(0)
    conv = ModulatedConv2d(24, 16, 3, 32, upsample=upsample)
    x = torch.randn(batch, 20, size, size)  # a sub-network: 20 of 24 inputs ...
    style = torch.randn(batch, 32)
    with torch.inference_mode():
        ref = conv(x, style, out_channels=12, impl="ref")  # ... and 12 of 16 outputs
        fast = conv(x, style, out_channels=12, impl="fast")
    assert ref.shape == (batch, 12, size * (2 if upsample else 1), size * (2 if upsample else 1))
    assert (fast - ref).abs().max().item() <= ATOL


def test_styled_conv_and_to_rgb_fast_match_ref():
    torch.manual_seed(0)
    sc = StyledConv(8, 8, 3, 16)
    rgb = ToRGB(8, 16)
    for p in list(sc.parameters()) + list(rgb.parameters()):
        p.data.normal_()
    x, style, noise = torch.randn(2, 8, 16, 16), torch.randn(2, 16), torch.randn(1, 1, 16, 16)
    skip = torch.randn(2, 3, 8, 8)
    with torch.inference_mode():
        for impl_noise in (noise, None):
            a = sc(x, style, impl_noise, impl="ref")
            b = sc(x, style, impl_noise, impl="fast")
            assert (a - b).abs().max().item() <= ATOL
        a = rgb(x, style, skip, impl="ref")
        b = rgb(x, style, skip, impl="fast")
    assert (a - b).abs().max().item() <= ATOL
