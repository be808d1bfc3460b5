"""``python -m worker.evaluate fid|ppl|consistency --model NAME [--channels R --resolution P]
--n N [--data DIR|STATS.npz] [--protocol P] [--json]``: measure a model on this machine, offline.

NVIDIA's ``fid50k_full``: ``fid --n 50000 --channels 1 --resolution <the model's> --data <the
whole data set at that resolution, or its .npz statistics>``. StyleGAN2's PPL (``ppl2_wend``)
is the ``ppl`` default; ``--protocol ppl_wend`` etc. for the others (``worker.evaluate.ppl``).

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
    p.add_argument("--data", help="FID: a folder of real images or an .npz file with mu and sigma "
                   "(default: the full model's samples)")
    p.add_argument("--protocol", help="FID: nvidia (default) or legacy; PPL: ppl2_wend (default), "
                   "ppl_wend, ppl_wfull, ppl_zend, ppl_zfull or legacy")
    p.add_argument("--space", choices=("w", "z"), help="PPL: override the protocol's space")
    p.add_argument("--sampling", choices=("end", "full"), help="PPL: override its sampling")
    p.add_argument("--crop", action=argparse.BooleanOptionalAction, default=None,
                   help="PPL: override its face crop")
    p.add_argument("--distance", choices=("auto", "nvidia", "lpips"), default="auto",
                   help="PPL: NVIDIA's vgg16.pt (ANYCOST_PPL_VGG16_PATH) or the lpips package; "
                   "auto: NVIDIA's when configured")
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
        lines.append(f"protocol {result['protocol']['name']}; data: {result['data']}; "
                     f"inception sha256 {result['inception']['sha256'][:16]}")
    elif metric == "ppl":
        files = ", ".join(f"{f['path']} ({f['sha256'][:16]})" for f in result["distance"]["files"])
        p = result["protocol"]
        lines.append(f"protocol {p['name']} (space {p['space']}, {p['sampling']}, crop "
                     f"{p['crop']}, noise {p['noise']}); distance {result['distance']['name']}: "
                     f"{files}")
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
                          batch_size=args.batch_size, protocol=args.protocol, space=args.space,
                          sampling=args.sampling, crop=args.crop, distance=args.distance)
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
