"""Directions through the real system: HTTP -> Redis -> a Celery worker process -> SQL. A real
photo is previewed, edited along the generator's directions and a saved user direction, and the
explorer's strip task runs in the worker (its task name, queue and routing are the real ones)."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator

import numpy as np
import pytest
from PIL import Image

from shared.platform.settings import Settings
from tests.conftest import redis_db_url
from tests.support.stack import Stack, real_photos, running_stack, settled

pytestmark = [pytest.mark.integration, pytest.mark.slow]

RECIPE = {"output": "crop", "preview": {"channels": 0.5, "resolution": 32},
          "final": {"channels": 1.0, "resolution": 64}}


@pytest.fixture(scope="module")
def stack(tiny_weights_dir, tmp_path_factory) -> Iterator[Stack]:
    database = f"sqlite:///{tmp_path_factory.mktemp('dirs-db') / 'anycost.db'}"
    settings = Settings(database_url=database, redis_url=redis_db_url("directions"),
                        model="tiny-random", weights_dir=tiny_weights_dir, render_batch_size=4,
                        torch_threads=1)
    logs = tmp_path_factory.mktemp("dirs-logs")
    with running_stack(settings, "dirs-stack", logs / "worker.log", "dana") as stack:
        yield stack


def _png(api, url: str) -> np.ndarray:
    data, content_type = api.image(url)
    assert content_type == "image/png"
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def _wait_version(api, batch_id: str, version: int) -> dict:
    return api.wait(batch_id, lambda b: b["items"][0]["edit_version"] == version
                    and b["items"][0]["status"] in ("preview_ready", "failed"))["items"][0]


def test_generator_and_saved_directions_and_a_strip_in_a_real_worker(stack):
    api = stack.api
    created = api.submit(real_photos()[:1], RECIPE)
    batch = api.wait(created["id"], settled("preview_ready", "failed"))
    item = batch["items"][0]
    assert item["status"] == "preview_ready", item["error"]
    projected = _png(api, item["projected_url"])

    assert api.edit(item["id"], {"sefa_00": 0.7, "pca_00": -0.4})["edit_version"] == 1
    item = _wait_version(api, created["id"], 1)
    assert item["status"] == "preview_ready", item["error"]
    assert item["edits"] == {"sefa_00": 0.7, "pca_00": -0.4}
    assert not np.array_equal(_png(api, item["preview_url"]), projected)

    saved = api.http.post(f"{api.base}/directions", json={"name": "turn", "source": "sefa_02"})
    assert saved.status_code == 201, saved.text
    assert api.edit(item["id"], {"turn": 0.5})["edit_version"] == 2
    item = _wait_version(api, created["id"], 2)
    assert item["status"] == "preview_ready", item["error"]
    assert item["edits"] == {"user:turn": 0.5}

    strip = api.http.post(f"{api.base}/items/{item['id']}/strips",
                          json={"direction": "turn", "steps": 3})
    assert strip.status_code == 202, strip.text
    url = strip.json()["url"]
    deadline = time.monotonic() + 120
    while (body := api.http.get(url).json())["status"] == "queued":
        assert time.monotonic() < deadline, "the strip was not rendered"
        time.sleep(0.1)
    assert body["status"] == "done", body["error"]
    assert body["direction"] == "user:turn" and body["values"] == [-1.0, 0.0, 1.0]
    frames = _png(api, body["image_url"])
    assert frames.shape == (32, 96, 3)
    assert not np.array_equal(frames[:, :32], frames[:, 64:])
