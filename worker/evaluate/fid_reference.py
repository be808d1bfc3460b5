"""FID's reference statistics: a data set folder (read, resized, cached) or a statistics file.

A folder's images are centre-cropped to a square and resized to the resolution asked for (area
filter down, bilinear up; images already that size pass through untouched, which is the case
NVIDIA's protocol assumes: a data set prepared at the model's resolution). Their statistics are
cached per folder listing, resolution, Inception file and covariance convention
(``ANYCOST_EVAL_CACHE_DIR``). A ``.npz`` file with ``mu`` and ``sigma`` (clean-fid / TTUR
layout, e.g. published FFHQ statistics) is used as it is, for every cost.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from shared.codes.errors import ErrorCode
from worker.evaluate.common import EvaluationError
from worker.evaluate.frechet import FeatureStats, GaussianStats, load_stats_npz
from worker.evaluate.inception import Inception

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


def is_stats_file(source: str | Path | None) -> bool:
    return source is not None and Path(source).suffix.lower() == ".npz"


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


def _cache_key(folder: Path, files: Sequence[Path], resolution: int, inception_sha: str,
               pipeline: str) -> str:
    listing = [(str(p.relative_to(folder)), p.stat().st_size, p.stat().st_mtime_ns) for p in files]
    blob = json.dumps({"folder": str(folder.resolve()), "files": listing, "resolution": resolution,
                       "inception": inception_sha, "pipeline": pipeline}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def _read_cache(cache: Path, ddof: int) -> tuple[FeatureStats, int]:
    with np.load(cache, allow_pickle=False) as data:
        stats = FeatureStats.from_sums(data["n"], data["total"], data["outer"], data["rows"],
                                       ddof)
        return stats, int(data["skipped"])


def _write_cache(cache: Path, stats: FeatureStats, skipped: int) -> None:
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp.npz")
    rows = stats.rows()
    kept = np.zeros((0, stats.total.shape[0])) if rows is None else rows
    np.savez(tmp, n=stats.n, total=stats.total, outer=stats.outer, rows=kept, skipped=skipped)
    tmp.replace(cache)


def dataset_statistics(folder: str | Path, resolution: int, inception: Inception,
                       cache_dir: str | Path | None = None, batch_size: int = 16,
                       max_pixels: int = 50_000_000, resize: str = "nvidia",
                       ddof: int = 0) -> tuple[FeatureStats, dict]:
    """Feature statistics of every image under ``folder`` at ``resolution``; cached on disk.
    Returns (stats, info) with info: path, images, skipped, cached."""
    folder = Path(folder)
    files = image_files(folder)
    key = _cache_key(folder, files, resolution, inception.sha256, resize)
    cache = Path(cache_dir) / f"fid-stats-{key}.npz" if cache_dir else None
    info = {"kind": "folder", "path": str(folder), "resolution": resolution}
    if cache is not None and cache.is_file():
        stats, skipped = _read_cache(cache, ddof)
        return stats, {**info, "images": stats.n, "skipped": skipped, "cached": True}
    stats, skipped, chunk = FeatureStats(ddof=ddof), 0, []
    for i, path in enumerate(files):
        image = _load_square(path, resolution, max_pixels)
        if image is None:
            skipped += 1
        else:
            chunk.append(image)
        if len(chunk) == batch_size or (i == len(files) - 1 and chunk):
            stats.add(inception.features(torch.stack(chunk), batch_size, resize))
            chunk = []
    if stats.n < 2:
        raise EvaluationError(ErrorCode.EVAL_DATA_MISSING,
                              f"the data set folder {folder} has fewer than 2 readable images")
    if cache is not None:
        _write_cache(cache, stats, skipped)
    return stats, {**info, "images": stats.n, "skipped": skipped, "cached": False}


def file_statistics(path: str | Path) -> tuple[GaussianStats, dict]:
    """A statistics file as FID's reference, and what to record about it."""
    stats = load_stats_npz(path)
    return stats, {"kind": "statistics", "path": str(path), "images": stats.n}
