"""Benchmark distillation training: images/s with 1 and 2 torchrun processes, side by side.

CPU (gloo, one thread per process): stage 2 (``channels``) on a random 64 px generator
(channel_max 64, the tiny-random shape) and synthetic images, the same batch per process in
both runs, so 2 processes ideally train twice the images per second; scaling efficiency =
rate(2) / (2 x rate(1)). The rate is the median of the progress lines after the first (warm-up)
interval. GPU (only if CUDA exists): the same at 256 px, batch 8 per GPU, 1 and 2 GPUs (2 only
with two devices), NCCL.

    python -m bench.train            # CPU, then GPU when available
    python -m bench.train --steps 40 --batch 4
    python -m bench.train --gpu-only --json rows.jsonl   # the run-book's part: one GPU
    python -m bench.train --smoke                        # seconds: 1 CPU process, 4 steps
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from bench.runbook import record
from worker.anycost.generator import Generator

REPO = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _setup(tmp: Path, resolution: int, channel_max: int, n_images: int) -> tuple[Path, Path]:
    torch.manual_seed(0)
    g = Generator(resolution, 512, n_mlp=8, channel_multiplier=2, channel_max=channel_max)
    teacher = tmp / "generator_bench.pt"
    torch.save({"g_ema": g.state_dict()}, teacher)
    data = tmp / "data"
    data.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n_images):
        arr = rng.integers(0, 256, (resolution, resolution, 3), dtype=np.uint8)
        Image.fromarray(arr).save(data / f"{i:04d}.png")
    return teacher, data


def rate(nproc: int, teacher: Path, data: Path, out: Path, steps: int, batch: int,
         device: str) -> float:
    """Median images/s over the progress lines after the first one."""
    every = max(1, steps // 5)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1",
           "--nproc_per_node", str(nproc), "--rdzv-backend", "c10d",
           "--rdzv-endpoint", f"127.0.0.1:{_free_port()}", "-m", "worker.train", "channels",
           "--teacher", str(teacher), "--data", str(data), "--out", str(out),
           "--batch", str(batch), "--steps", str(steps), "--log-every", str(every),
           "--checkpoint-every", str(10 * steps), "--workers", "0", "--device", device,
           "--threads", "1"]
    # A clean environment (no ANYCOST_* settings), but what CUDA needs to find its devices.
    env = {k: v for k, v in os.environ.items()
           if k.startswith(("CUDA", "NVIDIA", "NCCL")) or k in ("LD_LIBRARY_PATH", "HOME")}
    env.update(PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", PATH="/usr/bin:/bin")
    result = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=1800)
    if result.returncode != 0:
        raise SystemExit(f"training failed:\n{result.stderr[-3000:]}")
    rates = [float(m) for m in re.findall(r"([\d.]+) img/s", result.stdout)]
    return statistics.median(rates[1:] or rates)


def side_by_side(label: str, counts: list[int], json_path: str | None = None, **kw) -> None:
    rates = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in counts:
            rates[n] = rate(n, out=Path(tmp) / f"run{n}", **kw)
    print(f"\n{label}: batch {kw['batch']} per process, {kw['steps']} steps")
    print(f"{'processes':>10} {'images/s':>10} {'per process':>12} {'efficiency':>11}")
    for n in counts:
        eff = rates[n] / (n * rates[counts[0]]) if counts[0] == 1 else float("nan")
        print(f"{n:>10} {rates[n]:>10.2f} {rates[n] / n:>12.2f} {eff:>10.0%}")
        record(json_path, "train", f"{label}, {n} process(es), batch {kw['batch']}", rates[n],
               "img/s", f"{kw['steps']} steps")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--gpu-only", action="store_true", help="skip the CPU runs; 1 GPU only")
    parser.add_argument("--json", default=None, help="append the rates here (JSON lines)")
    parser.add_argument("--smoke", action="store_true", help="seconds: 1 CPU process, 4 steps")
    args = parser.parse_args(argv)
    if args.smoke:
        with tempfile.TemporaryDirectory() as tmp:
            teacher, data = _setup(Path(tmp), 32, 32, 8)
            side_by_side("CPU (gloo), 32 px", [1], args.json, teacher=teacher, data=data,
                         steps=4, batch=2, device="cpu")
        return
    if not args.gpu_only:
        with tempfile.TemporaryDirectory() as tmp:
            teacher, data = _setup(Path(tmp), 64, 64, 64)
            side_by_side("CPU (gloo), 64 px", [1, 2], args.json, teacher=teacher, data=data,
                         steps=args.steps, batch=args.batch, device="cpu")
    if torch.cuda.is_available():
        with tempfile.TemporaryDirectory() as tmp:
            teacher, data = _setup(Path(tmp), 256, 512, 256)
            two = torch.cuda.device_count() >= 2 and not args.gpu_only
            side_by_side("GPU (NCCL), 256 px", [1, 2] if two else [1], args.json, teacher=teacher,
                         data=data, steps=max(args.steps, 50), batch=8, device="cuda")
    else:
        print("\nGPU: no CUDA device, section skipped")


if __name__ == "__main__":
    main()
