"""The GPU run-book (``bench/gpu.sh``) on the CPU with ``--smoke``: every section runs and the
one table has every row, so the command a lent GPU runs has not rotted."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.runbook import percentile, read_records

REPO = Path(__file__).resolve().parents[2]
SECTIONS = {"model", "edit_loop", "photo_pipeline", "evaluate", "train"}


@pytest.mark.slow
@pytest.mark.integration
def test_gpu_runbook_smoke_prints_every_row(tmp_path):
    env = dict(os.environ, PYTHON=sys.executable, PYTHONPATH=str(REPO))
    result = subprocess.run(["bash", str(REPO / "bench/gpu.sh"), "--smoke", "--out", str(tmp_path)],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    rows = read_records(tmp_path / "rows.jsonl")
    assert {r["section"] for r in rows} == SECTIONS
    assert all(r["value"] > 0 for r in rows), rows
    model = [r["what"] for r in rows if r["section"] == "model"]
    # fp32 and bf16, batches 1 and 2 (smoke), three costs each: full, 0.5 and 0.25 channels.
    assert len(model) == 12 and {w.split()[0] for w in model} == {"fp32", "bf16"}
    assert {w.split()[-1].split("/")[0] for w in model} == {"1", "0.5", "0.25"}
    loop = {r["what"]: r["value"] for r in rows if r["section"] == "edit_loop"}
    # Both preview costs, the portal's path (the image long-poll) and a client that waits for the
    # pushed event, p50 and p99.
    assert len(loop) == 8 and {w.split()[1] for w in loop} == {"portal", "pushed"}
    for name, value in loop.items():
        if name.endswith("p99"):
            assert value >= loop[name.replace("p99", "p50")]
    table = result.stdout[result.stdout.index("SMOKE"):]
    assert "FAILED" not in table
    for section in SECTIONS:
        assert section in table
    assert "photos/min" in table and "img/s" in table


def test_percentile_is_nearest_rank():
    values = [5.0, 1.0, 3.0, 2.0, 4.0]
    assert percentile(values, 50) == 3.0
    assert percentile(values, 99) == 5.0
    assert percentile(values, 1) == 1.0
