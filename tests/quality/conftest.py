"""Fixtures for the quality tests: tiny-random with a random-weight discriminator, the same model
without an encoder, and worker runtimes on SQLite with our own Redis database (12)."""

from __future__ import annotations

import copy
from collections.abc import Iterator

import pytest
import torch

from tests.conftest import private_redis


def random_discriminator(resolution: int = 64, seed: int = 7):
    """A random-weight Discriminator for ``resolution`` px (no weights were ever released)."""
    from worker.anycost.discriminator import Discriminator

    torch.manual_seed(seed)
    return Discriminator(resolution, channel_multiplier=2, channel_max=64).eval()


def with_parts(bundle, **parts):
    """A shallow copy of ``bundle`` with some parts replaced (discriminator, encoder ...)."""
    out = copy.copy(bundle)
    for name, value in parts.items():
        setattr(out, name, value)
    return out


@pytest.fixture
def redis_url() -> Iterator[str]:
    with private_redis("quality") as url:
        yield url


@pytest.fixture(scope="session")
def judged_bundle(tiny_bundle):
    """tiny-random plus a discriminator."""
    return with_parts(tiny_bundle, discriminator=random_discriminator())


@pytest.fixture
def make_runtime(sqlite_url, redis_url, tiny_weights_dir, migrated_databases):
    """``make_runtime(bundle, **settings)``: a worker runtime on a migrated SQLite database."""
    from shared.platform.settings import Settings
    from worker.render.runtime import build_runtime

    migrated_databases.sqlite_copy(sqlite_url)
    made = []

    def make(bundle, **overrides):
        settings = Settings(database_url=sqlite_url, redis_url=redis_url, model="tiny-random",
                            weights_dir=tiny_weights_dir, render_batch_size=4, **overrides)
        rt = build_runtime(settings, f"quality-worker:{len(made) + 1}", bundle=bundle)
        made.append(rt)
        return rt

    yield make
    for rt in made:
        rt.close()


@pytest.fixture
def user_id(make_runtime, tiny_bundle) -> int:
    from shared.store.tables import User

    rt = make_runtime(tiny_bundle)
    with rt.sessions.begin() as session:
        user = User(username="owner")
        session.add(user)
        session.flush()
        return user.id
