"""``python -m worker.evaluate fid|ppl|consistency --model NAME [--channels R --resolution P]
--n N [--data DIR] [--json]``: measure a model on this machine, offline.

Settings (Inception and LPIPS files, the statistics cache, weights) come from the environment as
for the worker; ``--weights-dir`` and ``--device`` override two of them. Exit status 0 on success,
2 when the request is bad or a file the metric needs is missing (the message says which).
"""

from __future__ import annotations

import argparse
import json
import sys

from shared.platform.settings import Settings, SettingsError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m worker.evaluate", description=__doc__.split("\n\n")[0])
    p.add_argument("kind", choices=("fid", "ppl", "consistency"))
    p.add_argument("--model", required=True, help="model config, e.g. anycost-ffhq-config-f")
    p.add_argument("--n", type=int, required=True, help="samples (per cost)")
    p.add_argument("--channels", type=float, help="only this channel ratio (0.25 .. 1.0)")
    p.add_argument("--resolution", type=int, help="only this output resolution")
    p.add_argument("--data", help="FID: a folder of real images (default: the full model's samples)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--device", help="cpu, cuda, cuda:N (default ANYCOST_DEVICE)")
    p.add_argument("--weights-dir", help="default ANYCOST_WEIGHTS_DIR")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    return p


def _table(result: dict) -> str:
    metric = result["metric"]
    lines = [f"{metric} of {result['model']} ({'pretrained' if result['pretrained'] else 'RANDOM WEIGHTS'}), "
             f"n={result['n']}, seed={result['seed']}, {result['seconds']:.1f}s"]
    if metric == "fid":
        lines.append(f"data: {result['data']}; inception sha256 {result['inception']['sha256'][:16]}")
    columns = {"fid": ("fid",), "ppl": ("ppl", "median"), "consistency": ("mse", "psnr", "lpips")}[metric]
    lines.append("channels  resolution  " + "  ".join(f"{c:>12}" for c in columns))
    for row in result["results"]:
        cells = ["-" if row[c] is None else f"{row[c]:.6g}" for c in columns]
        lines.append(f"{row['channels']:>8}  {row['resolution']:>10}  " + "  ".join(f"{c:>12}" for c in cells))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    import torch

    from worker.anycost.bundle import load_bundle
    from worker.anycost.weights import WeightsError
    from worker.evaluate.common import EvaluationError
    from worker.evaluate.runner import Request, run
    from worker.render.runtime import resolve_device

    try:
        settings = Settings.from_env()
        if settings.torch_threads > 0:
            torch.set_num_threads(settings.torch_threads)
        device = resolve_device(args.device or settings.device)
        bundle = load_bundle(args.model, args.weights_dir or settings.weights_dir, device=device)
        request = Request(kind=args.kind, n=args.n, channels=args.channels,
                          resolution=args.resolution, seed=args.seed, data_dir=args.data,
                          batch_size=args.batch_size)
        result = run(request, bundle, settings)
    except EvaluationError as exc:
        print(f"error [{exc.code}]: {exc.message}", file=sys.stderr)
        return 2
    except (WeightsError, KeyError, ValueError, SettingsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2) if args.json else _table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
