"""Fixtures for the photo pipeline tests: the tiny-random model and a worker runtime on SQLite
with our own Redis database (8), the pipeline running in this process."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shared.models import User
from shared.settings import Settings
from tests.conftest import private_redis


@pytest.fixture
def redis_url() -> Iterator[str]:
    with private_redis("pipeline_faces") as url:
        yield url


@pytest.fixture
def runtime(sqlite_url, redis_url, tiny_bundle, tiny_weights_dir):
    from shared.migrate import upgrade
    from worker.runtime import build_runtime

    upgrade(sqlite_url)
    settings = Settings(database_url=sqlite_url, redis_url=redis_url, model="tiny-random",
                        weights_dir=tiny_weights_dir, render_batch_size=4)
    rt = build_runtime(settings, "faces-worker:1", bundle=tiny_bundle)
    yield rt
    rt.close()


@pytest.fixture
def owner(runtime) -> int:
    with runtime.sessions.begin() as session:
        user = User(username="owner")
        session.add(user)
        session.flush()
        return user.id
