"""PPL's protocol switches change the sampled pairs as documented (end / full, W lerp / Z slerp,
crop and NVIDIA's downsampling factor), noise is drawn per batch on a private copy and shared by
the two images of a pair, nothing is clamped, runs repeat under a seed, and the distance network
(NVIDIA's TorchScript vgg16.pt or the lpips package's VGG) is hash-checked and recorded."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from shared.recipe.parse import Cost
from worker.evaluate.common import EvaluationError
from worker.evaluate.ppl import (
    PROTOCOLS,
    evaluate_ppl,
    pair_codes,
    path_lengths,
    prepare_images,
    sample_pairs,
    slerp,
    with_options,
)
from worker.evaluate.ppl_distance import NVIDIA_VGG16_SHA256, load_nvidia_vgg16, load_ppl_distance
from worker.evaluate.runner import Request, run

FULL = Cost(1.0, 64)


class Recorder:
    """A distance that keeps what it was given (MSE per pair): the pairs PPL renders."""

    def __init__(self):
        self.pairs: list[tuple[torch.Tensor, torch.Tensor]] = []

    def __call__(self, a, b):
        self.pairs.append((a.clone(), b.clone()))
        return (a - b).square().flatten(1).mean(1)


def test_end_and_full_sampling_and_the_two_spaces(tiny_bundle):
    g = tiny_bundle.generator
    end, full = PROTOCOLS["ppl2_wend"], with_options("ppl2_wend", sampling="full")
    z0, z1, t = sample_pairs(6, g.style_dim, 5, end)
    assert torch.equal(t, torch.zeros(6, 1))
    f0, f1, tf = sample_pairs(6, g.style_dim, 5, full)
    assert torch.equal(f0, z0) and torch.equal(f1, z1)  # the same endpoints, other t
    assert bool(((tf > 0) & (tf < 1)).all()) and len(set(tf.flatten().tolist())) == 6
    with torch.no_grad():
        w0, w1 = g.mapping(z0), g.mapping(z1)
        a, b = pair_codes(g, z0, z1, t, end)  # W, end: w0 and one epsilon towards w1
        assert torch.equal(a, w0)
        assert torch.allclose(b, w0 + 1e-4 * (w1 - w0), atol=1e-6)
        a, b = pair_codes(g, z0, z1, tf, full)
        assert torch.allclose(a, torch.lerp(w0, w1, tf), atol=1e-6)
        zspace = with_options("ppl_zend")
        a, b = pair_codes(g, z0, z1, t, zspace)  # Z, end: the mapping of the normalised z0
        assert torch.allclose(a, g.mapping(z0 / z0.norm(dim=1, keepdim=True)), atol=1e-5)
        assert torch.allclose(a, w0, atol=1e-4)  # the mapping normalises z itself
        assert not torch.allclose(b, pair_codes(g, z0, z1, t, end)[1], atol=1e-6)
    # slerp: unit norm, on the great circle, the angle grows linearly with t
    u = slerp(z0, z1, torch.full((6, 1), 0.5))
    assert torch.allclose(u.norm(dim=1), torch.ones(6), atol=1e-5)
    n0, n1 = z0 / z0.norm(dim=1, keepdim=True), z1 / z1.norm(dim=1, keepdim=True)
    angle = torch.acos((n0 * n1).sum(1))
    assert torch.allclose(torch.acos((u * n0).sum(1).clamp(-1, 1)), angle / 2, atol=1e-3)


def test_protocols_by_nvidias_names_and_overrides():
    assert (PROTOCOLS["ppl2_wend"].crop, PROTOCOLS["ppl_wend"].crop) == (False, True)
    assert PROTOCOLS["ppl_zfull"].space == "z" and PROTOCOLS["ppl_zfull"].sampling == "full"
    legacy = PROTOCOLS["legacy"]
    assert legacy.noise == "const" and legacy.clamp and legacy.crop
    assert with_options("ppl2_wend") is PROTOCOLS["ppl2_wend"]
    custom = with_options("ppl2_wend", space="z", crop=True)
    assert custom.name == "custom" and custom.space == "z" and custom.crop
    assert replace(with_options("ppl2_wend", crop=True), name="ppl_wend") == PROTOCOLS["ppl_wend"]
    for bad in ({"name": "ppl3"}, {"space": "x"}, {"sampling": "mid"}):
        with pytest.raises(ValueError):
            with_options(**bad)


def test_crop_and_nvidias_downsampling_factor():
    image = torch.arange(64.0).repeat(64, 1).expand(1, 3, 64, 64)  # value = column
    cropped = prepare_images(image, PROTOCOLS["ppl_wend"])
    assert cropped.shape[-2:] == (32, 32) and float(cropped[0, 0, 0, 0]) == 16.0  # columns 16..48
    assert prepare_images(image, PROTOCOLS["ppl2_wend"]).shape[-1] == 64
    big = torch.zeros(1, 3, 1024, 1024)
    assert prepare_images(big, PROTOCOLS["ppl2_wend"]).shape[-1] == 256
    assert prepare_images(big, PROTOCOLS["ppl_wend"]).shape[-1] == 128  # factor from 1024: 4
    assert prepare_images(torch.zeros(1, 3, 512, 512), PROTOCOLS["ppl_wend"]).shape[-1] == 128


def test_noise_per_batch_shared_by_a_pair_and_nothing_clamped(tiny_bundle):
    g = tiny_bundle.generator
    buffers = [b.clone() for b in g.noises.buffers()]
    rec = Recorder()
    first = path_lengths(tiny_bundle, rec, 4, FULL, seed=2, batch_size=2)
    assert torch.equal(torch.as_tensor(first), torch.as_tensor(
        path_lengths(tiny_bundle, Recorder(), 4, FULL, seed=2, batch_size=2)))  # repeatable
    assert all(torch.equal(a, b) for a, b in zip(buffers, g.noises.buffers(), strict=True))
    (a0, b0), (a1, _) = rec.pairs
    assert float((a0 - b0).abs().max()) < 0.05  # one noise for both images of a pair
    fixed = Recorder()
    path_lengths(tiny_bundle, fixed, 4, FULL, seed=2, batch_size=2,
                 protocol=replace(PROTOCOLS["ppl2_wend"], noise="const"))
    assert not torch.allclose(a0, fixed.pairs[0][0], atol=1e-3)  # fresh noise, not the buffers
    other = Recorder()  # the same codes in one batch of 4: batch 1's pair gets batch 0's noise
    path_lengths(tiny_bundle, other, 4, FULL, seed=2, batch_size=4)
    assert torch.allclose(other.pairs[0][0][:2], a0, atol=1e-5)
    assert not torch.allclose(other.pairs[0][0][2:], a1, atol=1e-3)
    scaled = replace(tiny_bundle, generator=_scaled(g, 3.0))  # renders well beyond [-1, 1]
    unclamped, clamped = Recorder(), Recorder()
    path_lengths(scaled, unclamped, 2, FULL, seed=2)
    path_lengths(scaled, clamped, 2, FULL, seed=2, protocol=PROTOCOLS["legacy"])
    assert float(unclamped.pairs[0][0].abs().max()) > 1.5
    assert float(clamped.pairs[0][0].abs().max()) <= 1.0


def _scaled(g, factor: float):
    import copy

    out = copy.deepcopy(g)
    with torch.no_grad():
        for rgb in [out.to_rgb1, *out.to_rgbs]:
            rgb.conv.weight.mul_(factor)
            rgb.bias.mul_(factor)
    return out


def _fake_vgg16(path):
    """A TorchScript module with the interface of NVIDIA's vgg16.pt (features of [0, 255])."""

    class Fake(torch.nn.Module):
        def forward(self, img: torch.Tensor, resize_images: bool = True,
                    return_lpips: bool = False) -> torch.Tensor:
            return img.flatten(1) / 255.0

    torch.jit.save(torch.jit.script(Fake()), str(path))


