"""Random weights with the 1024 px architecture, for timing on machines without the released files.

``install_random_1024(dir)`` writes generator, encoder and boundary files in the released layout
of ``anycost-ffhq-config-f`` into a bench-only weights directory and records them in that
directory's manifest as NOT pretrained, so every render from them is labelled random. The
pictures are noise; the compute (channels, resolutions, MACs) is that of the real model.
"""

from __future__ import annotations

from pathlib import Path

import torch

from shared.catalog.configs import get_model_config
from shared.codes.attributes import ATTRIBUTES
from worker.anycost import weights
from worker.anycost.download import sha256_file
from worker.anycost.encoder import Encoder
from worker.anycost.generator import Generator

CONFIG = "anycost-ffhq-config-f"
SOURCE = "random weights built by bench/random_weights.py (timing only)"


def install_random_1024(directory: str | Path, seed: int = 0) -> str:
    """Build (once) and record the files; returns the config name to load."""
    cfg = get_model_config(CONFIG)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if set(weights.installed(CONFIG, directory)) >= set(cfg.kinds):
        return CONFIG
    torch.manual_seed(seed)
    generator = Generator(cfg.resolution, cfg.style_dim, channel_multiplier=cfg.channel_multiplier,
                          channel_max=cfg.channel_max)
    encoder = Encoder(n_style=cfg.n_style, style_dim=cfg.style_dim)
    with torch.no_grad():
        encoder.fc.weight.mul_(0.01)  # keep codes near the origin, where renders stay finite
    directions = {key: torch.nn.functional.normalize(torch.randn(1, cfg.style_dim), dim=1)
                  for key in ATTRIBUTES}
    payloads = {"generator": {"g_ema": generator.state_dict()},
                "encoder": {"state_dict": encoder.state_dict()},
                "boundary": directions}
    entries = []
    for kind in cfg.kinds:
        path = directory / cfg.filename(kind)
        torch.save(payloads[kind], path)
        entries.append(weights.InstalledFile(CONFIG, kind, path, sha256_file(path),
                                             path.stat().st_size, SOURCE, False))
    weights.record(directory, entries)
    return CONFIG


BENCH_MODELS = ("random-1024", "tiny-random")


def bench_bundle(model: str, device="cpu", folder: str | None = None):
    """A bundle (on ``device``) for a bench's ``--model``: ``random-1024`` (the 1024 px architecture with
    random weights, installed here) or ``tiny-random``, in a fresh temporary weights folder."""
    import tempfile

    from worker.anycost.bundle import load_bundle

    folder = folder or tempfile.mkdtemp(prefix="bench-weights-")
    name = install_random_1024(folder) if model == "random-1024" else "tiny-random"
    return load_bundle(name, folder, device=str(device))
