"""Fixtures for synthesis batches: a web app and an in-process worker runtime (tiny-random) on
one migrated database and one private Redis database, the worker's heartbeat written for real,
and a helper that hands the queued preview/final messages to the pipeline."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator

import numpy as np
import pytest
import redis
from PIL import Image

from tests.conftest import pipeline_runtime, private_redis
from web import create_app
from web.auth import create_token, create_user
from web.extensions import services

NV = "nv-ada64"  # the imported NVIDIA reference pickle (64 px, with a discriminator)


@pytest.fixture(scope="session")
def nv_weights(tmp_path_factory, reference_dir) -> str:
    """A weights directory with tiny-random (built) and the imported NVIDIA reference config."""
    import subprocess
    import sys

    from tests.conftest import REPO
    from worker.anycost.bundle import load_bundle

    folder = tmp_path_factory.mktemp("synth-weights")
    subprocess.run([sys.executable, "-m", "worker.anycost.weights", "--dir", str(folder),
                    "import-nvidia", str(reference_dir / "nvidia-ada-res64" / "network.pkl"),
                    "--config", NV], cwd=REPO, check=True, capture_output=True)
    load_bundle("tiny-random", folder, device="cpu")
    return str(folder)


@pytest.fixture
def synth_redis() -> Iterator[str]:
    with private_redis("synthesis") as url:
        yield url


@pytest.fixture
def worker(sqlite_url, synth_redis, tiny_bundle, tiny_weights_dir):
    """A tiny-random worker runtime (the pipeline runs in the test) that has beaten once."""
    from worker.process.heartbeat import Heartbeat

    with pipeline_runtime(sqlite_url, synth_redis, tiny_bundle, tiny_weights_dir,
                          "synth-worker:1") as rt:
        Heartbeat(rt.sessions, rt.worker_name, interval=60, model_name=rt.model_name,
                  pretrained=rt.pretrained).beat()
        yield rt


@pytest.fixture
def app(worker, sqlite_url, synth_redis, tiny_weights_dir):
    app = create_app({"model": "tiny-random", "weights_dir": tiny_weights_dir,
                      "database_url": sqlite_url, "redis_url": synth_redis,
                      "blob_store": "database", "TESTING": True, "rate_limits": False,
                      "VALIDATE_RESPONSES": True})
    yield app
    services(app).close()


@pytest.fixture
def headers(app) -> dict:
    with services(app).sessions.begin() as session:
        user = create_user(session, "gen")
        return {"Authorization": f"Bearer {create_token(session, user)}"}


def queued(url: str, queue: str) -> list:
    """The first argument of every message in ``queue`` (oldest first), taken off the queue."""
    client = redis.Redis.from_url(url)
    out = []
    while (raw := client.rpop(queue)) is not None:  # kombu LPUSHes, workers BRPOP
        out.append(json.loads(base64.b64decode(json.loads(raw)["body"]))[0][0])
    client.close()
    return out


def run_worker(rt, url: str) -> int:
    """Hand every queued preview and final message to the pipeline, as the task would."""
    from worker.process.tasks import preview_entries
    from worker.render import pipeline

    n = 0
    while True:
        previews, finals = queued(url, "preview"), queued(url, "final")
        if not previews and not finals:
            return n
        for pairs in previews:
            pipeline.run_previews(rt, *preview_entries(pairs))
        for ids in finals:
            pipeline.run_finals(rt, [str(i) for i in ids])
        n += len(previews) + len(finals)


def image(client, url: str, headers: dict) -> np.ndarray:
    response = client.get(url, headers=headers)
    assert response.status_code == 200, response.data
    return np.asarray(Image.open(io.BytesIO(response.data)).convert("RGB"))


@pytest.fixture
def client(app):
    return app.test_client()
