"""Copying one checkpoint from a source (http(s) URL, file:// URL or local path) to a temp file.

Only the weights registry (``worker.anycost.weights``) calls this, from the command line; nothing
downloads at request time. The copy is streamed, hashed on the way, and reports progress.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

#: progress(label, bytes_done, bytes_total_or_None)
ProgressFn = Callable[[str, int, "int | None"], None]

_CHUNK = 1 << 20
_TIMEOUT_S = 60


class DownloadError(Exception):
    """One source could not deliver the file; the message is one line, naming the source."""


def join_source(base: str, filename: str) -> str:
    """``base`` (URL or directory) + file name -> the source of that file."""
    if "://" in base:
        return base.rstrip("/") + "/" + urllib.parse.quote(filename)
    return str(Path(base).expanduser() / filename)


def stderr_progress(label: str, done: int, total: int | None) -> None:
    """Default progress: one line on stderr, rewritten in place, at most ~4 times a second."""
    now = time.monotonic()
    last = getattr(stderr_progress, "_last", 0.0)
    finished = total is not None and done >= total
    if not finished and now - last < 0.25:
        return
    stderr_progress._last = now  # type: ignore[attr-defined]
    mib = done / 2**20
    if total:
        text = f"{label}: {mib:.1f} / {total / 2**20:.1f} MiB ({100 * done / total:.0f}%)"
    else:
        text = f"{label}: {mib:.1f} MiB"
    end = "\n" if finished else ""
    sys.stderr.write("\r" + text + end)
    sys.stderr.flush()


def _open(source: str) -> tuple[BinaryIO, int | None]:
    """Open a source for reading; returns the stream and its size when known."""
    if "://" not in source:
        path = Path(source)
        if not path.is_file():
            raise DownloadError(f"{source}: no such file")
        return path.open("rb"), path.stat().st_size
    scheme = urllib.parse.urlsplit(source).scheme.lower()
    if scheme not in ("http", "https", "file"):
        raise DownloadError(f"{source}: unsupported URL scheme {scheme!r}")
    request = urllib.request.Request(source, headers={"User-Agent": "anycost-batch-weights/1"})
    try:
        response = urllib.request.urlopen(request, timeout=_TIMEOUT_S)  # noqa: S310 (schemes checked)
    except urllib.error.HTTPError as exc:
        raise DownloadError(f"{source}: HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        raise DownloadError(f"{source}: {exc.reason}") from None
    except OSError as exc:  # timeouts, connection resets
        raise DownloadError(f"{source}: {exc}") from None
    length = response.headers.get("Content-Length")
    return response, int(length) if length and length.isdigit() else None


def download(
    source: str, dest: Path, progress: ProgressFn | None = stderr_progress
) -> tuple[str, int]:
    """Copy ``source`` to ``dest``; returns (sha256 hex, size). Removes ``dest`` on failure."""
    label = source.rsplit("/", 1)[-1]
    digest = hashlib.sha256()
    size = 0
    stream, total = _open(source)
    try:
        with stream, dest.open("wb") as out:
            while True:
                try:
                    chunk = stream.read(_CHUNK)
                except OSError as exc:
                    raise DownloadError(
                        f"{source}: connection failed after {size} bytes: {exc}"
                    ) from None
                if not chunk:
                    break
                out.write(chunk)
                digest.update(chunk)
                size += len(chunk)
                if progress:
                    progress(label, size, total)
        if total is not None and size != total:
            raise DownloadError(f"{source}: got {size} of {total} bytes")
        if progress and total is None:
            progress(label, size, size)
    except BaseException:
        dest.unlink(missing_ok=True)
        raise
    return digest.hexdigest(), size


def copy_file(src: Path, dest: Path) -> tuple[str, int]:
    """Copy a local file (no progress), returning (sha256 hex, size)."""
    shutil.copyfile(src, dest)
    return sha256_file(dest), os.path.getsize(dest)


def sha256_file(path: Path) -> str:
    """SHA-256 of a file, streamed."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()
