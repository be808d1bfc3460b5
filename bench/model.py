"""Benchmark the Anycost generator: render latency per cost, side by side, plus MACs.

CPU: a 1024 px generator with random weights, one image, median of ``--repeats`` runs for every
channel ratio x output resolution, reported as speed-ups over the full render measured in the same
run (machines are noisy; ratios are what to compare). Throughput (on CUDA when it exists, or
``--device``): images/s at batch 1/8/32 in fp32/fp16/bf16 at full cost, 0.5/256 and 0.25/128, the
fraction of the card's peak FLOP/s (2 x MACs per image) and torch's peak memory.

    python -m bench.model            # full table
    python -m bench.model --quick    # a few configs only
    python -m bench.model --with-ref # also upstream's formulation (impl="ref"), side by side
    python -m bench.model --no-cpu --dtypes fp32,bf16 --json rows.jsonl   # the run-book's part
    python -m bench.model --smoke    # seconds: a 64 px generator, throughput on the CPU
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from bench import runbook
from shared.catalog.costs import generator_macs
from worker.anycost.generator import Generator

RATIOS = (0.25, 0.5, 0.75, 1.0)
RESOLUTIONS = (128, 256, 512, 1024)
QUICK = [(1.0, 1024), (0.5, 1024), (0.5, 256), (0.25, 256), (0.25, 128)]
# Targets from the task: speed-up over the full render.
TARGETS = {(0.5, 256): 5.0, (0.25, 128): 12.0}


def median_time(fn, repeats: int, sync=lambda: None) -> float:
    fn()  # warm-up (allocations, kernel selection)
    sync()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench_cpu(g: Generator, configs, repeats: int, impls: tuple[str, ...]) -> list[dict]:
    """Median latency per config and impl; impls alternate run by run so noise hits both alike."""
    torch.manual_seed(0)
    wplus = g.broadcast(g.mapping(torch.randn(1, g.style_dim)))
    rows = []
    for ratio, res in configs:
        times: dict[str, list[float]] = {impl: [] for impl in impls}
        for impl in impls:  # warm-up
            g.synthesis(wplus, ratio, res, impl=impl)
        for _ in range(repeats):
            for impl in impls:
                t0 = time.perf_counter()
                g.synthesis(wplus, ratio, res, impl=impl)
                times[impl].append(time.perf_counter() - t0)
        row = {"ratio": ratio, "res": res, "macs": generator_macs(1024, ratio, res)}
        row.update({impl: statistics.median(ts) for impl, ts in times.items()})
        rows.append(row)
    return rows


def print_cpu(rows: list[dict], impls: tuple[str, ...]) -> None:
    main = impls[0]
    full = next(r for r in rows if r["ratio"] == 1.0 and r["res"] == 1024)
    full_macs = full["macs"]
    print(f"\nCPU ({torch.get_num_threads()} threads), 1 image, median of runs; speed-up = full / this")
    extra = "".join(f" {impl + ' time':>10}" for impl in impls[1:])
    print(f"{'ratio':>6} {'res':>5} {main + ' time':>10} {'speed-up':>9}{extra} {'GMACs':>8} {'MAC ratio':>9}  target")
    for r in rows:
        speedup = full[main] / r[main]
        target = TARGETS.get((r["ratio"], r["res"]))
        mark = "" if target is None else f">= {target:.0f}x {'ok' if speedup >= target else 'MISSED'}"
        others = "".join(f" {r[impl] * 1000:>8.0f}ms" for impl in impls[1:])
        print(f"{r['ratio']:>6} {r['res']:>5} {r[main] * 1000:>8.0f}ms {speedup:>8.1f}x{others} "
              f"{r['macs'] / 1e9:>8.2f} {full_macs / r['macs']:>8.1f}x  {mark}")


#: The run-book's costs, as (ratio, fraction of the model's resolution): full, 0.5/256, 0.25/128.
THROUGHPUT_COSTS = ((1.0, 1.0), (0.5, 0.25), (0.25, 0.125))
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def bench_throughput(g: Generator, device: torch.device, dtypes: list[str], batches: list[int],
                     repeats: int, json_path: str | None = None) -> list[dict]:
    """Images/s per dtype x batch x cost on ``device``, with the fraction of the card's peak
    (2 x MACs per image, MACs from shared.catalog.costs) and torch's peak memory of each."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"\nthroughput on {name} ({g.resolution} px generator), median of {repeats} runs")
    print(f"{'dtype':>6} {'batch':>5} {'ratio':>5} {'res':>5} {'ms/batch':>9} {'img/s':>9} "
          f"{'TFLOP/s':>8} {'of peak':>8} {'mem GiB':>8}")
    rows = []
    for key in dtypes:
        dtype = DTYPES[key]
        gd = g.to(device=device, dtype=dtype)
        peak, peak_name = runbook.peak_flops(device, dtype)
        for batch in batches:
            torch.manual_seed(0)
            z = torch.randn(batch, gd.style_dim, device=device, dtype=dtype)
            wplus = gd.broadcast(gd.mapping(z))
            for ratio, frac in THROUGHPUT_COSTS:
                res = max(8, int(g.resolution * frac))
                runbook.reset_peak_memory(device)
                t = median_time(lambda r=ratio, s=res, w=wplus, m=gd: m.synthesis(w, r, s), repeats, sync)
                mem = runbook.peak_memory_gb(device)
                flops = 2 * g.macs(ratio, res) * batch / t
                share = f"{flops / peak:.1%} {peak_name}" if peak else "n/a"
                print(f"{key:>6} {batch:>5} {ratio:>5} {res:>5} {t * 1000:>9.2f} {batch / t:>9.1f} "
                      f"{flops / 1e12:>8.2f} {share:>8} {mem if mem is not None else float('nan'):>8.2f}")
                rows.append(runbook.record(
                    json_path, "model", f"{key} batch {batch} {ratio:g}/{res}", batch / t, "img/s",
                    f"{flops / 1e12:.2f} TFLOP/s, {share} of peak", mem))
    g.to(device="cpu", dtype=torch.float32)
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer configs")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--impl", default="fast", choices=["fast", "ref"])
    ap.add_argument("--with-ref", action="store_true",
                    help="also time impl=ref (upstream's formulation) side by side")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    ap.add_argument("--no-gpu", action="store_true", help="skip the GPU section")
    ap.add_argument("--no-cpu", action="store_true", help="skip the CPU section")
    ap.add_argument("--device", default=None,
                    help="throughput section on this device (default: cuda when present)")
    ap.add_argument("--dtypes", default="fp32,fp16,bf16", help="throughput section's dtypes")
    ap.add_argument("--batches", default="1,8,32", help="throughput section's batch sizes")
    ap.add_argument("--json", default=None, help="append the throughput rows here (JSON lines)")
    ap.add_argument("--smoke", action="store_true",
                    help="seconds, for the tests: a 64 px generator, throughput on the CPU only")
    args = ap.parse_args(argv)
    if args.smoke:
        args.no_cpu, args.device, args.batches, args.repeats = True, "cpu", "1,2", 1

    if args.threads:
        torch.set_num_threads(args.threads)
    impls = (args.impl, "ref") if args.with_ref and args.impl != "ref" else (args.impl,)
    torch.manual_seed(0)
    g = (Generator(64, channel_max=64) if args.smoke else Generator(1024)).eval().requires_grad_(False)
    device = args.device or ("cuda" if torch.cuda.is_available() and not args.no_gpu else None)
    with torch.inference_mode():
        if not args.no_cpu:
            configs = QUICK if args.quick else [(r, s) for r in RATIOS for s in RESOLUTIONS]
            print_cpu(bench_cpu(g, configs, args.repeats, impls), impls)
        if device:
            bench_throughput(g, torch.device(device), args.dtypes.split(","),
                             [int(b) for b in args.batches.split(",")], args.repeats, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
