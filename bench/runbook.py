"""What the GPU run-book (``bench/gpu.sh``) shares with the benches it runs: the records each
bench appends to a JSON-lines file (``--json PATH``), percentiles, the accelerator's peak
FLOP/s for "fraction of peak", and peak device memory.

A record is one row of the run-book's table: ``{"section", "what", "value", "unit", "extra",
"mem_gb"}`` (``extra``: a short text such as "12% of peak"; ``mem_gb``: peak device memory of
that measurement, None on a CPU).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import torch

#: Dense peak TFLOP/s per card (vendor data sheets, no sparsity): fp32 on CUDA cores, TF32 and
#: bf16 on tensor cores. Matched by substring of ``torch.cuda.get_device_name``, first match wins.
PEAK_TFLOPS: tuple[tuple[str, dict[str, float]], ...] = (
    ("H200", {"fp32": 66.9, "tf32": 494.7, "bf16": 989.4}),
    ("H100 PCIe", {"fp32": 51.2, "tf32": 378.0, "bf16": 756.0}),
    ("H100 NVL", {"fp32": 60.0, "tf32": 417.5, "bf16": 835.0}),
    ("H100", {"fp32": 66.9, "tf32": 494.7, "bf16": 989.4}),  # SXM ("H100 80GB HBM3")
    ("A100", {"fp32": 19.5, "tf32": 156.0, "bf16": 312.0}),
    ("L40S", {"fp32": 91.6, "tf32": 183.0, "bf16": 362.0}),
    ("L4", {"fp32": 30.3, "tf32": 60.0, "bf16": 121.0}),
    ("A10", {"fp32": 31.2, "tf32": 62.5, "bf16": 125.0}),
)


def peak_flops(device: torch.device, dtype: torch.dtype) -> tuple[float | None, str]:
    """(peak FLOP/s, which peak) of ``device`` for ``dtype``; (None, reason) when unknown.
    ``ANYCOST_GPU_PEAK_TFLOPS=fp32=..,tf32=..,bf16=..`` overrides the table. fp32 convolutions
    run on TF32 tensor cores when cuDNN allows it (PyTorch's default), so fp32 is measured
    against the TF32 peak then."""
    if device.type != "cuda":
        return None, "no peak for a CPU"
    key = "bf16" if dtype == torch.bfloat16 else "fp16" if dtype == torch.float16 else "fp32"
    if key == "fp32" and torch.backends.cudnn.allow_tf32:
        key = "tf32"
    table = {}
    override = os.environ.get("ANYCOST_GPU_PEAK_TFLOPS", "")
    if override:
        table = {k.strip(): float(v) for k, v in (p.split("=") for p in override.split(","))}
    else:
        name = torch.cuda.get_device_name(device)
        table = next((peaks for sub, peaks in PEAK_TFLOPS if sub in name), {})
    if key == "fp16":
        key = "bf16" if "bf16" in table else key  # same tensor-core rate on these cards
    if key not in table:
        return None, f"peak unknown for {key}"
    return table[key] * 1e12, key


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0-100), nearest rank: the p99 of 12 values is their maximum."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def reset_peak_memory(device: torch.device | str) -> None:
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory_gb(device: torch.device | str) -> float | None:
    """Peak memory torch allocated on ``device`` since the last reset (None on a CPU)."""
    device = torch.device(device)
    if device.type != "cuda":
        return None
    return torch.cuda.max_memory_allocated(device) / 2**30


def record(path: str | Path | None, section: str, what: str, value: float, unit: str,
           extra: str = "", mem_gb: float | None = None) -> dict:
    """Append one row to ``path`` (JSON lines; nothing when ``path`` is None); returns it."""
    row = {"section": section, "what": what, "value": value, "unit": unit, "extra": extra,
           "mem_gb": mem_gb}
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
    return row


def read_records(path: str | Path) -> list[dict]:
    path = Path(path)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
