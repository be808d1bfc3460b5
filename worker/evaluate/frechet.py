"""The Fréchet distance behind FID and the feature statistics it is computed from.

FID = |mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2)) over Inception pool features. The trace
of the matrix square root is computed from eigenvalues of the symmetric ``A S_b A`` with
``A = S_a^(1/2)``: the same number as ``sqrtm(S_a S_b)`` but stable for the rank-deficient
covariances a few hundred images give (tests compare it with scipy's ``sqrtm``).

Covariance: ``ddof=1`` (numpy's ``np.cov``, clean-fid, TTUR) or ``ddof=0`` (divided by n, as
NVIDIA's stylegan2-ada / stylegan3 metrics compute it; at 50k samples the two differ by 2e-5
relative). ``GaussianStats`` holds a mean and covariance read from an ``.npz`` file (``mu``,
``sigma``: the layout of clean-fid and TTUR statistics files), loaded without pickle.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from shared.codes.errors import ErrorCode
from worker.evaluate.common import EvaluationError
from worker.evaluate.inception import FEATURES


class FeatureStats:
    """Running mean and covariance of feature vectors (constant memory for any n); the rows
    themselves too while there are at most ``keep``, for the low-rank FID below."""

    def __init__(self, dim: int = FEATURES, keep: int = 1024, ddof: int = 1):
        self.n = 0
        self.total = np.zeros(dim)
        self.outer = np.zeros((dim, dim))
        self.keep = keep
        self.ddof = ddof
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
        return (self.outer - self.n * np.outer(mu, mu)) / (self.n - self.ddof)

    def rows(self) -> np.ndarray | None:
        """The kept feature rows ``[n, D]`` (None once more than ``keep`` were added)."""
        return None if self._rows is None else np.concatenate(self._rows)

    def factor(self) -> np.ndarray | None:
        """``F`` [n, D] with ``F.T @ F == cov`` (centred rows / sqrt(n - ddof)), when kept."""
        if self._rows is None or self.n < 2:
            return None
        return (np.concatenate(self._rows) - self.mean) / np.sqrt(self.n - self.ddof)

    @classmethod
    def from_sums(cls, n: int, total: np.ndarray, outer: np.ndarray, rows: np.ndarray | None,
                  ddof: int = 1) -> FeatureStats:
        """Statistics saved earlier (``n``, the sums and the rows when kept)."""
        stats = cls(int(total.shape[0]), ddof=ddof)
        stats.n, stats.total, stats.outer = int(n), total, outer
        stats._rows = [rows] if rows is not None and rows.size else None
        return stats

    @classmethod
    def of(cls, feats: np.ndarray, ddof: int = 1) -> FeatureStats:
        stats = cls(np.asarray(feats).shape[1], ddof=ddof)
        stats.add(feats)
        return stats


@dataclass(frozen=True)
class GaussianStats:
    """A mean ``[D]`` and covariance ``[D, D]`` from a statistics file (no feature rows)."""

    mean: np.ndarray
    cov: np.ndarray
    n: int | None = None

    def factor(self) -> None:
        return None


def load_stats_npz(path: str | Path, dim: int = FEATURES) -> GaussianStats:
    """``mu`` [D] and ``sigma`` [D, D] from an ``.npz`` file (clean-fid / TTUR layout); a
    clear ``EvaluationError(eval_data_missing)`` for anything else. Never unpickles."""
    path = Path(path)
    try:
        data = np.load(path, allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise ValueError("not an .npz archive")
        with data:
            if "mu" not in data.files or "sigma" not in data.files:
                raise EvaluationError(ErrorCode.EVAL_DATA_MISSING, (
                    f"{path} has no 'mu' and 'sigma' arrays (it holds {', '.join(data.files)}); "
                    "FID reads statistics files in the clean-fid / TTUR .npz layout"))
            mu = np.asarray(data["mu"], dtype=np.float64)
            sigma = np.asarray(data["sigma"], dtype=np.float64)
            n = int(data["n"]) if "n" in data.files and data["n"].size == 1 else None
    except (OSError, ValueError, EOFError) as exc:  # missing, not a zip, pickled objects
        raise EvaluationError(ErrorCode.EVAL_DATA_MISSING,
                              f"cannot read the statistics file {path}: {exc}") from None
    if mu.shape != (dim,) or sigma.shape != (dim, dim):
        raise EvaluationError(ErrorCode.EVAL_DATA_MISSING, (
            f"{path}: mu {mu.shape} and sigma {sigma.shape} are not Inception pool statistics "
            f"([{dim}] and [{dim}, {dim}])"))
    if not (np.isfinite(mu).all() and np.isfinite(sigma).all()):
        raise EvaluationError(ErrorCode.EVAL_DATA_MISSING, f"{path}: mu or sigma is not finite")
    return GaussianStats(mean=mu, cov=sigma, n=n)


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


def frechet_of_stats(a, b) -> float:
    """``frechet_distance`` of two sets' statistics (``FeatureStats`` or ``GaussianStats``).
    When one set has n <= ``keep`` samples its covariance is ``F.T @ F`` with F [n, D], and
    tr((S_o F.T F)^(1/2)) is the trace root of the small ``F S_o F.T`` [n, n]: the same value,
    without a D x D (2048) eigen-decomposition."""
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


def fid_of_features(feats_a: np.ndarray, feats_b: np.ndarray, ddof: int = 1) -> float:
    return frechet_of_stats(FeatureStats.of(feats_a, ddof), FeatureStats.of(feats_b, ddof))
