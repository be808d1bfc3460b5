"""The fault suite's table under the service's DEFAULT timeouts, beside the suite's short ones.

    .venv/bin/python -m bench.faults                 # both tables (about 15 minutes)
    .venv/bin/python -m bench.faults --only defaults # the default-settings table alone

Runs ``tests/faults/test_faults.py`` (real worker, reaper, Redis and PostgreSQL processes; each
experiment kills or freezes one of them) twice: once as the test suite does (heartbeat 1 s,
silence 4 s, visibility 20 s), once with ``ANYCOST_FAULTS_DEFAULTS=1`` (heartbeat 10 s, silence
45 s, visibility 2 x the hard limit + 60 s = 780 s, Redis timeouts as shipped). Each run writes its
rows (``ANYCOST_FAULTS_REPORT``); the two are printed side by side: items submitted, settled,
lost, stored twice, and the seconds from the end of the fault until every item settled.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SUITE = "tests/faults/test_faults.py"


def run_suite(defaults: bool, report: Path) -> tuple[list[dict], float, int]:
    env = {**os.environ, "ANYCOST_FAULTS_REPORT": str(report)}
    env.pop("ANYCOST_FAULTS_DEFAULTS", None)
    if defaults:
        env["ANYCOST_FAULTS_DEFAULTS"] = "1"
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", SUITE],
                          cwd=REPO, env=env, capture_output=True, text=True)
    took = time.monotonic() - started
    rows = json.loads(report.read_text()) if report.exists() else []
    if done.returncode != 0:
        print(done.stdout[-3000:], file=sys.stderr)
    return rows, took, done.returncode


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", choices=("defaults", "short"), default=None)
    args = p.parse_args(argv)
    kinds = [k for k in ("short", "defaults") if args.only in (None, k)]
    results: dict[str, tuple[list[dict], float, int]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-faults-") as tmp:
        for kind in kinds:
            results[kind] = run_suite(kind == "defaults", Path(tmp) / f"{kind}.json")
    names = list(dict.fromkeys(r["name"] for rows, _, _ in results.values() for r in rows))
    head = " | ".join(f"{k}: settled/submitted, lost, twice, recovery s" for k in kinds)
    print(f"| experiment | {head} |\n|---|" + "---|" * len(kinds))
    for name in names:
        cells = []
        for kind in kinds:
            row = next((r for r in results[kind][0] if r["name"] == name), None)
            cells.append("not run" if row is None else
                         f"{row['settled']}/{row['submitted']}, {row['lost']}, "
                         f"{row['duplicated']}, {row['recover_s']}")
        print(f"| {name} | " + " | ".join(cells) + " |")
    for kind in kinds:
        _, took, code = results[kind]
        print(f"{kind}: suite {'passed' if code == 0 else f'FAILED (exit {code})'} in {took:.0f} s")
    return max(code for _, _, code in results.values())


if __name__ == "__main__":
    raise SystemExit(main())
