"""Previews of recipe ``output: photo`` at preview scale, from a per-item cache.

A preview is looked at on a screen, so its photo is the upload downscaled to at most
``PREVIEW_LONG_SIDE`` pixels on its long side, with the face pasted there; only the final pastes
into the full-size photo. The downscaled photo and its face alignments (scaled to it) stay in
this worker process, least recently used first out, within ``CACHE_BYTES``: a re-edit of the
same item neither reads nor decodes the upload again (a 12 MP JPEG is ~150 ms to decode).

The cache also keeps the photo's JPEG as a grid of restart intervals (``worker.render.jpeg_grid``):
a preview pastes its faces into the cells they cover and encodes only those
(:func:`paste_preview`), byte for byte the JPEG of the whole pasted photo.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image

from worker.render.faces import AlignTransform
from worker.render.faces.paste import paste_into, paste_region
from worker.render.images import encode_jpeg
from worker.render.jpeg_grid import GridJpeg, LayoutError

log = logging.getLogger(__name__)

PREVIEW_LONG_SIDE = 1024
#: A 1024 px photo is ~3 MB: room for the items of a few editors at once.
CACHE_BYTES = 256 * 1024 * 1024
PREVIEW_JPEG_QUALITY = 90


@dataclass(frozen=True)
class PreviewPhoto:
    """The photo at preview scale, each face's alignment in its pixel coordinates, and the
    photo's JPEG as a grid (None if the encoder's bytes were not laid out as expected)."""

    photo: np.ndarray  # [h, w, 3] uint8
    transforms: tuple[AlignTransform, ...]
    jpeg: GridJpeg | None = None

    @property
    def nbytes(self) -> int:
        return int(self.photo.nbytes) + (self.jpeg.nbytes if self.jpeg else 0)


def scale_transform(transform: AlignTransform, sx: float, sy: float,
                    size: tuple[int, int]) -> AlignTransform:
    """The same alignment in a photo resized by (sx, sy) to ``size`` (width, height): quads are
    in continuous pixel coordinates, so they scale exactly."""
    quad = np.asarray(transform.quad, dtype=np.float64) * np.array([sx, sy])
    return AlignTransform(quad=quad, size=transform.size, image_size=size)


def at_preview_scale(photo: np.ndarray, transforms: list[AlignTransform],
                     long_side: int = PREVIEW_LONG_SIDE) -> PreviewPhoto:
    height, width = photo.shape[:2]
    scale = min(1.0, long_side / max(height, width))
    if scale >= 1.0:
        small, scaled = np.ascontiguousarray(photo[:, :, :3]), tuple(transforms)
    else:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        # reducing_gap: a fast box reduction first, then a bilinear pass (screen quality).
        small = np.asarray(Image.fromarray(np.ascontiguousarray(photo[:, :, :3]), "RGB").resize(
            size, Image.Resampling.BILINEAR, reducing_gap=2.0))
        sx, sy = size[0] / width, size[1] / height
        scaled = tuple(scale_transform(t, sx, sy, size) for t in transforms)
    try:
        jpeg = GridJpeg.of(small, PREVIEW_JPEG_QUALITY)
    except LayoutError as exc:  # previews then encode the whole photo
        log.warning("preview photo not splittable into JPEG intervals: %s", exc)
        jpeg = None
    return PreviewPhoto(small, scaled, jpeg)


def paste_preview(scaled: PreviewPhoto, crops) -> bytes:
    """The preview's JPEG: each face of ``crops`` ([F, R, R, 3] uint8) pasted into the
    rectangle of the JPEG's grid that holds the faces, that rectangle encoded and spliced into
    the photo's JPEG."""
    height, width = scaled.photo.shape[:2]
    pairs = list(zip(crops, scaled.transforms, strict=False))
    regions = [paste_region(t, width, height) for _, t in pairs]
    regions = [r for r in regions if r[2] > r[0] and r[3] > r[1]]
    if scaled.jpeg is not None and regions:
        left, top, right, bottom = scaled.jpeg.area(
            min(r[0] for r in regions), min(r[1] for r in regions),
            max(r[2] for r in regions), max(r[3] for r in regions))
        area = scaled.photo[top:bottom, left:right].copy()  # the cached photo is never written
        for crop, transform in pairs:
            paste_into(area, crop, transform, top=top, left=left)
        try:
            return scaled.jpeg.with_area(area, left, top)
        except LayoutError as exc:  # never seen: the whole photo then, as without the grid
            log.warning("preview area not splittable into JPEG intervals: %s", exc)
    picture = scaled.photo.copy()
    for crop, transform in pairs:
        paste_into(picture, crop, transform)
    return encode_jpeg(picture, quality=PREVIEW_JPEG_QUALITY)


class PhotoCache:
    """Per-item preview photos, bounded in bytes (least recently used out first)."""

    def __init__(self, max_bytes: int = CACHE_BYTES):
        self.max_bytes = max_bytes
        self._entries: OrderedDict[tuple, PreviewPhoto] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: tuple, build: Callable[[], PreviewPhoto]) -> PreviewPhoto:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
                self.hits += 1
                return entry
            self.misses += 1
        entry = build()
        with self._lock:
            if key not in self._entries and entry.nbytes <= self.max_bytes:
                self._entries[key] = entry
                self._bytes += entry.nbytes
                while self._bytes > self.max_bytes:
                    _, old = self._entries.popitem(last=False)
                    self._bytes -= old.nbytes
        return entry

    def discard_item(self, item_id: str) -> None:
        with self._lock:
            for key in [k for k in self._entries if k[0] == item_id]:
                self._bytes -= self._entries.pop(key).nbytes

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)


#: The worker process's cache (one process per GPU; Celery's pool runs one task at a time).
CACHE = PhotoCache()
