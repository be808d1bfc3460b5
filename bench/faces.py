"""Per-stage CPU time of the photo front end on a 12-megapixel JPEG: decode, detect, align, paste.

The photo is scikit-image's astronaut upscaled to 4000 x 3000 (face about 700 px wide).
Each stage runs `--repeat` times after one warm-up; the median is reported.

    .venv/bin/python -m bench.faces [--repeat 3] [--size 1024] [--threads 0]
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
from collections.abc import Callable

from PIL import Image


def timed(fn: Callable[[], object], repeat: int) -> tuple[float, object]:
    result = fn()  # warm-up (first-call allocations, torch kernels)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--size", type=int, default=1024, help="aligned crop side (model res)")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads; 0 = default")
    args = parser.parse_args()

    import torch
    from skimage import data

    from worker.render.faces import (
        MTCNNDetector,
        align_face,
        get_detector,
        paste_back,
        select_faces,
    )
    from worker.render.imaging import decode_image

    photo = Image.fromarray(data.astronaut()).resize((4000, 3000), Image.Resampling.BICUBIC)
    buf = io.BytesIO()
    photo.save(buf, "JPEG", quality=92)
    jpeg = buf.getvalue()
    print(f"input: 4000x3000 JPEG, {len(jpeg) / 1e6:.1f} MB; torch threads {torch.get_num_threads()}")

    detector = get_detector("mtcnn", threads=args.threads)
    unrefined = MTCNNDetector(refine_iterations=0)
    rows: list[tuple[str, float]] = []

    t, decoded = timed(lambda: decode_image(jpeg, 50_000_000), args.repeat)
    rows.append(("decode (JPEG -> RGB, full checks)", t))
    rgb = decoded.rgb

    t, _ = timed(lambda: unrefined.detect(rgb), args.repeat)
    rows.append(("  detect: MTCNN on 1024 px copy", t))
    t, faces = timed(lambda: detector.detect(rgb), args.repeat)
    rows.append(("detect (MTCNN + landmark refinement)", t))
    face = select_faces(faces)[0]

    t, aligned = timed(lambda: align_face(rgb, face, size=args.size), args.repeat)
    rows.append((f"align (FFHQ crop, {args.size} px)", t))

    t, _ = timed(lambda: paste_back(rgb, aligned.image, aligned.transform), args.repeat)
    rows.append(("paste-back (identity edit)", t))

    width = max(len(name) for name, _ in rows)
    print(f"{'stage':<{width}}  {'median ms':>10}")
    for name, seconds in rows:
        print(f"{name:<{width}}  {seconds * 1000:>10.1f}")
    stages = [(n, s) for n, s in rows if not n.startswith("  ")]
    total = sum(s for _, s in stages)
    slowest = max(stages, key=lambda r: r[1])
    print(f"{'total':<{width}}  {total * 1000:>10.1f}")
    print(f"slowest stage: {slowest[0]} ({100 * slowest[1] / total:.0f}% of the total)")


if __name__ == "__main__":
    main()
