"""Fixtures for the worker's in-process tests: the tiny-random model (built once per session)
and a runtime on a fresh migrated database, with a private Redis database for its messages."""

from __future__ import annotations

import io
from collections.abc import Iterator

import numpy as np
import pytest
from PIL import Image

from shared.models import Item, User
from shared.settings import Settings
from tests.conftest import private_redis


@pytest.fixture
def worker_redis_url() -> Iterator[str]:
    with private_redis("worker") as url:
        yield url


@pytest.fixture
def runtime(sqlite_url, worker_redis_url, tiny_bundle, tiny_weights_dir):
    """A worker runtime on a migrated SQLite database (the pipeline runs in this process)."""
    from shared.migrate import upgrade
    from worker.runtime import build_runtime

    upgrade(sqlite_url)
    settings = Settings(
        database_url=sqlite_url, redis_url=worker_redis_url, model="tiny-random",
        weights_dir=tiny_weights_dir, render_batch_size=4,
    )
    rt = build_runtime(settings, "test-worker:1", bundle=tiny_bundle)
    yield rt
    rt.close()


@pytest.fixture
def owner(runtime) -> int:
    with runtime.sessions.begin() as session:
        user = User(username="owner")
        session.add(user)
        session.flush()
        return user.id


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
