"""Imported e4e / pSp checkpoints reproduce the original code's codes and images, through the
same calls the photo pipeline makes (``load_bundle``, ``bundle.encoder(x)``, the generator)."""

from __future__ import annotations

import pytest
import torch

from tests.encoders import reference
from worker.anycost import weights
from worker.anycost.bundle import load_bundle
from worker.anycost.checkpoints import load_encoder, load_latent_avg
from worker.anycost.style_encoder import StyleEncoder

TOL = 1e-4  # of the output's range, as the issue asks

pytestmark = pytest.mark.slow


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / (b.max() - b.min()))


@pytest.mark.parametrize("method", ["e4e", "psp"])
def test_codes_and_images_match_the_original(method, imported):
    directory, done = imported(method)
    assert done.method == method and [e.kind for e in done.entries] == ["generator", "encoder"]
    bundle = load_bundle(f"ref-{method}", directory)
    assert isinstance(bundle.encoder, StyleEncoder) and bundle.encoder_method == method
    assert weights.encoder_method(f"ref-{method}", directory) == method
    want = reference.expected(method)
    with torch.no_grad():
        codes = bundle.encoder(reference.inputs(method))
        assert codes.shape == want["codes"].shape == (3, 14, 512)
        assert rel_err(codes, want["codes"]) < TOL
        for impl in ("ref", "fast"):
            images = bundle.generator.synthesis(codes, noise_mode="const", impl=impl)
            assert rel_err(images, want["images"]) < TOL


def test_latent_avg_is_added_only_where_the_opts_say_so(imported):
    """e4e (start_from_latent_avg) adds the file's latent_avg, pSp (not) adds nothing: without
    it e4e's codes move by exactly latent_avg, and pSp's file carries zeros."""
    ckpt = reference.rebuild("e4e")
    avg = ckpt["latent_avg"]
    e4e = load_encoder(imported("e4e")[0] / "encoder_ref-e4e.pt")
    psp = load_encoder(imported("psp")[0] / "encoder_ref-psp.pt")
    assert torch.equal(e4e.latent_avg, avg)
    assert torch.equal(psp.latent_avg, torch.zeros(14, 512))
    x = reference.inputs("e4e")[:1]
    with torch.no_grad():
        with_avg = e4e(x)
        e4e.latent_avg.zero_()
        assert torch.allclose(with_avg - e4e(x), avg[None], atol=1e-5)
    # both files carry the decoder's mean w: it becomes the generator's w_avg
    for method in ("e4e", "psp"):
        directory = imported(method)[0]
        assert torch.allclose(load_latent_avg(directory / f"generator_ref-{method}.pt"), avg[0])


def test_the_two_encoders_are_not_interchangeable(imported):
    """Same layers, different reading: e4e's forward on pSp's weights does not give pSp's codes
    (the method is taken from the file, not guessed)."""
    psp = load_encoder(imported("psp")[0] / "encoder_ref-psp.pt")
    x = reference.inputs("psp")[:1]
    with torch.no_grad():
        right = psp(x)
        psp.method = "e4e"
        wrong = psp(x)
    assert rel_err(wrong, right) > 100 * TOL
