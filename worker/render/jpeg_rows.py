"""A photo's JPEG with some rows replaced, made by encoding only those rows.

A re-edit's preview changes the faces, never the photo around them, yet encoding the whole
preview photo was most of the time a preview spends after its render. Here the photo is encoded
once with a restart marker after every MCU row (16 px: 4:2:0 subsampling), and kept as its
header and its rows' entropy-coded intervals. Each interval is coded on its own (the DC
predictions restart at a marker), so a preview is the photo's header, its intervals above the
faces, the intervals of the band that holds the faces (encoded from that band alone, with the
same tables), the photo's intervals below, and the markers renumbered in between.

Byte for byte, that is the JPEG of the whole pasted photo with the same settings: the colour
conversion, the 2x2 chroma reduction and the DCT of a 16-row-aligned band see exactly the pixels
they see in the whole photo, and the Huffman tables are the standard ones (no ``optimize``).
``tests/worker/test_jpeg_rows.py`` holds it to that. A decoder shows the same pixels as the
JPEG without markers; the markers add 2 bytes (and up to 7 bits of padding) a row.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

import numpy as np
from PIL import Image

MCU_ROWS = 16  # pixel rows of one MCU row with 4:2:0 subsampling
_SUBSAMPLING_420 = 2  # Pillow's code for 4:2:0
_SOS, _EOI, _DRI = b"\xff\xda", b"\xff\xd9", b"\xff\xdd"
#: A restart (RST0 .. RST7) or the end of image: the only markers in the scan.
_SCAN_MARKER = re.compile(rb"\xff[\xd0-\xd7\xd9]")
#: RST0 .. RST7: the marker after interval k is RST(k mod 8).
_RESTART = tuple(bytes((0xFF, 0xD0 + k)) for k in range(8))


class LayoutError(ValueError):
    """Bytes from the encoder that are not one interval per MCU row (never expected with
    Pillow's libjpeg; the caller then encodes the whole picture)."""


def encode_rows(picture: Image.Image, quality: int) -> bytes:
    """``picture`` as a baseline JPEG (standard tables, 4:2:0) with a restart marker after
    every MCU row: the encoding every spliced JPEG is byte-identical to. A picture made from
    an array (:func:`rows_of`) carries nothing else (an opened file's comment would be kept)."""
    out = io.BytesIO()
    picture.save(out, format="JPEG", quality=quality, subsampling=_SUBSAMPLING_420,
                 restart_marker_rows=1)
    return out.getvalue()


def split_rows(data: bytes, height: int) -> tuple[bytes, list[bytes]]:
    """A JPEG from :func:`encode_rows` of a picture ``height`` px high -> (everything up to and
    including its scan header, each MCU row's entropy-coded bytes without its marker)."""
    sos = data.find(_SOS)
    if sos < 0 or _DRI not in data[:sos] or not data.endswith(_EOI):
        raise LayoutError("not a JPEG with restart intervals and one scan")
    start = sos + 2 + int.from_bytes(data[sos + 2:sos + 4], "big")
    # In entropy-coded data a 0xFF byte is followed by 0x00 (stuffed) or by a marker; the only
    # markers in this scan are the restarts, then the end of image.
    ends = [m.start() for m in _SCAN_MARKER.finditer(data, start)]
    if len(ends) != -(-height // MCU_ROWS) or ends[-1] != len(data) - 2:
        raise LayoutError(f"{len(ends)} restart intervals for {height} px rows")
    for k, end in enumerate(ends[:-1]):
        if data[end + 1] != 0xD0 + k % 8:
            raise LayoutError(f"restart marker {k} out of order")
    starts = [start] + [end + 2 for end in ends[:-1]]
    return data[:start], [data[a:b] for a, b in zip(starts, ends, strict=True)]


def join_rows(header: bytes, rows: list[bytes]) -> bytes:
    """A JPEG from a header and its MCU rows' intervals, with the markers between them."""
    parts = [header]
    for k, row in enumerate(rows):
        if k:
            parts.append(_RESTART[(k - 1) % 8])
        parts.append(row)
    parts.append(_EOI)
    return b"".join(parts)


@dataclass(frozen=True)
class RowJpeg:
    """A picture encoded once, row by row, to splice bands into (:meth:`with_band`)."""

    height: int
    quality: int
    header: bytes
    rows: tuple[bytes, ...]

    @classmethod
    def of(cls, photo: np.ndarray, quality: int) -> RowJpeg:
        """``photo`` ([H, W, 3] uint8) encoded row by row."""
        height = photo.shape[0]
        header, rows = split_rows(encode_rows(rows_of(photo, 0, height), quality), height)
        return cls(height, quality, header, tuple(rows))

    @property
    def nbytes(self) -> int:
        return len(self.header) + sum(len(r) for r in self.rows)

    def band(self, top: int, bottom: int) -> tuple[int, int]:
        """The pixel rows of the MCU rows that cover rows ``[top, bottom)``."""
        first = max(0, top) // MCU_ROWS
        last = -(-min(bottom, self.height) // MCU_ROWS)
        return first * MCU_ROWS, min(last * MCU_ROWS, self.height)

    def with_band(self, band: np.ndarray, top: int) -> bytes:
        """The JPEG of this picture with the rows from ``top`` (a multiple of 16) replaced by
        ``band`` ([h, W, 3] uint8): as many rows as :meth:`band` gives, or up to the picture's
        bottom."""
        rows = band.shape[0]
        if top % MCU_ROWS or top + rows > self.height or (
                rows % MCU_ROWS and top + rows != self.height):
            raise ValueError(f"a band of {rows} rows at {top} is not MCU-aligned")
        _, new = split_rows(encode_rows(rows_of(band, 0, rows), self.quality), rows)
        first = top // MCU_ROWS
        return join_rows(self.header, [*self.rows[:first], *new, *self.rows[first + len(new):]])


def rows_of(photo: np.ndarray, top: int, bottom: int) -> Image.Image:
    """Rows ``[top, bottom)`` of an ``[H, W, 3]`` uint8 photo, as an RGB image (a copy)."""
    return Image.fromarray(np.ascontiguousarray(photo[top:bottom, :, :3]), "RGB")
