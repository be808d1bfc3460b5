"""A photo's JPEG with a rectangle of it replaced, made by encoding only that rectangle.

A re-edit's preview changes the faces, never the photo around them, yet encoding the whole
preview photo was most of the time a preview spends after its render. Here the photo is encoded
once with a restart marker after every few MCUs (blocks of 16 x 16 px with 4:2:0 subsampling),
as many as divide a row's MCUs (:func:`interval_mcus`): the restart intervals then form a grid
of 16 px rows and columns a few blocks wide. Each interval is coded on its own (the DC
predictions restart at a marker), so a preview is the photo's header and intervals with those of
the rectangle that holds the faces swapped for the intervals of that rectangle encoded alone,
with the same settings, and the markers renumbered.

Byte for byte, that is the JPEG of the whole pasted photo with the same settings: the colour
conversion, the 2x2 chroma reduction and the DCT of a rectangle on the grid see exactly the
pixels they see in the whole photo (a rectangle at the right or bottom edge is padded as the
photo is), and the Huffman tables are the standard ones (no ``optimize``).
``tests/worker/test_jpeg_grid.py`` holds it to that. A decoder shows the same pixels as the
JPEG without markers; each marker adds 2 bytes (and up to 7 bits of padding).
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

import numpy as np
from PIL import Image

MCU = 16  # pixels on a side of one MCU with 4:2:0 subsampling
#: The narrowest interval, in MCUs (64 px): narrower ones add more markers than they spare.
MIN_INTERVAL_MCUS = 4
_SUBSAMPLING_420 = 2  # Pillow's code for 4:2:0
_SOS, _EOI, _DRI = b"\xff\xda", b"\xff\xd9", b"\xff\xdd"
#: A restart (RST0 .. RST7) or the end of image: the only markers in the scan.
_SCAN_MARKER = re.compile(rb"\xff[\xd0-\xd7\xd9]")
#: RST0 .. RST7: the marker after interval k is RST(k mod 8).
_RESTART = tuple(bytes((0xFF, 0xD0 + k)) for k in range(8))


class LayoutError(ValueError):
    """Bytes from the encoder that are not the intervals expected (never seen with Pillow's
    libjpeg; the caller then encodes the whole picture)."""


def mcus(pixels: int) -> int:
    """MCUs across ``pixels`` (the last one padded)."""
    return -(-pixels // MCU)


def interval_mcus(width: int) -> int:
    """MCUs per restart interval for a picture ``width`` px wide: the smallest divisor of a
    row's MCUs that is at least ``MIN_INTERVAL_MCUS`` (the whole row when none is smaller)."""
    row = mcus(width)
    return next(k for k in range(min(MIN_INTERVAL_MCUS, row), row + 1) if row % k == 0)


def encode_grid(picture: np.ndarray, quality: int, interval: int) -> bytes:
    """``picture`` ([H, W, 3] uint8) as a baseline JPEG (standard tables, 4:2:0) with a
    restart marker after every ``interval`` MCUs: the encoding every spliced JPEG is
    byte-identical to."""
    out = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(picture), "RGB").save(
        out, format="JPEG", quality=quality, subsampling=_SUBSAMPLING_420,
        restart_marker_blocks=interval)
    return out.getvalue()


def split_intervals(data: bytes, count: int) -> tuple[bytes, list[bytes]]:
    """A JPEG from :func:`encode_grid` with ``count`` intervals -> (everything up to and
    including its scan header, each interval's entropy-coded bytes without its marker)."""
    sos = data.find(_SOS)
    if sos < 0 or _DRI not in data[:sos] or not data.endswith(_EOI):
        raise LayoutError("not a JPEG with restart intervals and one scan")
    start = sos + 2 + int.from_bytes(data[sos + 2:sos + 4], "big")
    # In entropy-coded data a 0xFF byte is followed by 0x00 (stuffed) or by a marker; the only
    # markers in this scan are the restarts, then the end of image.
    ends = [m.start() for m in _SCAN_MARKER.finditer(data, start)]
    if len(ends) != count or ends[-1] != len(data) - 2:
        raise LayoutError(f"{len(ends)} restart intervals where {count} were expected")
    for k, end in enumerate(ends[:-1]):
        if data[end + 1] != 0xD0 + k % 8:
            raise LayoutError(f"restart marker {k} out of order")
    starts = [start] + [end + 2 for end in ends[:-1]]
    return data[:start], [data[a:b] for a, b in zip(starts, ends, strict=True)]


def join_intervals(header: bytes, intervals: list[bytes]) -> bytes:
    """A JPEG from a header and its intervals, with the markers between them."""
    parts = [header]
    for k, interval in enumerate(intervals):
        if k:
            parts.append(_RESTART[(k - 1) % 8])
        parts.append(interval)
    parts.append(_EOI)
    return b"".join(parts)


@dataclass(frozen=True)
class GridJpeg:
    """A picture encoded once as a grid of restart intervals, to splice rectangles into
    (:meth:`with_area`)."""

    width: int
    height: int
    quality: int
    interval: int  # MCUs per interval
    header: bytes
    intervals: tuple[bytes, ...]  # row by row of MCUs, ``columns`` a row

    @classmethod
    def of(cls, photo: np.ndarray, quality: int) -> GridJpeg:
        """``photo`` ([H, W, 3] uint8) encoded as a grid."""
        height, width = photo.shape[:2]
        interval = interval_mcus(width)
        count = mcus(height) * (mcus(width) // interval)
        header, intervals = split_intervals(encode_grid(photo, quality, interval), count)
        return cls(width, height, quality, interval, header, tuple(intervals))

    @property
    def columns(self) -> int:
        return mcus(self.width) // self.interval

    @property
    def nbytes(self) -> int:
        return len(self.header) + sum(len(i) for i in self.intervals)

    def area(self, x0: int, y0: int, x1: int, y1: int) -> tuple[int, int, int, int]:
        """The pixels ``(x0, y0, x1, y1)`` of the grid's cells that cover ``[x0, x1) x [y0, y1)``
        (clipped to the picture)."""
        step = MCU * self.interval
        left, top = max(0, x0) // step * step, max(0, y0) // MCU * MCU
        right = min(-(-min(x1, self.width) // step) * step, self.width)
        bottom = min(-(-min(y1, self.height) // MCU) * MCU, self.height)
        return left, top, right, bottom

    def with_area(self, pixels: np.ndarray, left: int, top: int) -> bytes:
        """The JPEG of this picture with the rectangle from (``left``, ``top``) replaced by
        ``pixels`` ([h, w, 3] uint8): a rectangle :meth:`area` gives."""
        height, width = pixels.shape[:2]
        if (left, top, left + width, top + height) != self.area(left, top, left + width,
                                                                top + height):
            raise ValueError(f"a {width} x {height} area at ({left}, {top}) is off the grid")
        columns = mcus(width) // self.interval
        _, new = split_intervals(encode_grid(pixels, self.quality, self.interval),
                                 mcus(height) * columns)
        intervals = list(self.intervals)
        first = top // MCU * self.columns + left // (MCU * self.interval)
        for row in range(mcus(height)):
            at = first + row * self.columns
            intervals[at:at + columns] = new[row * columns:(row + 1) * columns]
        return join_intervals(self.header, intervals)
