"""Image types recognised from their first bytes (magic numbers), without Pillow.

The web side uses `sniff_format` to refuse obviously wrong uploads (text, HTML, PDFs, ...) before
they are stored; the worker's decoder uses it to pick the one Pillow plugin allowed to open the
bytes. The file name and the client's Content-Type are never trusted: a PNG named `.jpg` is a PNG.
"""

from __future__ import annotations

# Canonical names of every format the service accepts, with the MIME type served back.
MIME_TYPES: dict[str, str] = {
    "jpeg": "image/jpeg",
    "png": "image/png",
    "webp": "image/webp",
    "bmp": "image/bmp",
    "tiff": "image/tiff",
    "gif": "image/gif",
    "heic": "image/heic",
    "avif": "image/avif",
}

# Formats the worker can always decode with a plain Pillow install. HEIC and AVIF depend on the
# Pillow build and plugins, so only the worker (at run time) knows whether it can read them.
CORE_FORMATS: frozenset[str] = frozenset({"jpeg", "png", "webp", "bmp", "tiff", "gif"})
OPTIONAL_FORMATS: frozenset[str] = frozenset({"heic", "avif"})
ACCEPTED_FORMATS: frozenset[str] = CORE_FORMATS | OPTIONAL_FORMATS

# ISO base media (HEIF family) brands found in the `ftyp` box.
_HEIC_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs"}
_AVIF_BRANDS = {b"avif", b"avis"}
_HEIF_GENERIC_BRANDS = {b"mif1", b"msf1", b"miaf"}


def _sniff_isobmff(data: bytes) -> str | None:
    """HEIC or AVIF from an ISO base media `ftyp` box (major brand, then compatible brands)."""
    if len(data) < 12 or data[4:8] != b"ftyp":
        return None
    box_size = int.from_bytes(data[0:4], "big")
    end = min(len(data), box_size if 16 <= box_size <= 4096 else 64)
    # Major brand at 8..12, minor version at 12..16, then compatible brands, four bytes each.
    brands = [data[8:12]] + [data[i : i + 4] for i in range(16, end - 3, 4)]
    if any(b in _AVIF_BRANDS for b in brands):
        return "avif"
    if any(b in _HEIC_BRANDS for b in brands):
        return "heic"
    if any(b in _HEIF_GENERIC_BRANDS for b in brands):
        return "heic"  # a generic HEIF still image; HEIC is by far the common case
    return None


def sniff_format(data: bytes) -> str | None:
    """The canonical format name of `data` (a key of MIME_TYPES), or None when not an accepted image.

    Only the first few dozen bytes are looked at, so a truncated or corrupt file of a known type
    still sniffs as that type; the decoder finds the damage.
    """
    head = bytes(data[:64])
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if len(head) >= 12 and head[0:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if head.startswith((b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")):
        return "tiff"
    # "BM" alone also starts plenty of text; require a plausible DIB header size too.
    if head.startswith(b"BM") and len(head) >= 18:
        dib_size = int.from_bytes(head[14:18], "little")
        if dib_size in (12, 16, 40, 52, 56, 64, 108, 124):
            return "bmp"
    return _sniff_isobmff(head)


def mime_type(fmt: str) -> str:
    """The MIME type for a canonical format name; application/octet-stream when unknown."""
    return MIME_TYPES.get(fmt, "application/octet-stream")
