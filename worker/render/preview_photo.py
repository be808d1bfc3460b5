"""Previews of recipe ``output: photo`` at preview scale, from a per-item cache.

A preview is looked at on a screen, so its photo is the upload downscaled to at most
``PREVIEW_LONG_SIDE`` pixels on its long side, with the face pasted there; only the final pastes
into the full-size photo. The downscaled photo and its face alignments (scaled to it) stay in
this worker process, least recently used first out, within ``CACHE_BYTES``: a re-edit of the
same item neither reads nor decodes the upload again (a 12 MP JPEG is ~150 ms to decode).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image

from worker.render.faces import AlignTransform

PREVIEW_LONG_SIDE = 1024
#: A 1024 px photo is ~3 MB: room for the items of a few editors at once.
CACHE_BYTES = 256 * 1024 * 1024
PREVIEW_JPEG_QUALITY = 90


@dataclass(frozen=True)
class PreviewPhoto:
    """The photo at preview scale and each face's alignment in its pixel coordinates."""

    photo: np.ndarray  # [h, w, 3] uint8
    transforms: tuple[AlignTransform, ...]

    @property
    def nbytes(self) -> int:
        return int(self.photo.nbytes)


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
        return PreviewPhoto(np.ascontiguousarray(photo[:, :, :3]), tuple(transforms))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    # reducing_gap: a fast box reduction first, then a bilinear pass (screen quality).
    small = Image.fromarray(np.ascontiguousarray(photo[:, :, :3]), "RGB").resize(
        size, Image.Resampling.BILINEAR, reducing_gap=2.0)
    sx, sy = size[0] / width, size[1] / height
    return PreviewPhoto(np.asarray(small),
                        tuple(scale_transform(t, sx, sy, size) for t in transforms))


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
