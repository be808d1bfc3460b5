"""A re-edit's preview image after its render: the face pasted into the photo at preview scale and
the JPEG, the whole photo against only the rectangle of the JPEG's grid that the face covers
(``worker.render.jpeg_grid``).

    python -m bench.preview_encode [--repeat 200] [--crop 256]

Photos: Grace Hopper at 12 MP (``bench.edit_loop``'s photo: the face fills much of it) and the
astronaut at 4000 x 3000 (a smaller face in a wider scene), each at preview scale (1024 px long
side). The two ways alternate call by call on the same crop, so a busy spell hits both; the
median of each and their ratio are printed. The bytes are checked to show the same pixels.
"""

from __future__ import annotations

import argparse
import io
import statistics
import time

import numpy as np
from PIL import Image


def _photos() -> dict[str, np.ndarray]:
    import matplotlib.cbook
    from skimage import data

    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as f:
        hopper = Image.open(f).convert("RGB")
    scale = (12e6 / (hopper.width * hopper.height)) ** 0.5
    hopper = hopper.resize((round(hopper.width * scale), round(hopper.height * scale)))
    astronaut = Image.fromarray(data.astronaut()).resize((4000, 3000), Image.Resampling.BICUBIC)
    return {"grace hopper 12 MP": np.asarray(hopper), "astronaut 12 MP": np.asarray(astronaut)}


def _whole(scaled, crops) -> bytes:
    """As without the grid: the whole photo copied, pasted into and encoded."""
    from worker.render.faces import paste_into
    from worker.render.images import encode_jpeg
    from worker.render.preview_photo import PREVIEW_JPEG_QUALITY

    picture = scaled.photo.copy()
    for crop, transform in zip(crops, scaled.transforms, strict=False):
        paste_into(picture, crop, transform)
    return encode_jpeg(picture, quality=PREVIEW_JPEG_QUALITY)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=200)
    p.add_argument("--crop", type=int, default=256, help="the rendered face's side (preview res)")
    args = p.parse_args(argv)

    from worker.render.faces import align_face, get_detector, select_faces
    from worker.render.faces.paste import paste_region
    from worker.render.preview_photo import at_preview_scale, paste_preview

    detector = get_detector("mtcnn")
    print(f"{'photo':<20} {'preview':>10} {'face area':>10} {'whole ms':>9} {'area ms':>8} "
          f"{'ratio':>6}")
    for name, photo in _photos().items():
        aligned = align_face(photo, select_faces(detector.detect(photo))[0], size=1024)
        scaled = at_preview_scale(photo, [aligned.transform])
        height, width = scaled.photo.shape[:2]
        crop = np.asarray(Image.fromarray(aligned.image).resize((args.crop, args.crop)))
        crops = (crop // 4 * 3 + 32)[None]  # the face itself, toned down (an edit's render)
        with Image.open(io.BytesIO(paste_preview(scaled, crops))) as a, \
                Image.open(io.BytesIO(_whole(scaled, crops))) as b:
            assert np.array_equal(np.asarray(a), np.asarray(b)), "the two ways differ"
        times: dict[str, list[float]] = {"whole": [], "area": []}
        for _ in range(args.repeat):
            for way, fn in (("whole", _whole), ("area", paste_preview)):
                started = time.perf_counter()
                fn(scaled, crops)
                times[way].append(time.perf_counter() - started)
        whole, area = (statistics.median(times[k]) * 1e3 for k in ("whole", "area"))
        left, top, right, bottom = scaled.jpeg.area(*paste_region(scaled.transforms[0], width,
                                                                  height))
        print(f"{name:<20} {f'{width}x{height}':>10} {f'{right - left}x{bottom - top}':>10} "
              f"{whole:>9.2f} {area:>8.2f} {whole / area:>5.2f}x")


if __name__ == "__main__":
    main()
