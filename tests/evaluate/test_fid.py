"""FID: the distance itself against scipy's sqrtm, its behaviour on shifted and noised sets, the
offline Inception (hash pinned, checked before loading) and FID of the tiny model's costs."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch
from PIL import Image

from shared.recipe.parse import Cost
from worker.evaluate.common import EvaluationError, render, sample_wplus
from worker.evaluate.fid import evaluate_fid
from worker.evaluate.frechet import (
    FeatureStats,
    fid_of_features,
    frechet_distance,
    frechet_of_stats,
)
from worker.evaluate.inception import PINNED_SHA256, load_inception, packaged_file, sha256_of


def _features(n: int = 400, dim: int = 48, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mixing = rng.normal(size=(dim, dim)) / np.sqrt(dim)
    return rng.normal(size=(n, dim)) @ mixing + rng.normal(size=dim)


def _scipy_fid(a: np.ndarray, b: np.ndarray) -> float:
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = scipy.linalg.sqrtm(cov_a @ cov_b).real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * root))


def test_matches_a_direct_scipy_computation():
    a, b = _features(seed=1), _features(seed=2) * 1.3 + 0.2
    assert fid_of_features(a, b) == pytest.approx(_scipy_fid(a, b), abs=1e-3)
    noisy = a + np.random.default_rng(3).normal(scale=0.5, size=a.shape)
    assert fid_of_features(a, noisy) == pytest.approx(_scipy_fid(a, noisy), abs=1e-3)


def test_low_rank_path_equals_the_full_computation():
    """Fewer samples than dimensions (as with a few Inception features): the small-matrix FID
    equals the D x D eigen computation and scipy's sqrtm."""
    a, b = _features(n=20, dim=64, seed=4), _features(n=30, dim=64, seed=5) + 0.1
    big_a, big_b = FeatureStats(64, keep=0), FeatureStats(64, keep=0)
    big_a.add(a)
    big_b.add(b)
    assert big_a.factor() is None  # rows not kept: the D x D path
    full = frechet_of_stats(big_a, big_b)
    assert fid_of_features(a, b) == pytest.approx(full, abs=1e-4)
    assert fid_of_features(a, b) == pytest.approx(_scipy_fid(a, b), abs=1e-3)
    assert full == pytest.approx(frechet_distance(a.mean(0), np.cov(a, rowvar=False),
                                                  b.mean(0), np.cov(b, rowvar=False)), abs=1e-4)


def test_running_statistics_equal_numpy():
    feats = _features(n=123)
    stats = FeatureStats(feats.shape[1])
    for part in np.array_split(feats, 5):
        stats.add(part)
    np.testing.assert_allclose(stats.mean, feats.mean(0), atol=1e-10)
    np.testing.assert_allclose(stats.cov, np.cov(feats, rowvar=False), atol=1e-10)


def test_self_is_zero_and_grows_with_shift_and_noise():
    feats = _features()
    assert fid_of_features(feats, feats) == pytest.approx(0.0, abs=1e-6)
    rng = np.random.default_rng(7)
    noise = rng.normal(size=feats.shape)
    shifts = [fid_of_features(feats, feats + s) for s in (0.01, 0.1, 0.5, 1.0)]
    noised = [fid_of_features(feats, feats + s * noise) for s in (0.05, 0.2, 0.5, 1.0)]
    for values in (shifts, noised):
        assert values[0] > 0
        assert all(x < y for x, y in zip(values, values[1:], strict=False)), values
    mu, cov = feats.mean(0), np.cov(feats, rowvar=False)
    assert frechet_distance(mu, cov, mu + 1.0, cov) == pytest.approx(feats.shape[1], rel=1e-9)


def test_packaged_inception_is_pinned(inception):
    assert packaged_file() is not None and inception.path == packaged_file()
    assert inception.sha256 == PINNED_SHA256 == sha256_of(inception.path)


def test_missing_or_unknown_inception_file_is_a_clear_error(tmp_path):
    with pytest.raises(EvaluationError) as missing:
        load_inception(str(tmp_path / "nope.pt"), "ab" * 32)
    assert missing.value.code == "inception_missing" and "nope.pt" in missing.value.message
    fake = tmp_path / "inception.pt"
    fake.write_bytes(b"not a network")
    with pytest.raises(EvaluationError) as no_hash:
        load_inception(str(fake))
    assert no_hash.value.code == "inception_missing"
    assert "ANYCOST_INCEPTION_SHA256" in no_hash.value.message
    with pytest.raises(EvaluationError) as wrong:  # checked before torch.jit.load sees it
        load_inception(str(fake), PINNED_SHA256)
    assert wrong.value.code == "inception_missing" and "sha256" in wrong.value.message


@pytest.mark.slow
def test_inception_fid_of_renders_grows_with_noise(inception, tiny_bundle):
    images = render(tiny_bundle.generator, sample_wplus(tiny_bundle.generator, 4, seed=5),
                    Cost(1.0, 64))
    clean = inception.features(images)
    assert clean.shape == (4, 2048)
    noise = torch.randn(images.shape, generator=torch.Generator().manual_seed(0))
    values = [fid_of_features(clean, inception.features((images + s * noise).clamp(-1, 1)))
              for s in (0.1, 0.4)]
    assert fid_of_features(clean, clean) == pytest.approx(0.0, abs=1e-3)
    assert 0 < values[0] < values[1], values


@pytest.mark.slow
def test_fid_against_a_data_folder_is_cached(inception, tiny_bundle, tmp_path):
    data = tmp_path / "faces"
    data.mkdir()
    rgb = ((render(tiny_bundle.generator, sample_wplus(tiny_bundle.generator, 4, seed=9),
                   Cost(1.0, 64)) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()
    for i, face in enumerate(rgb):
        Image.fromarray(face).save(data / f"{i}.png")
    (data / "broken.png").write_bytes(b"\x89PNG broken")  # skipped, not fatal
    cache = tmp_path / "cache"
    first = evaluate_fid(tiny_bundle, inception, 2, [Cost(0.5, 32)], seed=1, data_dir=data,
                         cache_dir=cache)
    second = evaluate_fid(tiny_bundle, inception, 2, [Cost(0.5, 32)], seed=1, data_dir=data,
                          cache_dir=cache)
    assert first["data"]["images"] == 4 and first["data"]["skipped"] == 1
    assert first["data"]["cached"] is False and second["data"]["cached"] is True
    assert first["results"][0]["fid"] == pytest.approx(second["results"][0]["fid"], abs=1e-9)
    assert first["results"][0]["fid"] > 0
    assert first["inception"]["sha256"] == PINNED_SHA256
    with pytest.raises(EvaluationError) as empty:
        evaluate_fid(tiny_bundle, inception, 2, [Cost(0.5, 32)], data_dir=tmp_path / "none")
    assert empty.value.code == "eval_data_missing"
