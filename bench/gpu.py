"""The GPU run-book behind ``bench/gpu.sh``: every GPU measurement in one command, one table.

    bench/gpu.sh            # on a machine with one CUDA device: under 8 minutes
    bench/gpu.sh --smoke    # anywhere (CPU): tiny sizes, so the run-book never rots (tests run it)

Runs the existing benches one after the other, each as ``python -m bench.NAME`` in its own
process with its own time limit, each appending rows to one JSON-lines file (``--json``):

- ``bench.model``: generator throughput, fp32 and bf16, batch 1/8/32, at full cost, 0.5/256 and
  0.25/128, with the fraction of the card's peak (2 x MACs per image) and torch's peak memory;
- ``bench.edit_loop``: the editor's loop through the whole stack (gunicorn, Redis, a Celery
  worker on the GPU): p50 and p99 at both preview costs, next to the bare render;
- ``bench.photo_pipeline``: photos per minute through decode, faces, encode, refine, render,
  paste-back of a 12 MP photo;
- ``bench.evaluate``: Inception (FID's feature network) images/s;
- ``bench.train``: distillation training images/s on one GPU.

Peak memory: torch's peak allocation where the bench measures in its own process; for a
section run in other processes (the worker, torchrun) the device's peak ``memory.used`` from
``nvidia-smi`` during the section (contexts included). A section that fails or runs out of time
shows FAILED with its last line and the others still run; the exit status is then 1.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.runbook import read_records

REPO = Path(__file__).resolve().parent.parent
BUDGET_S = 450  # the whole run, under the 8 minutes the run-book promises

# (section, full-size arguments, smoke arguments, time limit in seconds of the full run)
SECTIONS: tuple[tuple[str, list[str], list[str], int], ...] = (
    ("model", ["--no-cpu", "--device", "cuda", "--dtypes", "fp32,bf16", "--batches", "1,8,32",
               "--repeats", "5"], ["--smoke", "--dtypes", "fp32,bf16"], 150),
    ("edit_loop", ["--device", "cuda", "--rounds", "30", "--threads", "4",
                   "--weights-dir", "{weights}"],
     ["--smoke", "--threads", "1", "--rounds", "2", "--clients", "portal,pushed"], 180),
    ("photo_pipeline", ["--model", "random-1024", "--device", "cuda", "--steps", "2",
                        "--weights-dir", "{weights}"], ["--smoke", "--threads", "1"], 120),
    ("evaluate", ["--inception-only", "--device", "cuda", "--batch", "64"],
     ["--smoke", "--threads", "1"], 60),
    ("train", ["--gpu-only"], ["--smoke"], 150),
)


class MemorySampler:
    """The device's highest ``memory.used`` (GiB) seen by ``nvidia-smi`` while running."""

    def __init__(self) -> None:
        self.peak: float | None = None
        self._stop = threading.Event()
        self._thread = None
        if shutil.which("nvidia-smi"):
            self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                out = subprocess.run(
                    ["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits",
                     "--id=0"], capture_output=True, text=True, timeout=5).stdout
                used = float(out.split()[0]) / 1024
                self.peak = used if self.peak is None else max(self.peak, used)
            except (OSError, ValueError, IndexError, subprocess.SubprocessError):
                pass
            self._stop.wait(0.25)

    def __enter__(self) -> MemorySampler:
        if self._thread:
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=10)


def run_section(name: str, argv: list[str], limit: float, rows_file: Path, logs: Path) -> dict:
    """Run ``python -m bench.NAME argv --json rows_file``; returns its status and timing."""
    log = logs / f"{name}.log"
    cmd = [sys.executable, "-m", f"bench.{name}", *argv, "--json", str(rows_file)]
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    start = time.perf_counter()
    with MemorySampler() as memory, open(log, "w", encoding="utf-8") as out:
        try:
            rc = subprocess.run(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
                                timeout=limit).returncode
        except subprocess.TimeoutExpired:
            rc = "timeout"
    lines = [line for line in log.read_text(encoding="utf-8", errors="replace").splitlines()
             if line.strip()]
    return {"name": name, "rc": rc, "seconds": time.perf_counter() - start,
            "last": lines[-1][:100] if lines else "", "smi_gb": memory.peak, "log": log}


def print_table(rows: list[dict], sections: list[dict], title: str) -> None:
    print(f"\n{title}")
    print(f"{'section':<15} {'measurement':<40} {'value':>10} {'unit':<11} {'peak mem':>9}  notes")
    for section in sections:
        own = [r for r in rows if r["section"] == section["name"]]
        for r in own:
            mem = r["mem_gb"] if r["mem_gb"] is not None else section["smi_gb"]
            mem_text = "-" if mem is None else f"{mem:.2f} GiB"
            print(f"{r['section']:<15} {r['what'][:40]:<40} {r['value']:>10.1f} {r['unit']:<11} "
                  f"{mem_text:>9}  {r['extra']}")
        if section["rc"] != 0 or not own:
            print(f"{section['name']:<15} {'FAILED (' + str(section['rc']) + ')':<40} "
                  f"{'':>10} {'':<11} {'':>9}  {section['last']}  [log: {section['log']}]")
    took = ", ".join(f"{s['name']} {s['seconds']:.0f}s" for s in sections)
    print(f"\nseconds per section: {took}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--smoke", action="store_true", help="tiny sizes on the CPU (tests)")
    p.add_argument("--only", default=None, help="comma-separated sections (default: all)")
    p.add_argument("--out", default=None, help="folder for rows.jsonl and the logs (default: tmp)")
    args = p.parse_args(argv)
    if not args.smoke:
        import torch

        if not torch.cuda.is_available():
            print("no CUDA device here: run bench/gpu.sh --smoke for the CPU check", file=sys.stderr)
            return 2
    out = Path(args.out or tempfile.mkdtemp(prefix="anycost-gpu-runbook-"))
    out.mkdir(parents=True, exist_ok=True)
    rows_file = out / "rows.jsonl"
    rows_file.unlink(missing_ok=True)
    only = set(args.only.split(",")) if args.only else None
    deadline = time.monotonic() + BUDGET_S
    results = []
    for name, full, smoke, limit in SECTIONS:
        if only and name not in only:
            continue
        left = deadline - time.monotonic()
        limit = 600 if args.smoke else min(limit, max(10.0, left))
        print(f"[{time.strftime('%H:%M:%S')}] {name} (limit {limit:.0f}s) ...", flush=True)
        # The random 1024 px weights are built once (edit_loop) and reused (photo_pipeline).
        argv = [a.replace("{weights}", str(out / "weights-1024")) for a in (smoke if args.smoke else full)]
        results.append(run_section(name, argv, limit, rows_file, out))
    title = ("SMOKE (CPU, tiny sizes: the numbers mean nothing)" if args.smoke
             else _device_title())
    print_table(read_records(rows_file), results, title)
    print(f"rows: {rows_file}")
    return 0 if all(r["rc"] == 0 for r in results) else 1


def _device_title() -> str:
    import torch

    props = torch.cuda.get_device_properties(0)
    return (f"{props.name}, {props.total_memory / 2**30:.0f} GiB, torch {torch.__version__}, "
            f"CUDA {torch.version.cuda}")


if __name__ == "__main__":
    sys.exit(main())
