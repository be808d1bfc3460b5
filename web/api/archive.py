"""The zip of a batch's finals: one entry per done item, named after the user's original file.

Entry names are made safe for every unzip tool: no directories, no leading dots, no control or
reserved characters, no Windows device names, unique case-insensitively. Bytes go to a spooled
temporary file, so a large batch does not sit in memory twice.
"""

from __future__ import annotations

import re
import tempfile
import unicodedata
import zipfile
from collections.abc import Iterable
from typing import IO

from shared.codes.imagetypes import MIME_TYPES

MAX_STEM_CHARS = 100
SPOOL_BYTES = 32 * 1024 * 1024
_UNSAFE = re.compile(r"[^\w\- .()+,]+", re.UNICODE)
_WINDOWS_RESERVED = {"con", "prn", "aux", "nul"} | {f"com{i}" for i in range(1, 10)} | {
    f"lpt{i}" for i in range(1, 10)
}
_EXTENSIONS = {mime: "." + ("jpg" if fmt == "jpeg" else fmt) for fmt, mime in MIME_TYPES.items()}


def safe_stem(filename: str, fallback: str) -> str:
    """The user's file name without directories or extension, reduced to harmless characters."""
    name = unicodedata.normalize("NFC", filename).replace("\\", "/").rsplit("/", 1)[-1]
    stem = name.rsplit(".", 1)[0] if "." in name.lstrip(".") else name
    stem = "".join(ch for ch in stem if unicodedata.category(ch)[0] != "C")
    stem = _UNSAFE.sub("_", stem).strip(" ._")[:MAX_STEM_CHARS].strip(" ._")
    if not stem or stem.lower() in _WINDOWS_RESERVED:
        stem = f"{fallback}_{stem}" if stem else fallback
    return stem


def extension_for(content_type: str) -> str:
    return _EXTENSIONS.get(content_type, ".bin")


def entry_names(entries: Iterable[tuple[str, str]]) -> list[str]:
    """Unique safe names for (original filename, content type) pairs, in order."""
    taken: set[str] = set()
    names = []
    for position, (filename, content_type) in enumerate(entries):
        stem = safe_stem(filename, f"photo-{position + 1}")
        ext = extension_for(content_type)
        name, n = stem + ext, 1
        while name.lower() in taken:
            n += 1
            name = f"{stem}-{n}{ext}"
        taken.add(name.lower())
        names.append(name)
    return names


MAX_SLUG_CHARS = 60
_SLUG_GAPS = re.compile(r"[\W_]+", re.UNICODE)


def name_slug(name: str | None) -> str:
    """A batch name as a file-name part: letters and digits (any script) in lower case, every
    other run of characters one hyphen; "" when nothing is left."""
    text = unicodedata.normalize("NFKC", name or "").lower()
    return _SLUG_GAPS.sub("-", text).strip("-")[:MAX_SLUG_CHARS].strip("-")


def zip_name(batch_id: str, batch_name: str | None) -> str:
    """The download's file name: ``<slug of the name>-<id prefix>.zip``, or without a name (or
    one of punctuation only) ``batch-<id prefix>-finals.zip``. Werkzeug's ``send_file`` writes
    a non-ASCII one as RFC 5987 ``filename*`` with an ASCII ``filename`` beside it."""
    slug = name_slug(batch_name)
    return f"{slug}-{batch_id[:8]}.zip" if slug else f"batch-{batch_id[:8]}-finals.zip"


def write_zip(files: Iterable[tuple[str, bytes]]) -> IO[bytes]:
    """A zip of (name, bytes) entries, rewound. Images are already compressed: store them."""
    out = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, data in files:
            archive.writestr(name, data)
    out.seek(0)
    return out
