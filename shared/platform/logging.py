"""Logging set-up shared by web and worker: structured JSON lines (``ANYCOST_LOG_JSON=true``) or
plain text, and a context that adds ``batch_id``/``item_id`` to every record logged inside it.

    from shared.platform.logging import bind, configure_logging
    configure_logging(settings)
    with bind(batch_id=batch.id, item_id=item.id):
        log.info("rendered preview")   # -> {"message": "rendered preview", "batch_id": ..., ...}

The context lives in a ``ContextVar``, so threads and asyncio tasks each see their own. Fields
passed with ``extra={...}`` on a single call are included too.
"""

from __future__ import annotations

import json
import logging
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import IO, Any

from shared.platform.settings import Settings

_context: ContextVar[dict[str, Any]] = ContextVar("anycost_log_context", default={})  # noqa: B039

# Attributes every LogRecord has; anything else on a record came from ``extra=`` or bind().
_RECORD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message", "asctime", "taskName",
}
CONTEXT_FIELDS = ("batch_id", "item_id")


@contextmanager
def bind(**fields: Any) -> Iterator[dict[str, Any]]:
    """Add ``fields`` (e.g. ``batch_id``, ``item_id``, ``worker``) to every record logged inside
    the block; ``None`` values are left out. Nested binds add to the outer ones."""
    merged = {**_context.get(), **{k: v for k, v in fields.items() if v is not None}}
    token = _context.set(merged)
    try:
        yield merged
    finally:
        _context.reset(token)


def current_context() -> dict[str, Any]:
    return dict(_context.get())


class ContextFilter(logging.Filter):
    """Copies the bound context onto each record (without overriding an explicit ``extra``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in _context.get().items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, context and extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _RECORD_ATTRS and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc"] = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        return json.dumps(out, default=str)


class PlainFormatter(logging.Formatter):
    """Human-readable lines; the bound ids are appended as ``key=value`` when present."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        ids = [f"{k}={getattr(record, k)}" for k in CONTEXT_FIELDS if getattr(record, k, None)]
        return f"{line} [{' '.join(ids)}]" if ids else line


def make_handler(json_lines: bool, stream: IO[str] | None = None) -> logging.Handler:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if json_lines else PlainFormatter())
    handler.addFilter(ContextFilter())
    return handler


def configure_logging(
    settings: Settings, level: int | str = logging.INFO, stream: IO[str] | None = None
) -> logging.Handler:
    """Install one handler on the root logger (replacing one installed here before). Call it
    once at process start (app factory, worker start-up, reaper)."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_anycost", False)]:
        root.removeHandler(old)
    handler = make_handler(settings.log_json, stream)
    handler._anycost = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    return handler
