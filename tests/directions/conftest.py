"""Fixtures for the direction tests: the tiny-random model (its directions computed at install),
a web app and an in-process worker runtime on the same migrated SQLite database, a private
Redis database, and items whose W+ codes are stored as a worker would store them."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch

from shared.commands.batches import Upload
from shared.recipe.parse import parse_recipe
from shared.store.tables import Item, Latent
from tests.conftest import pipeline_runtime, private_redis
from tests.support.workers import register_live_worker
from web import create_app
from web.auth import create_token, create_user
from web.extensions import services

RECIPE = {"output": "crop", "preview": {"channels": 0.5, "resolution": 32},
          "final": {"channels": 1.0, "resolution": 64}}


@pytest.fixture
def redis_url() -> Iterator[str]:
    with private_redis("directions") as url:
        yield url


@pytest.fixture
def database_url(sqlite_url) -> str:
    return sqlite_url


@pytest.fixture
def app(migrated, redis_url, tiny_bundle, tiny_weights_dir):
    app = create_app({"model": "tiny-random", "weights_dir": tiny_weights_dir,
                      "database_url": migrated, "redis_url": redis_url,
                      "blob_store": "database", "TESTING": True, "VALIDATE_RESPONSES": True})
    register_live_worker(services(app).sessions, "tiny-random")  # the in-process runtime's model
    yield app
    services(app).close()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runtime(migrated, redis_url, tiny_bundle, tiny_weights_dir):
    with pipeline_runtime(migrated, redis_url, tiny_bundle, tiny_weights_dir, "dir-worker:1") as rt:
        yield rt


def add_user(app, name: str) -> dict:
    with services(app).sessions.begin() as session:
        user = create_user(session, name)
        token = create_token(session, user)
        return {"id": user.id, "headers": {"Authorization": f"Bearer {token}"}}


@pytest.fixture
def alice(app) -> dict:
    return add_user(app, "alice")


@pytest.fixture
def bob(app) -> dict:
    return add_user(app, "bob")


def mapped_codes(bundle, n: int, seed: int) -> torch.Tensor:
    """``n`` W+ codes [n, L, S] of the tiny generator (mapped z, the same w in every slot)."""
    g = bundle.generator
    z = torch.randn(n, g.style_dim, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        return g.broadcast(g.mapping(z)).clone()


def items_with_codes(app, owner_id: int, codes: torch.Tensor) -> list[str]:
    """One batch with an item per code, each code stored as the item's latent (as the worker's
    encode stage stores it). Returns the item ids in order."""
    svc = services(app)
    uploads = [Upload(f"face{i}.png", b"not decoded: the code is stored", "image/png")
               for i in range(len(codes))]
    batch_id = svc.batches.create_batch(owner_id, uploads, parse_recipe(RECIPE, 64))
    with svc.sessions.begin() as session:
        items = session.query(Item).filter(Item.batch_id == batch_id).order_by(Item.position).all()
        for item, code in zip(items, codes, strict=True):
            arr = np.ascontiguousarray(code[None].numpy(), dtype=np.float32)
            session.add(Latent(item_id=item.id, shape=list(arr.shape), data=arr.tobytes(),
                               model_name="tiny-random", meta={"faces": [{}]}))
        return [item.id for item in items]
