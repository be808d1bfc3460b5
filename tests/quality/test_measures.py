"""The quality measures themselves: realism logits (per image, at the discriminator's size),
PSNR/LPIPS consistency, the 0..1 score and sorting a batch's items by realism."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

from shared.items import quality as shared_quality
from tests.quality.conftest import random_discriminator
from worker.render import quality


@pytest.mark.slow
def test_realism_logit_is_per_image_and_at_the_discriminators_size():
    d = random_discriminator(64)
    assert quality.discriminator_resolution(d) == 64
    torch.manual_seed(0)
    images = torch.rand(3, 3, 64, 64) * 2 - 1
    batch = quality.realism_logits(d, images)
    alone = [quality.realism_logits(d, images[i:i + 1])[0] for i in range(3)]
    assert batch == pytest.approx(alone, abs=1e-5)  # siblings do not change a score
    with torch.no_grad():
        assert batch[1] == pytest.approx(float(d(images[1:2])), abs=1e-5)
    assert len(set(round(v, 4) for v in batch)) == 3  # the images are told apart
    # A 32 px render is scored on its bilinear upsampling to D's 64 px.
    small = images[:, :, ::2, ::2].contiguous()
    up = torch.nn.functional.interpolate(small, size=(64, 64), mode="bilinear",
                                         align_corners=False)
    assert quality.realism_logits(d, small) == pytest.approx(quality.realism_logits(d, up),
                                                             abs=1e-5)
    with pytest.raises(ValueError):
        quality.realism_logits(d, images[:, :2])


def test_score_is_sigmoid_of_logit():
    for logit in (-800.0, -2.5, 0.0, 1.25, 900.0):
        got = shared_quality.realism(logit)
        assert got["logit"] == round(logit, 4)
        expected = 1 / (1 + math.exp(-max(-700, min(700, logit))))
        assert got["score"] == pytest.approx(expected, abs=1e-4) and 0 <= got["score"] <= 1
    assert shared_quality.realism(None) is None
    assert shared_quality.realism(float("nan")) is None


def test_psnr_and_consistency():
    torch.manual_seed(1)
    a = torch.rand(1, 3, 32, 32) * 2 - 1
    assert quality.psnr(a, a) == quality.PSNR_IDENTICAL
    noisy = (a + 0.02 * torch.randn_like(a)).clamp(-1, 1)
    mse = float(((quality._quantise(a) - quality._quantise(noisy)) ** 2).mean())
    assert quality.psnr(a, noisy) == pytest.approx(10 * math.log10(255 ** 2 / mse), abs=1e-3)
    # A 64 px final that is the preview upsampled is compared at the preview's 32 px.
    final = torch.nn.functional.interpolate(a, size=(64, 64), mode="nearest")
    got = quality.consistency(final, a)
    assert got["resolution"] == 32 and got["psnr"] > 60
    other = quality.consistency(torch.rand(1, 3, 64, 64) * 2 - 1, a)
    assert other["psnr"] < 15
    assert got["lpips"] is None or got["lpips"] < other["lpips"]
    # A render gone NaN gets no number at all (JSON and SQL take none), not a made-up one.
    broken = torch.full_like(a, float("nan"))
    assert quality.psnr(broken, a) is None
    assert quality.item_logit([float("nan"), 1.0, 3.0]) == 2.0
    assert quality.item_logit([float("nan")]) is None and quality.item_logit([]) is None
    assert quality.finite(float("inf")) is None and quality.finite(0.1234567) == 0.123457


def _item(position, preview=None, final=None):
    return SimpleNamespace(position=position, preview_realism=preview, final_realism=final)


def test_sort_items_by_realism():
    items = [_item(0, 0.5), _item(1), _item(2, -1.0, final=3.0), _item(3, 2.0), _item(4)]
    ids = lambda xs: [i.position for i in xs]  # noqa: E731
    assert ids(shared_quality.sort_items(items, "realism")) == [2, 3, 0, 1, 4]
    assert ids(shared_quality.sort_items(items, "realism", "asc")) == [0, 3, 2, 1, 4]
    assert ids(shared_quality.sort_items(items[::-1])) == [0, 1, 2, 3, 4]
    assert ids(shared_quality.sort_items(items, "position", "desc")) == [4, 3, 2, 1, 0]
    with pytest.raises(ValueError):
        shared_quality.sort_items(items, "colour")
    with pytest.raises(ValueError):
        shared_quality.sort_items(items, "realism", "sideways")
