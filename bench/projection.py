"""Projection without an encoder, both methods side by side in one run: NVIDIA's projector (one
W code, ``worker.render.projector``, the default) and the free W+ fit from w_avg
(``worker.render.projection``), on the full-width generator at the resolution the worker
optimises at (<= 256 px), on a real photo (skimage's astronaut, aligned); with ``--full-render``
also the W projector rendering the model's own size box-filtered to 256 px (``w-full``: what a
model whose 256 px output is untrained gets, NVIDIA's way). Prints seconds per step
and the reconstruction error (MSE in [-1, 1] units, rendered as previews are) at w_avg and after
N/4, N/2 and N steps, per device (CPU always, the GPU section when CUDA is present); optionally
the discriminator's cost per image (the realism score every preview and final pays).

    .venv/bin/python -m bench.projection [--model random-1024|tiny-random] [--steps 8]
        [--threads 2] [--realism] [--full-render]

``random-1024`` uses bench/random_weights.py (1024 px architecture, random weights): the seconds
are those of the real model; the errors only show that the optimisation works, not how close a
trained model gets.
"""

from __future__ import annotations

import argparse
import time

import torch


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _error(bundle, code, target, full: bool = False) -> float:
    """MSE of ``code`` rendered with the model's fixed noise against the aligned ``target``:
    the full-width output at the target's size, or (``full``) the model's own size box-filtered
    to it (what a final shows, seen at the target's size)."""
    import torch.nn.functional as F

    from worker.render.images import from_uint8

    device = code.device
    target = from_uint8(target[None] if target.ndim == 3 else target, device)
    size = int(target.shape[-1])
    with torch.no_grad():
        image = bundle.generator.synthesis(code, channels=1.0,
                                           resolution=bundle.resolution if full else size,
                                           noise_mode="const", impl="ref").float()
    if full and image.shape[-1] != size:
        image = F.interpolate(image, size=(size, size), mode="area")
    return float(F.mse_loss(image, target))


