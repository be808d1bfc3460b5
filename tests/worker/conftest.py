"""Fixtures for the worker's in-process tests: the tiny-random model (built once per session)
and a runtime on a fresh migrated database, with a private Redis database for its messages."""

from __future__ import annotations

import io
from collections.abc import Iterator

import numpy as np
import pytest
from PIL import Image

from shared.store.tables import Item
from tests.conftest import pipeline_runtime, private_redis


@pytest.fixture
def worker_redis_url() -> Iterator[str]:
    with private_redis("worker") as url:
        yield url


@pytest.fixture
def runtime(sqlite_url, worker_redis_url, tiny_bundle, tiny_weights_dir):
    """A worker runtime on a migrated SQLite database (the pipeline runs in this process)."""
    with pipeline_runtime(sqlite_url, worker_redis_url, tiny_bundle, tiny_weights_dir, "test-worker:1") as rt:
        yield rt


def png_bytes(rgb: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(rgb).save(out, format="PNG")
    return out.getvalue()


@pytest.fixture(scope="session")
def photos() -> list[bytes]:
    """Two real photos: skimage's astronaut (colour) and camera (grey) as PNG bytes."""
    import skimage.data

    return [png_bytes(skimage.data.astronaut()), png_bytes(skimage.data.camera())]


def items_of(rt, batch_id: str) -> list[Item]:
    with rt.sessions() as session:
        return list(
            session.query(Item).filter(Item.batch_id == batch_id).order_by(Item.position)
        )
