"""Per-stage CPU time of one photo through the whole pipeline: decode, detect, align, encode,
refine (per step), render, paste-back, on a 12-megapixel JPEG (astronaut upscaled to 4000 x 3000).

    .venv/bin/python -m bench.photo_pipeline [--model tiny-random|random-1024] [--steps 2]

``random-1024`` uses bench/random_weights.py (1024 px architecture, random weights: timings only).
"""

from __future__ import annotations

import argparse
import io
import time

import numpy as np
import torch
from PIL import Image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny-random", choices=["tiny-random", "random-1024"])
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    import skimage.data

    from bench.random_weights import bench_bundle
    from shared.recipe.parse import Cost
    from worker.render import inversion, stages
    from worker.render.faces import align_face, paste_back, select_faces
    from worker.render.images import to_uint8
    from worker.render.pipeline import REFINE_MAX_RESOLUTION

    bundle = bench_bundle(args.model)
    big = Image.fromarray(skimage.data.astronaut()).resize((3000, 3000), Image.Resampling.LANCZOS)
    canvas = Image.new("RGB", (4000, 3000), (120, 120, 120))
    canvas.paste(big, (500, 0))
    buf = io.BytesIO()
    canvas.save(buf, format="JPEG", quality=92)
    data = buf.getvalue()
    times: dict[str, float] = {}

    def lap(name: str, fn):
        start = time.perf_counter()
        out = fn()
        times[name] = time.perf_counter() - start
        return out

    detector = stages.face_detector("mtcnn")
    rgb = lap("decode", lambda: stages.decode(data, 50_000_000))
    faces = lap("detect", lambda: select_faces(detector.detect(rgb), "largest"))
    res = int(bundle.resolution)
    aligned = lap("align", lambda: align_face(rgb, faces[0], size=res))
    enc_in = np.asarray(Image.fromarray(aligned.image).resize((256, 256), Image.Resampling.LANCZOS))
    with torch.no_grad():
        stages.encode(bundle, [enc_in], torch.device("cpu"))  # warm-up
        wplus = lap("encode", lambda: stages.encode(bundle, [enc_in], torch.device("cpu")))
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
    print(f"model={args.model} ({res} px, threads={torch.get_num_threads()}), photo 4000x3000 JPEG")
    for name, seconds in times.items():
        print(f"  {name:16s} {seconds * 1000:9.1f} ms")
    slowest = max(times, key=times.get)
    print(f"slowest stage: {slowest} ({times[slowest]:.2f} s)")


if __name__ == "__main__":
    main()
