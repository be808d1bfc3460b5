"""Fréchet Inception Distance of a model's sub-networks against a data set (or the full model).

Protocol ``nvidia`` (the default) is NVIDIA's ``fid50k_full`` (stylegan2-ada-pytorch,
stylegan3): generated images from z ~ N(0, I) through the mapping network with truncation 1 (no
truncation), per-sample random noise maps (NVIDIA's metrics call the generator with its default
``noise_mode='random'``), quantised to 8 bits and fed to the Inception with NVIDIA's resize and
scaling (``worker.evaluate.inception``); the covariance divides by n. ``fid50k_full`` itself is
``--n 50000`` at full cost against the statistics of the WHOLE data set (every image, no
mirroring) prepared at the model's resolution, or against an ``.npz`` statistics file. Our z and
noise come from seeded generators, so a run is repeatable; NVIDIA's are unseeded draws of the
same distributions. Protocol ``legacy`` is what this module computed before (the model's fixed
noise buffers, ``F.interpolate`` resize, covariance over n - 1), kept to compare old numbers.

Like the Anycost paper, every cost configuration (channel ratio x resolution) gets its own FID.
The reference for a sub-network at resolution R is the data set resized to R
(``worker.evaluate.fid_reference``), a statistics file as it is, or, without a data set, the
full-cost model's own samples (other seeds) box-filtered to R, which measures how far a
preview's realism falls below the final's.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from shared.recipe.parse import Cost
from worker.anycost.sampling import downsample, wplus_from_z
from worker.evaluate.common import batches, full_cost, render, sample_z, seeded
from worker.evaluate.fid_reference import dataset_statistics, file_statistics, is_stats_file
from worker.evaluate.frechet import FeatureStats, frechet_of_stats
from worker.evaluate.inception import Inception

#: The reference samples of the full model use seeds far from the evaluated ones.
REFERENCE_SEED_OFFSET = 1_000_003


@dataclass(frozen=True)
class FidProtocol:
    """How generated images become statistics (recorded with every result)."""

    name: str
    resize: str  # worker.evaluate.inception.RESIZES
    noise: str  # the generator's noise_mode: "random" (NVIDIA) or "const" (fixed buffers)
    ddof: int  # covariance divisor n - ddof: 0 NVIDIA, 1 numpy
    truncation: float = 1.0


PROTOCOLS = {
    "nvidia": FidProtocol("nvidia", resize="nvidia", noise="random", ddof=0),
    "legacy": FidProtocol("legacy", resize="torch_bilinear", noise="const", ddof=1),
}


def protocol_named(name: str) -> FidProtocol:
    if name not in PROTOCOLS:
        raise ValueError(f"FID protocol must be one of {', '.join(PROTOCOLS)}, got {name!r}")
    return PROTOCOLS[name]


def _generated_stats(generator, inception: Inception, n: int, seed: int, cost: Cost,
                     resolutions: Sequence[int], batch_size: int,
                     protocol: FidProtocol) -> Iterator[tuple[int, FeatureStats]]:
    """Statistics of ``n`` samples rendered at ``cost``, box-filtered to each of ``resolutions``.
    Batch k's noise maps come from a generator seeded with ``(seed, k)``."""
    stats = {r: FeatureStats(ddof=protocol.ddof) for r in resolutions}
    device = generator.input.input.device
    z = sample_z(n, generator.style_dim, seed)
    for k, part in enumerate(batches(n, batch_size)):
        with torch.no_grad():
            wplus = wplus_from_z(generator, z[part].to(device))
        noise = seeded(device, seed * REFERENCE_SEED_OFFSET + k) if protocol.noise == "random" else None
        images = render(generator, wplus, cost, protocol.noise, noise)
        for r in resolutions:
            stats[r].add(inception.features(downsample(images, r), batch_size, protocol.resize))
    yield from stats.items()


def _references(bundle, inception: Inception, n: int, seed: int, resolutions: Sequence[int],
                data_dir, cache_dir, batch_size: int, protocol: FidProtocol) -> tuple[dict, dict]:
    """{resolution: reference statistics} and what to record about the reference."""
    if data_dir is not None and is_stats_file(data_dir):
        stats, info = file_statistics(data_dir)
        return {r: stats for r in resolutions}, info
    if data_dir is not None:
        references, info = {}, {}
        for r in resolutions:
            references[r], info = dataset_statistics(data_dir, r, inception, cache_dir, batch_size,
                                                     resize=protocol.resize, ddof=protocol.ddof)
        return references, {k: v for k, v in info.items() if k != "resolution"}
    full = full_cost(bundle.resolution)
    ref_seed = seed + REFERENCE_SEED_OFFSET
    references = dict(_generated_stats(bundle.generator, inception, n, ref_seed, full,
                                       resolutions, batch_size, protocol))
    return references, {"kind": "generator", "cost": full.as_dict(), "seed": ref_seed, "images": n}


def evaluate_fid(bundle, inception: Inception, n: int, costs: Sequence[Cost], seed: int = 0,
                 data_dir: str | Path | None = None, cache_dir: str | Path | None = None,
                 batch_size: int = 8, progress=None, protocol: str = "nvidia") -> dict:
    """FID of ``n`` samples of each cost against ``data_dir`` (a folder of images or an
    ``.npz`` statistics file) or, without it, the full model's samples."""
    if n < 2:
        raise ValueError("FID needs n >= 2")
    proto = protocol_named(protocol)
    started = time.perf_counter()
    resolutions = sorted({c.resolution for c in costs})
    references, data = _references(bundle, inception, n, seed, resolutions, data_dir, cache_dir,
                                   batch_size, proto)
    results = []
    for cost in costs:
        t0 = time.perf_counter()
        (_, stats), = _generated_stats(bundle.generator, inception, n, seed, cost,
                                       [cost.resolution], batch_size, proto)
        value = frechet_of_stats(stats, references[cost.resolution])
        results.append({**cost.as_dict(), "fid": round(value, 6),
                        "seconds": round(time.perf_counter() - t0, 3)})
        if progress is not None:
            progress(results[-1])
    return {"metric": "fid", "n": n, "seed": seed, "data": data, "protocol": asdict(proto),
            "inception": {"sha256": inception.sha256, "file": inception.path.name},
            "results": results, "seconds": round(time.perf_counter() - started, 3)}