def test_nvidia_vgg16_is_hash_checked_and_recorded(tiny_bundle, eval_settings, tmp_path):
    from worker.evaluate.inception import sha256_of

    path = tmp_path / "vgg16.pt"
    _fake_vgg16(path)
    with pytest.raises(EvaluationError) as wrong:  # the pinned hash is NVIDIA's file's
        load_nvidia_vgg16(str(path))
    assert wrong.value.code == "lpips_missing" and NVIDIA_VGG16_SHA256 in wrong.value.message
    sha = sha256_of(path)
    dist = load_nvidia_vgg16(str(path), sha)
    a, b = torch.rand(2, 3, 8, 8) * 2 - 1, torch.rand(2, 3, 8, 8) * 2 - 1
    expected = ((a - b) / 2).square().flatten(1).sum(1)  # [-1, 1] -> [0, 255] -> / 255
    assert torch.allclose(dist(a, b), expected, atol=1e-5)
    settings = replace(eval_settings, ppl_vgg16_path=str(path), ppl_vgg16_sha256=sha)
    assert load_ppl_distance(settings).name == "nvidia_vgg16"  # auto: NVIDIA's when configured
    assert load_ppl_distance(settings, "lpips").name == "lpips_vgg"
    with pytest.raises(EvaluationError, match="ANYCOST_PPL_VGG16_PATH"):
        load_ppl_distance(eval_settings, "nvidia")
    result = run(Request("ppl", n=2), tiny_bundle, settings)
    assert result["distance"] == {"name": "nvidia_vgg16", "files": [{"path": str(path),
                                                                      "sha256": sha}]}
    packaged = run(Request("ppl", n=2, protocol="ppl_zfull"), tiny_bundle, eval_settings)
    assert packaged["distance"]["name"] == "lpips_vgg" and len(packaged["distance"]["files"]) == 2
    assert packaged["protocol"]["space"] == "z" and packaged["protocol"]["sampling"] == "full"


@pytest.mark.slow
def test_ppl_is_repeatable_under_a_seed_for_every_protocol(tiny_bundle):
    for name in PROTOCOLS:
        one = evaluate_ppl(tiny_bundle, Recorder(), 4, [FULL], seed=9, protocol=name)
        two = evaluate_ppl(tiny_bundle, Recorder(), 4, [FULL], seed=9, protocol=name)
        other = evaluate_ppl(tiny_bundle, Recorder(), 4, [FULL], seed=10, protocol=name)
        assert one["results"][0]["ppl"] == two["results"][0]["ppl"], name
        assert one["results"][0]["ppl"] != other["results"][0]["ppl"], name
        assert one["protocol"]["name"] == name and one["distance"] == {"name": "custom"}


def test_the_models_page_names_the_protocol_and_the_distance_network():
    from web.portal.model_page import settings_of

    files = [{"path": "/w/vgg.pth", "sha256": "ab" * 32}, {"path": "/w/v.pth", "sha256": "cd" * 32}]
    shown = settings_of({"kind": "ppl", "params": {"n": 2}, "result": {
        "protocol": {"name": "ppl2_wend"}, "distance": {"name": "lpips_vgg", "files": files}}})
    assert shown["protocol"] == "ppl2_wend"
    assert shown["distance"] == "lpips_vgg (sha256 abababababab\u2026, sha256 cdcdcdcdcdcd\u2026)"
    fid = settings_of({"kind": "fid", "params": {"n": 2}, "result": {
        "protocol": {"name": "nvidia"}, "inception": {"sha256": "ef" * 32}}})
    assert fid["protocol"] == "nvidia" and "distance" not in fid