def run_device(bundle, target, steps: int, device: torch.device, method: str) -> dict:
    """One projection of ``target`` on ``device`` by ``method`` ("w": NVIDIA's projector,
    "w-full": the same rendering the model's own size, "wplus": the W+ fit): seconds per step
    and errors at w_avg and after N/4, N/2, N steps (separate runs of that many steps: the W
    projector's schedule depends on N)."""
    from worker.render import projection, projector

    def run(n: int):
        if method == "w":
            return projector.project(bundle, target, n)
        if method == "w-full":
            return projector.project(bundle, target, n, render_resolution=bundle.resolution)
        return projection.project(bundle, target, n)

    bundle.generator.to(device)
    run(1)  # warm-up: kernels, allocator, thread pools
    _sync(device)
    started = time.perf_counter()
    code, _ = run(steps)
    _sync(device)
    seconds = time.perf_counter() - started
    marks = {0: _error(bundle, projection.average_code(bundle, 1), target)}
    for n in (steps // 4, steps // 2):
        if 0 < n < steps:
            marks[n] = _error(bundle, run(n)[0], target)
    marks[steps] = _error(bundle, code, target)
    return {"device": str(device), "method": method, "per_step": seconds / max(1, steps),
            "marks": marks, "total": seconds, "final": _error(bundle, code, target, full=True)}


def render_seconds(bundle, cost, device: torch.device, repeat: int = 3) -> float:
    """One forward render of one code at ``cost`` on ``device``, median of ``repeat``."""
    from worker.render import stages

    g = bundle.generator
    codes = torch.zeros(1, g.n_style, g.style_dim, device=device)
    times = []
    with torch.inference_mode():
        stages.render(bundle, codes, cost)
        for _ in range(repeat):
            _sync(device)
            t = time.perf_counter()
            stages.render(bundle, codes, cost)
            _sync(device)
            times.append(time.perf_counter() - t)
    return sorted(times)[len(times) // 2]


def realism_seconds(resolution: int, channel_max: int, size: int, device: torch.device,
                    repeat: int = 3) -> float:
    """Seconds for a discriminator as wide as the generator to score one image
    rendered at ``size`` px (resized to the discriminator's input), median of ``repeat``."""
    from worker.anycost.discriminator import Discriminator
    from worker.render import quality

    d = Discriminator(resolution, channel_multiplier=2, channel_max=channel_max).to(device).eval()
    image = torch.rand(1, 3, size, size, device=device) * 2 - 1
    quality.realism_logits(d, image)
    times = []
    for _ in range(repeat):
        _sync(device)
        t = time.perf_counter()
        quality.realism_logits(d, image)
        _sync(device)
        times.append(time.perf_counter() - t)
    return sorted(times)[len(times) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="random-1024", choices=["random-1024", "tiny-random"])
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--realism", action="store_true", help="also time the discriminator")
    parser.add_argument("--no-cpu", action="store_true", help="GPU section only")
    parser.add_argument("--full-render", action="store_true",
                        help="also the W projector rendering the model's own size (w-full)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    import skimage.data

    from bench.random_weights import bench_bundle
    from worker.render import projection
    from worker.render.faces import align_face, get_detector, select_faces

    bundle = bench_bundle(args.model)
    size = projection.projection_size(bundle.resolution)
    rgb = skimage.data.astronaut()
    face = select_faces(get_detector().detect(rgb), "largest")[0]
    target = align_face(rgb, face, size=size).image

    devices = [] if args.no_cpu else [torch.device("cpu")]
    if torch.cuda.is_available():
        devices.append(torch.device("cuda"))
    from shared.recipe.parse import default_costs

    preview_cost, final_cost = default_costs(bundle.resolution)
    rows = []
    for d in devices:
        preview_s = render_seconds(bundle, preview_cost, d)
        final_s = render_seconds(bundle, final_cost, d)
        for method in ("w", "wplus", *(("w-full",) if args.full_render else ())):
            row = run_device(bundle, target, args.steps, d, method)
            # Side by side in the same run: what a step costs next to the renders a worker does.
            row["preview_render"], row["final_render"] = preview_s, final_s
            rows.append(row)
    from worker.render import projector

    print(f"projection: model {args.model} ({bundle.resolution} px), full width at {size} px, "
          f"{args.steps} steps, CPU threads {torch.get_num_threads()}; w = NVIDIA's projector "
          f"(lr {projector.LEARNING_RATE}, distance {projector.distance_name()}), wplus = W+ fit "
          f"(lr {projection.LEARNING_RATE})")
    marks = list(rows[0]["marks"]) if rows else []
    head = " | ".join(f"err@{n}" for n in marks)
    print(f"err@n: the full-width {size} px output; full@{args.steps}: the {bundle.resolution} px "
          f"render box-filtered to {size} px (what a final shows)")
    print(f"| device | method | s/step | total s | {head} | full@{args.steps} |")
    print("|---|---|---|---|" + "---|" * (len(marks) + 1))
    for row in rows:
        errs = " | ".join(f"{row['marks'][n]:.4f}" for n in marks)
        print(f"| {row['device']} | {row['method']} | {row['per_step']:.3f} | {row['total']:.1f} "
              f"| {errs} | {row['final']:.4f} |")
    default = 100
    for row in rows:
        print(f"{row['device']} {row['method']}: one step = {row['per_step'] / row['preview_render']:.1f}x a "
              f"preview render ({preview_cost.channels:g} channels, {preview_cost.resolution} px: "
              f"{row['preview_render'] * 1000:.0f} ms), "
              f"{row['per_step'] / row['final_render']:.2f}x a final render "
              f"({final_cost.resolution} px: {row['final_render'] * 1000:.0f} ms); the default "
              f"{default} steps take about {row['per_step'] * default:.0f} s per face")
    if args.realism:
        res = int(bundle.resolution)
        channel_max = 512 if res >= 1024 else 64
        for device in devices:
            for render in sorted({min(res, 256), res}):
                secs = realism_seconds(res, channel_max, render, device)
                row = next(r for r in rows if r["device"] == str(device))  # either method
                print(f"realism: discriminator {res} px on a {render} px render, {device}: "
                      f"{secs * 1000:.0f} ms per image = {secs / row['preview_render']:.1f}x a "
                      f"preview render")


if __name__ == "__main__":
    main()
