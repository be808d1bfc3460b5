"""Benchmark the Anycost generator: render latency per cost, side by side, plus MACs.

CPU: a 1024 px generator with random weights, one image, median of ``--repeats`` runs for every
channel ratio x output resolution, reported as speed-ups over the full render measured in the same
run (machines are noisy; ratios are what to compare). GPU (only if CUDA exists): images/s at
batch 1/8/32 in fp32/fp16/bf16 and the fraction of the card's peak FLOP/s.

    python -m bench.model            # full table
    python -m bench.model --quick    # a few configs only
    python -m bench.model --with-ref # also upstream's formulation (impl="ref"), side by side
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

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


def bench_gpu(g: Generator, repeats: int) -> None:
    dev = torch.device("cuda")
    g = g.to(dev)
    name = torch.cuda.get_device_name(dev)
    print(f"\nGPU: {name}")
    print(f"{'dtype':>9} {'batch':>5} {'ratio':>5} {'res':>5} {'ms/batch':>9} {'img/s':>8} {'TFLOP/s':>8}")
    for dtype in (torch.float32, torch.float16, torch.bfloat16):
        gd = g.to(dtype)
        for batch in (1, 8, 32):
            wplus = gd.broadcast(gd.mapping(torch.randn(batch, gd.style_dim, device=dev, dtype=dtype)))
            for ratio, res in ((1.0, 1024), (0.5, 256)):
                t = median_time(lambda r=ratio, s=res, w=wplus, m=gd: m.synthesis(w, r, s),
                                repeats, torch.cuda.synchronize)
                flops = 2 * generator_macs(1024, ratio, res) * batch
                print(f"{str(dtype)[6:]:>9} {batch:>5} {ratio:>5} {res:>5} {t * 1000:>9.1f} "
                      f"{batch / t:>8.1f} {flops / t / 1e12:>8.1f}")
    g.float().cpu()


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
    args = ap.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    impls = (args.impl, "ref") if args.with_ref and args.impl != "ref" else (args.impl,)
    torch.manual_seed(0)
    g = Generator(1024).eval().requires_grad_(False)
    with torch.inference_mode():
        if not args.no_cpu:
            configs = QUICK if args.quick else [(r, s) for r in RATIOS for s in RESOLUTIONS]
            print_cpu(bench_cpu(g, configs, args.repeats, impls), impls)
        if torch.cuda.is_available() and not args.no_gpu:
            bench_gpu(g, args.repeats)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
