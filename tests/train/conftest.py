"""Fixtures of the training tests: a tiny teacher generator, a small synthetic data set, and a
runner that launches ``python -m torch.distributed.run`` (torchrun) with real processes."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.support.ports import listen_port

REPO = Path(__file__).resolve().parents[2]
#: The tiny teacher: 32 px, 32 channels at most, style_dim 32, a 2-layer mapping network.
TINY = {"resolution": 32, "style_dim": 32, "n_mlp": 2, "channel_multiplier": 2, "channel_max": 32}


def tiny_teacher(seed: int = 7, **overrides):
    """A deterministic random generator whose images stay in about [-1, 1]."""
    from worker.anycost.generator import Generator

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        g = Generator(**{**TINY, **overrides})
        with torch.no_grad():
            for name, p in g.named_parameters():
                if name.startswith("style.") and name.endswith(".weight"):
                    p.normal_(0, 100.0)  # stored divided by lr_mul 0.01
                elif name.endswith("modulation.bias"):
                    p.fill_(1.0)
                elif name.endswith("noise.weight") or name.endswith(".bias"):
                    p.normal_(0, 0.05)
                elif name.startswith("to_rgb") and name.endswith("conv.weight"):
                    p.normal_(0, 0.3)
    return g.eval()


@pytest.fixture(scope="session")
def teacher_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("teacher") / "generator_teacher.pt"
    torch.save({"g_ema": tiny_teacher().state_dict()}, path)
    return path


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory, teacher_file) -> Path:
    """32 'real' images: the teacher's own samples (another seed), as PNG files."""
    from worker.anycost.checkpoints import load_generator

    out = tmp_path_factory.mktemp("data")
    g = load_generator(teacher_file)
    z = torch.randn(32, g.style_dim, generator=torch.Generator().manual_seed(123))
    with torch.no_grad():
        images = g.synthesis(g.broadcast(g.mapping(z)), noise_mode="const", impl="ref")
    arr = ((images.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()
    for i, a in enumerate(arr):
        Image.fromarray(np.ascontiguousarray(a)).save(out / f"{i:04d}.png")
    return out


def free_port() -> int:
    return listen_port("127.0.0.1")  # torchrun binds it later (tests/support/ports.py)


def torchrun_command(nproc: int, args: list[str], port: int | None = None) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1",
            "--nproc_per_node", str(nproc), "--rdzv-backend", "c10d",
            "--rdzv-endpoint", f"127.0.0.1:{port or free_port()}", "-m", "worker.train", *args,
            "--threads", "1", "--device", "cpu"]


def train_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1"}


def torchrun(nproc: int, args: list[str], timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``worker.train`` on ``nproc`` real processes; fails the test on a non-zero exit."""
    result = subprocess.run(torchrun_command(nproc, args), cwd=REPO, env=train_env(),
                            capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]
    return result


def torchrun_together(runs: list[list[str]], timeout: float = 300) -> None:
    """Independent one-process runs of ``worker.train`` (``args`` each) started at once, each on
    its own rendezvous port, then waited for; fails the test when any exits non-zero. Each
    process keeps one thread (``--threads 1``), so every run computes exactly what it computes
    alone; on a multi-core machine they just share the wall time."""
    ports: list[int] = []
    while len(ports) < len(runs):
        port = free_port()
        if port not in ports:
            ports.append(port)
    with tempfile.TemporaryDirectory() as logs:
        procs = []
        for i, (args, port) in enumerate(zip(runs, ports, strict=True)):
            out, err = open(f"{logs}/{i}.out", "w+"), open(f"{logs}/{i}.err", "w+")
            procs.append((subprocess.Popen(torchrun_command(1, args, port), cwd=REPO,
                                           env=train_env(), stdout=out, stderr=err),
                          out, err))
        deadline = time.monotonic() + timeout
        try:
            for proc, _, _ in procs:
                proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        finally:
            for proc, _, _ in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        for proc, out, err in procs:
            with out, err:
                out.seek(0)
                err.seek(0)
                assert proc.returncode == 0, out.read()[-3000:] + err.read()[-6000:]


def load_state(out: Path) -> dict:
    return torch.load(out / "train_state.pt", weights_only=True)
