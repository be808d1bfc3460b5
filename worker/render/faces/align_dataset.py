"""``python -m worker.render.faces.align_dataset SRC DST``: FFHQ-style aligned crops for training.

Every photo under SRC (recursively; any format the worker decodes) is decoded upright, its
largest face found with our detector (``worker.render.faces.detect``) and cropped with our FFHQ
alignment (``worker.render.faces.align``) to ``--size`` px, written as DST/<same relative path>.png.
Photos without a face, or that cannot be decoded, are skipped and listed in DST/skipped.tsv
(``path<TAB>reason``); the summary line says how many. Existing crops are kept (re-running
continues an interrupted pass). Exit codes: 0 done (even with skips), 2 bad arguments.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from PIL import Image

from worker.render.faces.align import align_face
from worker.render.faces.detect import DetectorUnavailable, get_detector, select_faces
from worker.render.imaging.decode import decode_image
from worker.render.imaging.errors import ImageError

SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".heic", ".heif")
MAX_PIXELS = 80_000_000
SKIPPED_NAME = "skipped.tsv"


def photos(src: Path) -> list[Path]:
    """The photos under ``src`` (sorted), or ``[src]`` for a single file."""
    if src.is_file():
        return [src]
    return sorted(p for p in src.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)


def align_one(path: Path, detector, size: int) -> Image.Image | str:
    """The aligned crop of the largest face in ``path``, or the reason there is none."""
    try:
        decoded = decode_image(path.read_bytes(), MAX_PIXELS)
    except ImageError as exc:
        return f"not decodable: {exc}"
    except OSError as exc:
        return f"unreadable: {exc}"
    faces = select_faces(detector.detect(decoded.rgb), "largest")
    if not faces:
        return "no face found"
    return Image.fromarray(align_face(decoded.rgb, faces[0], size=size).image, "RGB")


def align_dataset(src: Path, dst: Path, size: int = 1024, detector_name: str = "mtcnn",
                  quiet: bool = False) -> tuple[int, list[tuple[str, str]]]:
    """Align every photo of ``src`` into ``dst``; returns (crops written or kept, skipped)."""
    detector = get_detector(detector_name)
    dst.mkdir(parents=True, exist_ok=True)
    done, skipped = 0, []
    files = photos(src)
    for i, path in enumerate(files, 1):
        rel = path.relative_to(src) if src.is_dir() else Path(path.name)
        out = (dst / rel).with_suffix(".png")
        if out.exists():
            done += 1
            continue
        result = align_one(path, detector, size)
        if isinstance(result, str):
            skipped.append((str(rel), result))
        else:
            out.parent.mkdir(parents=True, exist_ok=True)
            tmp = out.with_name(f".{out.name}.part")
            result.save(tmp, format="PNG")
            tmp.replace(out)
            done += 1
        if not quiet and (i % 100 == 0 or i == len(files)):
            print(f"{i}/{len(files)} photos, {done} aligned, {len(skipped)} skipped", flush=True)
    with (dst / SKIPPED_NAME).open("w", encoding="utf-8") as f:
        for rel, reason in skipped:
            f.write(f"{rel}\t{reason}\n")
    return done, skipped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m worker.render.faces.align_dataset",
                                     description="FFHQ-align the faces of a photo folder.")
    parser.add_argument("src", type=Path, help="folder of photos (or one photo)")
    parser.add_argument("dst", type=Path, help="output folder of aligned PNG crops")
    parser.add_argument("--size", type=int, default=1024, help="crop width/height in px")
    parser.add_argument("--detector", default="mtcnn", help="mtcnn or mediapipe")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    if not args.src.exists():
        print(f"error: {args.src}: no such file or folder", file=sys.stderr)
        return 2
    if args.size < 8:
        print("error: --size must be at least 8", file=sys.stderr)
        return 2
    try:
        done, skipped = align_dataset(args.src, args.dst, args.size, args.detector, args.quiet)
    except (DetectorUnavailable, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{done} aligned, {len(skipped)} skipped (listed in {args.dst / SKIPPED_NAME})")
    for rel, reason in skipped:
        print(f"skipped {rel}: {reason}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
