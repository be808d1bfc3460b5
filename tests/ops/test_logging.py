"""Structured logs: JSON lines carry the bound batch and item ids; plain lines name them too."""

from __future__ import annotations

import io
import json
import logging
import threading

import pytest

from shared.platform.logging import bind, configure_logging, current_context
from shared.platform.settings import Settings


@pytest.fixture
def restore_root():
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_json_line_carries_batch_and_item(restore_root):
    stream = io.StringIO()
    configure_logging(Settings(log_json=True), stream=stream)
    log = logging.getLogger("anycost.test")
    with bind(batch_id="b123", item_id="i456"):
        log.info("rendered %s", "preview", extra={"seconds": 0.25})
    log.warning("outside")
    first, second = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert first["message"] == "rendered preview"
    assert (first["batch_id"], first["item_id"], first["seconds"]) == ("b123", "i456", 0.25)
    assert first["level"] == "INFO" and first["logger"] == "anycost.test" and first["ts"]
    assert "batch_id" not in second and second["message"] == "outside"


def test_bind_nests_and_is_per_thread(restore_root):
    seen = {}
    with bind(batch_id="b1"):
        with bind(item_id="i1", worker=None):
            assert current_context() == {"batch_id": "b1", "item_id": "i1"}
        assert current_context() == {"batch_id": "b1"}
        thread = threading.Thread(target=lambda: seen.update(current_context()))
        thread.start()
        thread.join()
    assert seen == {} and current_context() == {}


def test_json_exception_and_plain_format(restore_root):
    stream = io.StringIO()
    configure_logging(Settings(log_json=True), stream=stream)
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logging.getLogger("x").exception("failed")
    assert "RuntimeError: boom" in json.loads(stream.getvalue())["exc"]

    plain = io.StringIO()
    configure_logging(Settings(log_json=False), stream=plain)
    with bind(batch_id="b9", item_id="i9"):
        logging.getLogger("x").info("hello")
    line = plain.getvalue().strip()
    assert line.endswith("hello [batch_id=b9 item_id=i9]") and "INFO x:" in line
    ours = [h for h in logging.getLogger().handlers if getattr(h, "_anycost", False)]
    assert len(ours) == 1, "configure_logging replaces its own handler instead of adding one"
