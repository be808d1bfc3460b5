"""Per-stage CPU time of one photo through the whole pipeline: decode, detect, align, encode,
refine (per step), render, paste-back, on a 12-megapixel JPEG (astronaut upscaled to 4000 x 3000).

    .venv/bin/python -m bench.photo_pipeline [--model tiny-random|random-1024] [--steps 2]
    .venv/bin/python -m bench.photo_pipeline --model random-1024 --device cuda --json rows.jsonl

Photos per minute = 60 s / the sum of the stages (one photo at a time, refine included).

``random-1024`` uses bench/random_weights.py (1024 px architecture, random weights: timings only).
"""

from __future__ import annotations

import argparse
import io
import time

import numpy as np
import torch
from PIL import Image


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny-random", choices=["tiny-random", "random-1024"])
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N")
    parser.add_argument("--megapixels", type=float, default=12.0, help="size of the photo")
    parser.add_argument("--weights-dir", default=None, help="default: a temporary folder")
    parser.add_argument("--json", default=None, help="append the photos/min row here (JSON lines)")
    parser.add_argument("--smoke", action="store_true", help="seconds: tiny-random, 0.5 MP, 1 step")
    args = parser.parse_args(argv)
    if args.smoke:
        args.model, args.megapixels, args.steps = "tiny-random", 0.5, 1
    if args.threads:
        torch.set_num_threads(args.threads)
    import skimage.data

    from bench.random_weights import bench_bundle
    from bench.runbook import peak_memory_gb, record, reset_peak_memory
    from shared.recipe.parse import Cost
    from worker.render import inversion, stages
    from worker.render.faces import align_face, paste_back, select_faces
    from worker.render.images import to_uint8
    from worker.render.pipeline import REFINE_MAX_RESOLUTION

    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    bundle = bench_bundle(args.model, device, args.weights_dir)
    height = round((args.megapixels * 1e6 * 3 / 4) ** 0.5)  # 4:3, 12 MP = 4000 x 3000
    width = height * 4 // 3
    big = Image.fromarray(skimage.data.astronaut()).resize((height, height), Image.Resampling.LANCZOS)
    canvas = Image.new("RGB", (width, height), (120, 120, 120))
    canvas.paste(big, ((width - height) // 2, 0))
    buf = io.BytesIO()
    canvas.save(buf, format="JPEG", quality=92)
    data = buf.getvalue()
    times: dict[str, float] = {}

    def lap(name: str, fn):
        start = time.perf_counter()
        out = fn()
        sync()
        times[name] = time.perf_counter() - start
        return out

    detector = stages.face_detector("mtcnn", device)
    detector.detect(np.asarray(big.resize((256, 256))))  # warm-up (kernels, allocations)
    reset_peak_memory(device)
    rgb = lap("decode", lambda: stages.decode(data, 50_000_000))
    faces = lap("detect", lambda: select_faces(detector.detect(rgb), "largest"))
    res = int(bundle.resolution)
    aligned = lap("align", lambda: align_face(rgb, faces[0], size=res))
    enc_in = np.asarray(Image.fromarray(aligned.image).resize((256, 256), Image.Resampling.LANCZOS))
    with torch.no_grad():
        stages.encode(bundle, [enc_in], device)  # warm-up
        wplus = lap("encode", lambda: stages.encode(bundle, [enc_in], device))
    cost = Cost(1.0, res)
    if args.steps > 0:
        # As the pipeline does: optimise at no more than REFINE_MAX_RESOLUTION.
        refine_cost = Cost(1.0, min(res, REFINE_MAX_RESOLUTION))
        _, info = lap("refine_total", lambda: inversion.refine(bundle, aligned.image, wplus,
                                                               args.steps, cost=refine_cost))
        times["refine_per_step"] = times.pop("refine_total") / args.steps
        print(f"refine loss={info['loss']} error {info['error_before']:.4f} -> "
              f"{info['error_after']:.4f}")
    with torch.no_grad():
        stages.render(bundle, wplus, cost)  # warm-up
        img = lap("render", lambda: to_uint8(stages.render(bundle, wplus, cost))[0])
    lap("paste_back", lambda: paste_back(rgb, img, aligned.transform))
    print(f"model={args.model} ({res} px, threads={torch.get_num_threads()}, {device}), photo "
          f"{width}x{height} JPEG")
    for name, seconds in times.items():
        print(f"  {name:16s} {seconds * 1000:9.1f} ms")
    slowest = max(times, key=times.get)
    print(f"slowest stage: {slowest} ({times[slowest]:.2f} s)")
    refine = times.get("refine_per_step", 0.0) * args.steps
    total = sum(v for k, v in times.items() if k != "refine_per_step") + refine
    print(f"photos per minute (one at a time): {60 / total:.1f}")
    record(args.json, "photo_pipeline", f"{args.model} {width * height / 1e6:.1f} MP, "
           f"{args.steps} refine steps", 60 / total, "photos/min",
           f"slowest {slowest} {times[slowest] * 1000:.0f} ms", peak_memory_gb(device))


if __name__ == "__main__":
    main()
