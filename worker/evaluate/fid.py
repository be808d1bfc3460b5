"""Fréchet Inception Distance of a model's sub-networks against a data set (or the full model).

FID = |mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2)) over Inception pool features. The trace
of the matrix square root is computed from eigenvalues of the symmetric ``A S_b A`` with
``A = S_a^(1/2)``: the same number as ``sqrtm(S_a S_b)`` but stable for the rank-deficient
covariances a few hundred images give (tests compare it with scipy's ``sqrtm``).

Like the Anycost paper, every cost configuration (channel ratio x resolution) gets its own FID.
The reference for a sub-network at resolution R is the data set resized to R (box filter after a
centre crop), or, without a data set, the full-cost model's own samples (other seeds) downsampled
to R, which measures how far a preview's realism falls below the final's. Data set statistics are
cached per folder, resolution and Inception file (``ANYCOST_EVAL_CACHE_DIR``).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from shared.codes.errors import ErrorCode
from shared.recipe.parse import Cost
from worker.evaluate.common import (
    EvaluationError,
    batches,
    downsample,
    full_cost,
    render,
    sample_wplus,
)
from worker.evaluate.inception import FEATURES, Inception

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
#: The reference samples of the full model use seeds far from the evaluated ones.
REFERENCE_SEED_OFFSET = 1_000_003


class FeatureStats:
    """Running mean and covariance of feature vectors (constant memory for any n); the rows
    themselves too while there are at most ``keep``, for the low-rank FID below."""

    def __init__(self, dim: int = FEATURES, keep: int = 1024):
        self.n = 0
        self.total = np.zeros(dim)
        self.outer = np.zeros((dim, dim))
        self.keep = keep
        self._rows: list[np.ndarray] | None = []

    def add(self, feats: np.ndarray) -> None:
        feats = np.asarray(feats, dtype=np.float64)
        self.n += feats.shape[0]
        self.total += feats.sum(0)
        self.outer += feats.T @ feats
        if self._rows is not None:
            self._rows = self._rows + [feats] if self.n <= self.keep else None

    @property
    def mean(self) -> np.ndarray:
        return self.total / max(1, self.n)

    @property
    def cov(self) -> np.ndarray:
        if self.n < 2:
            raise ValueError("a covariance needs at least two samples")
        mu = self.mean
        return (self.outer - self.n * np.outer(mu, mu)) / (self.n - 1)

    def factor(self) -> np.ndarray | None:
        """``F`` [n, D] with ``F.T @ F == cov`` (centred rows / sqrt(n - 1)), when kept."""
        if self._rows is None or self.n < 2:
            return None
        return (np.concatenate(self._rows) - self.mean) / np.sqrt(self.n - 1)

    @classmethod
    def of(cls, feats: np.ndarray) -> FeatureStats:
        stats = cls(np.asarray(feats).shape[1])
        stats.add(feats)
        return stats


def _sqrt_psd(matrix: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def _trace_sqrt_psd(matrix: np.ndarray) -> float:
    return float(np.sqrt(np.clip(np.linalg.eigvalsh((matrix + matrix.T) / 2), 0, None)).sum())


def frechet_distance(mu_a: np.ndarray, cov_a: np.ndarray, mu_b: np.ndarray,
                     cov_b: np.ndarray) -> float:
    """The Fréchet distance of two Gaussians (means ``[D]``, covariances ``[D, D]``)."""
    root_a = _sqrt_psd(cov_a)
    trace_root = _trace_sqrt_psd(root_a @ cov_b @ root_a)
    diff = np.asarray(mu_a) - np.asarray(mu_b)
    value = float(diff @ diff + np.trace(cov_a) + np.trace(cov_b) - 2 * trace_root)
    return max(0.0, value)  # rounding can leave a tiny negative for identical sets


def frechet_of_stats(a: FeatureStats, b: FeatureStats) -> float:
    """``frechet_distance`` of two sets' statistics. When one set has n <= ``keep`` samples its
    covariance is ``F.T @ F`` with F [n, D], and tr((S_o F.T F)^(1/2)) is the trace root of the
    small ``F S_o F.T`` [n, n]: the same value, without a D x D (2048) eigen-decomposition."""
    small = [s for s in (a, b) if s.factor() is not None]
    if not small:
        return frechet_distance(a.mean, a.cov, b.mean, b.cov)
    low = min(small, key=lambda s: s.n)
    other = b if low is a else a
    factor, other_cov = low.factor(), other.cov
    trace_root = _trace_sqrt_psd(factor @ other_cov @ factor.T)
    diff = a.mean - b.mean
    value = float(diff @ diff + (factor ** 2).sum() + np.trace(other_cov) - 2 * trace_root)
    return max(0.0, value)


def fid_of_features(feats_a: np.ndarray, feats_b: np.ndarray) -> float:
    return frechet_of_stats(FeatureStats.of(feats_a), FeatureStats.of(feats_b))


# ------------------------------------------------------------------------------ data sets


def image_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise EvaluationError(ErrorCode.EVAL_DATA_MISSING, f"the data set folder {folder} does not exist")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if len(files) < 2:
        raise EvaluationError(ErrorCode.EVAL_DATA_MISSING,
                              f"the data set folder {folder} has {len(files)} image(s); FID needs at least 2")
    return files


def _load_square(path: Path, resolution: int, max_pixels: int) -> torch.Tensor | None:
    """One image file -> ``[3, R, R]`` in [-1, 1] (centre crop, area resize); None if unreadable."""
    from worker.render.imaging import decode_image
    from worker.render.imaging.errors import ImageError

    try:
        rgb = decode_image(path.read_bytes(), max_pixels).rgb
    except (ImageError, OSError):
        return None
    h, w = rgb.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    x = torch.from_numpy(np.array(rgb[top:top + side, left:left + side], order="C"))
    x = x.permute(2, 0, 1)[None].float() / 127.5 - 1.0
    if side != resolution:
        x = F.interpolate(x, size=(resolution, resolution), mode="area" if side > resolution
                          else "bilinear")
    return x[0]


def _cache_key(folder: Path, files: Sequence[Path], resolution: int, inception_sha: str) -> str:
    listing = [(str(p.relative_to(folder)), p.stat().st_size, p.stat().st_mtime_ns) for p in files]
    blob = json.dumps({"folder": str(folder.resolve()), "files": listing, "resolution": resolution,
                       "inception": inception_sha}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def dataset_statistics(folder: str | Path, resolution: int, inception: Inception,
                       cache_dir: str | Path | None = None, batch_size: int = 16,
                       max_pixels: int = 50_000_000) -> tuple[FeatureStats, dict]:
    """Feature statistics of every image under ``folder`` at ``resolution``; cached on disk.
    Returns (stats, info) with info: path, images, skipped, cached."""
    folder = Path(folder)
    files = image_files(folder)
    key = _cache_key(folder, files, resolution, inception.sha256)
    cache = Path(cache_dir) / f"fid-stats-{key}.npz" if cache_dir else None
    info = {"kind": "folder", "path": str(folder), "resolution": resolution}
    if cache is not None and cache.is_file():
        with np.load(cache, allow_pickle=False) as data:
            stats = FeatureStats(int(data["total"].shape[0]))
            stats.n, stats.total, stats.outer = int(data["n"]), data["total"], data["outer"]
            stats._rows = [data["rows"]] if data["rows"].size else None
            return stats, {**info, "images": stats.n, "skipped": int(data["skipped"]), "cached": True}
    stats, skipped, chunk = FeatureStats(), 0, []
    for i, path in enumerate(files):
        image = _load_square(path, resolution, max_pixels)
        if image is None:
            skipped += 1
        else:
            chunk.append(image)
        if len(chunk) == batch_size or (i == len(files) - 1 and chunk):
            stats.add(inception.features(torch.stack(chunk), batch_size))
            chunk = []
    if stats.n < 2:
        raise EvaluationError(ErrorCode.EVAL_DATA_MISSING,
                              f"the data set folder {folder} has fewer than 2 readable images")
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(".tmp.npz")
        rows = stats.factor()
        kept = np.zeros((0, stats.total.shape[0])) if rows is None else np.concatenate(stats._rows)
        np.savez(tmp, n=stats.n, total=stats.total, outer=stats.outer, rows=kept, skipped=skipped)
        tmp.replace(cache)
    return stats, {**info, "images": stats.n, "skipped": skipped, "cached": False}


# ------------------------------------------------------------------------------ the metric


def _generated_stats(generator, inception: Inception, n: int, seed: int, cost: Cost,
                     resolutions: Sequence[int], batch_size: int) -> Iterator[tuple[int, FeatureStats]]:
    """Statistics of ``n`` samples rendered at ``cost``, box-filtered to each of ``resolutions``."""
    stats = {r: FeatureStats() for r in resolutions}
    wplus = sample_wplus(generator, n, seed)
    for part in batches(n, batch_size):
        images = render(generator, wplus[part], cost)
        for r in resolutions:
            stats[r].add(inception.features(downsample(images, r), batch_size))
    yield from stats.items()


def evaluate_fid(bundle, inception: Inception, n: int, costs: Sequence[Cost], seed: int = 0,
                 data_dir: str | Path | None = None, cache_dir: str | Path | None = None,
                 batch_size: int = 8, progress=None) -> dict:
    """FID of ``n`` samples of each cost against the data set (or the full model's samples)."""
    if n < 2:
        raise ValueError("FID needs n >= 2")
    started = time.perf_counter()
    generator = bundle.generator
    resolutions = sorted({c.resolution for c in costs})
    references: dict[int, FeatureStats] = {}
    if data_dir is not None:
        data: dict = {}
        for r in resolutions:
            references[r], info = dataset_statistics(data_dir, r, inception, cache_dir, batch_size)
            data = {k: v for k, v in info.items() if k != "resolution"}
    else:
        full = full_cost(bundle.resolution)
        ref_seed = seed + REFERENCE_SEED_OFFSET
        references = dict(_generated_stats(generator, inception, n, ref_seed, full, resolutions,
                                           batch_size))
        data = {"kind": "generator", "cost": full.as_dict(), "seed": ref_seed, "images": n}
    results = []
    for cost in costs:
        t0 = time.perf_counter()
        (_, stats), = _generated_stats(generator, inception, n, seed, cost, [cost.resolution],
                                       batch_size)
        ref = references[cost.resolution]
        value = frechet_of_stats(stats, ref)
        results.append({**cost.as_dict(), "fid": round(value, 6),
                        "seconds": round(time.perf_counter() - t0, 3)})
        if progress is not None:
            progress(results[-1])
    return {"metric": "fid", "n": n, "seed": seed, "data": data,
            "inception": {"sha256": inception.sha256, "file": inception.path.name},
            "results": results, "seconds": round(time.perf_counter() - started, 3)}
