"""Photo -> W+ on the 1024 px layout (random weights): an e4e encoder vs projection by
optimisation, side by side in one run, per photo; then the photo pipeline's first preview with
each (decode, detect + align, encode or project, preview render, PNG), stage by stage.

    .venv/bin/python bench/encode.py [--threads 2] [--steps 100] [--max-seconds 30]
        [--method e4e|psp] [--repeat 3]

The generator is bench/random_weights.py's (the 1024 px architecture, random weights); the
encoder a ``StyleEncoder`` at the released 1024 px layout (18 styles, ~230 M values), random too.
Projection runs as the worker runs it for a model without an encoder (``worker/projection.py``:
``ANYCOST_PROJECTION_STEPS`` Adam steps from w_avg at 256 px, stopped after
``ANYCOST_PROJECTION_MAX_SECONDS``). Timings only: the pictures are noise. The stages run one
after the other, never together; the GPU section runs when CUDA is present.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn, device: torch.device):
    _sync(device)
    start = time.perf_counter()
    out = fn()
    _sync(device)
    return out, time.perf_counter() - start


def random_style_encoder(method: str, w_avg: torch.Tensor, seed: int = 0):
    """The released 1024 px e4e / pSp layout with random weights; codes start at w_avg (as
    e4e's ``start_from_latent_avg``) and stay near it, where renders stay finite."""
    from worker.anycost.style_encoder import StyleEncoder

    torch.manual_seed(seed)
    encoder = StyleEncoder(method, n_style=18)
    with torch.no_grad():
        for block in encoder.styles:
            block.linear.weight.mul_(0.01)
        encoder.latent_avg.copy_(w_avg.reshape(1, -1).expand(18, -1))
    return encoder.eval().requires_grad_(False)


def encoder_gmacs(encoder) -> float:
    """Multiply-accumulates of one 256 x 256 face through ``encoder`` (convs and linears)."""
    total = 0

    def count(module, inputs, output):
        nonlocal total
        weight = module.weight
        per_output = weight[0].numel() if weight.dim() > 1 else 1  # in/groups x kh x kw, or in
        total += output.numel() * per_output

    layers = [m for m in encoder.modules() if isinstance(m, torch.nn.Conv2d)
              or type(m).__name__ == "EqualLinear"]
    hooks = [m.register_forward_hook(count) for m in layers]
    try:
        with torch.inference_mode():
            encoder(torch.zeros(1, 3, 256, 256, device=encoder.latent_avg.device))
    finally:
        for hook in hooks:
            hook.remove()
    return total / 1e9


def photo_bytes() -> bytes:
    """skimage's astronaut as a JPEG upload (512 x 512)."""
    import skimage.data

    buf = io.BytesIO()
    Image.fromarray(skimage.data.astronaut()).save(buf, format="JPEG", quality=92)
    return buf.getvalue()


def first_preview(bundle, data: bytes, device: torch.device, steps: int, max_seconds: float) -> dict:
    """One photo through the pipeline's stages to its first preview PNG, timed per stage; the
    faces are encoded when the bundle has an encoder, else projected as the worker does."""
    # The pipeline's stage functions (moved by the package restructure: adjust these imports).
    from shared.recipe.parse import default_costs
    from worker.render import projection, stages
    from worker.render.faces.align import render_quad
    from worker.render.images import to_uint8

    times: dict[str, float] = {}
    rgb, times["decode"] = _timed(lambda: stages.decode(data, 50_000_000), device)
    detector = stages.face_detector("mtcnn", "cpu")
    recipe = _default_recipe(bundle.resolution)
    faces, times["detect+align"] = _timed(lambda: stages.prepare_faces(rgb, bundle, recipe, detector),
                                          device)
    with torch.inference_mode(bundle.encoder is not None):
        if bundle.encoder is not None:
            codes, times["encode"] = _timed(
                lambda: stages.encode(bundle, [f.rgb for f in faces], device), device)
            info = {}
        else:
            size = projection.projection_size(bundle.resolution)
            targets = [render_quad(rgb, np.asarray(f.meta["transform"]["quad"]), size)
                       for f in faces]
            (codes, info), times["project"] = _timed(
                lambda: projection.project(bundle, targets[0], steps, max_seconds=max_seconds),
                device)
        preview_cost, _ = default_costs(bundle.resolution)
        with torch.inference_mode():
            image, times["preview render"] = _timed(
                lambda: stages.render(bundle, codes.detach(), preview_cost), device)
    png = io.BytesIO()
    _, times["png"] = _timed(lambda: Image.fromarray(to_uint8(image)[0]).save(png, format="PNG"),
                             device)
    return {"times": times, "total": sum(times.values()), "info": info, "cost": preview_cost}


def _default_recipe(resolution: int = 1024):
    from shared.recipe.parse import parse_recipe

    return parse_recipe({}, resolution)


def encode_seconds(bundle, crop, device: torch.device, repeat: int) -> float:
    """Median seconds of one face's encoder pass (after a warm-up pass)."""
    from worker.render import stages

    with torch.inference_mode():
        stages.encode(bundle, [crop], device)
        runs = [_timed(lambda: stages.encode(bundle, [crop], device), device)[1] for _ in range(repeat)]
    return sorted(runs)[len(runs) // 2]


def run_device(base, encoder, data: bytes, device: torch.device, args) -> dict:
    """Encoder and projection on ``device``: per photo, then the first preview with each."""
    from worker.render import stages

    base.generator.to(device)
    with_encoder = replace(base, encoder=encoder.to(device), device=device)
    without = replace(base, encoder=None, device=device, latent_avg=base.w_avg().to(device))
    rgb = stages.decode(data, 50_000_000)
    crop = stages.prepare_faces(rgb, with_encoder, _default_recipe(base.resolution),
                                stages.face_detector())[0].rgb
    row = {"device": str(device), "encode": encode_seconds(with_encoder, crop, device, args.repeat)}
    first_preview(with_encoder, data, device, 1, 0)  # warm-up: detector, thread pools, kernels
    row["encoder_preview"] = first_preview(with_encoder, data, device, 0, 0)
    row["projection_preview"] = first_preview(without, data, device, args.steps, args.max_seconds)
    return row


def _report(rows: list[dict], args) -> None:
    for row in rows:
        enc, proj = row["encoder_preview"], row["projection_preview"]
        info = proj["info"]
        per_step = info["seconds"] / max(1, info["steps"])
        print(f"\n{row['device']}: photo -> W+ (one face, batch 1)")
        print("| method | seconds per photo | notes |\n|---|---|---|")
        print(f"| {args.method} encoder | {row['encode']:.3f} | one forward pass, median of "
              f"{args.repeat} |")
        print(f"| projection | {info['seconds']:.1f} | {info['steps']} of {args.steps} Adam steps "
              f"({per_step:.3f} s/step){', stopped by the time cap' if info['stopped_early'] else ''};"
              f" all {args.steps} would take {per_step * args.steps:.0f} s |")
        print(f"encoder is {info['seconds'] / row['encode']:.0f}x faster than the projection as "
              f"run ({per_step * args.steps / row['encode']:.0f}x than {args.steps} steps)")
        cost = enc["cost"]
        print(f"first preview of one photo ({cost.channels:g} channels, {cost.resolution} px), "
              "stage by stage (s):")
        stages = list(dict.fromkeys([*enc["times"], *proj["times"]]))
        print("| pipeline | " + " | ".join(stages) + " | total |")
        print("|---|" + "---|" * (len(stages) + 1))
        for name, res in ((args.method, enc), ("projection", proj)):
            cells = " | ".join(f"{res['times'][s]:.3f}" if s in res["times"] else "-" for s in stages)
            print(f"| {name} | {cells} | {res['total']:.2f} |")


def _load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def main() -> None:
    from shared.platform.settings import Settings

    defaults = Settings()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=defaults.projection_steps)
    parser.add_argument("--max-seconds", type=float, default=defaults.projection_max_seconds)
    parser.add_argument("--method", default="e4e", choices=["e4e", "psp"])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-cpu", action="store_true", help="GPU section only")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    from bench.random_weights import bench_bundle

    base = bench_bundle("random-1024")
    encoder = random_style_encoder(args.method, base.w_avg())
    data = photo_bytes()
    devices = [] if args.no_cpu else [torch.device("cpu")]
    if torch.cuda.is_available():
        devices.append(torch.device("cuda"))
    print(f"encode vs projection: 1024 px layout, random weights; {args.method} encoder "
          f"{sum(p.numel() for p in encoder.parameters()) / 1e6:.0f} M parameters; projection "
          f"{args.steps} steps, cap {args.max_seconds:g} s; CPU threads {torch.get_num_threads()}")
    from worker.render import projection

    size = projection.projection_size(base.resolution)
    print(f"work per photo: {args.method} encoder {encoder_gmacs(encoder):.1f} GMACs (one pass); "
          f"a projection step renders at full width and {size} px: "
          f"{base.generator.macs(1.0, size) / 1e9:.1f} GMACs forward, about 3x that with the "
          f"backward pass, x {args.steps} steps")
    print("load average before: " + _load())
    rows = [run_device(base, encoder, data, d, args) for d in devices]
    _report(rows, args)
    print(f"load average after: {_load()} (on a busy machine the seconds are only comparable "
          "side by side)")


if __name__ == "__main__":
    main()
