"""Fixtures for the photo pipeline tests: the tiny-random model and a worker runtime on SQLite
with our own Redis database (8), the pipeline running in this process."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import pipeline_runtime, private_redis


@pytest.fixture
def redis_url() -> Iterator[str]:
    with private_redis("pipeline_faces") as url:
        yield url


@pytest.fixture
def runtime(sqlite_url, redis_url, tiny_bundle, tiny_weights_dir):
    """A worker runtime on a migrated SQLite database (the pipeline runs in this process)."""
    with pipeline_runtime(sqlite_url, redis_url, tiny_bundle, tiny_weights_dir, "faces-worker:1") as rt:
        yield rt
