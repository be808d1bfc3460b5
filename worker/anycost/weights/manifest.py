"""The weights directory and its manifest (``weights.json``): which checkpoint files are
installed, where they came from, their hashes; written under the directory's lock, read by
everything that asks what is installed (``worker.anycost.weights`` re-exports these names).
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from shared.catalog.configs import MANIFEST_NAME, get_model_config

DEFAULT_WEIGHTS_DIR = Path(__file__).resolve().parents[3] / "var" / "weights"


class WeightsError(Exception):
    """A registry operation failed for a reason the user can fix; the message says how."""


class FetchError(WeightsError):
    """No source delivered a usable file (network down, hosts gone): a failure, not bad input."""


@dataclass(frozen=True)
class InstalledFile:
    """One installed checkpoint, as recorded in the manifest."""

    config: str
    kind: str
    path: Path
    sha256: str | None  # None: found on disk under its released name but not in the manifest
    size: int
    source: str
    pretrained: bool


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of re-hashing one file: status is ok, missing, size, sha256 or untracked."""

    filename: str
    status: str
    detail: str = ""


# --------------------------------------------------------------------------- locations


def weights_dir(override: str | Path | None = None) -> Path:
    """The weights directory: ``override``, else ``$ANYCOST_WEIGHTS_DIR``, else var/weights."""
    raw = override or os.environ.get("ANYCOST_WEIGHTS_DIR") or DEFAULT_WEIGHTS_DIR
    return Path(raw).expanduser()


@contextmanager
def _locked(directory: Path, name: str = ".weights.lock") -> Iterator[None]:
    """An exclusive advisory lock on ``directory/name`` (serialises processes, not threads)."""
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / name).open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# --------------------------------------------------------------------------- manifest


def _read_manifest_data(directory: Path) -> dict:
    """The whole manifest: ``{'version', 'files': {name: record}, 'configs': {name: config}}``."""
    path = directory / MANIFEST_NAME
    if not path.exists():
        return {"version": 1, "files": {}, "configs": {}}
    try:
        data = json.loads(path.read_text())
        if not isinstance(data.get("files"), dict):
            raise TypeError("'files' is not an object")
        if not isinstance(data.setdefault("configs", {}), dict):
            raise TypeError("'configs' is not an object")
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise WeightsError(f"{path}: unreadable manifest ({exc}); move it away and re-import") from None
    return data


def _read_manifest(directory: Path) -> dict[str, dict]:
    return _read_manifest_data(directory)["files"]


def _write_manifest(directory: Path, data: dict) -> None:
    tmp = directory / f".{MANIFEST_NAME}.{os.getpid()}.tmp"
    data = {"version": 1, "files": data.get("files", {}), "configs": data.get("configs", {})}
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, directory / MANIFEST_NAME)


def record(directory: Path, entries: Iterable[InstalledFile], configs: dict[str, dict] | None = None) -> None:
    """Add file records (and user configs) to the manifest, under the directory's lock."""
    with _locked(directory):
        data = _read_manifest_data(directory)
        now = datetime.now(UTC).isoformat(timespec="seconds")
        data["configs"].update(configs or {})
        for entry in entries:
            record = asdict(entry)
            record["path"] = entry.path.name
            record["installed_at"] = now
            data["files"][entry.path.name] = record
        _write_manifest(directory, data)


def installed(config: str, weights_dir_: str | Path | None = None) -> dict[str, InstalledFile]:
    """Installed files of one config, by kind (files on disk only; manifest entries win)."""
    directory = weights_dir(weights_dir_)
    cfg = get_model_config(config, directory)
    files = _read_manifest(directory)
    out: dict[str, InstalledFile] = {}
    for kind in cfg.all_kinds:
        path = directory / cfg.filename(kind)
        if not path.is_file():
            continue
        rec = files.get(path.name)
        if rec is not None and rec.get("config") == config:
            out[kind] = InstalledFile(
                config, kind, path, rec["sha256"], rec["size"], rec["source"], rec["pretrained"]
            )
        else:  # dropped in by hand: usable, but `verify` reports it as untracked
            out[kind] = InstalledFile(
                config, kind, path, None, path.stat().st_size, "untracked", cfg.pretrained
            )
    return out
