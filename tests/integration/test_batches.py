"""A batch of real photos through the real system: HTTP upload -> Redis -> a Celery worker
process -> SQL, then per-item edits, finalize and download; on SQLite and PostgreSQL."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import func, select

from shared.commands.batches import Upload
from shared.recipe.parse import parse_recipe
from shared.store.tables import Blob, Item
from tests.support.stack import real_photos, settled

pytestmark = pytest.mark.integration

RECIPE = {"output": "crop", "edits": {"smiling": 0.5, "young": -0.3},
          "preview": {"channels": 0.5, "resolution": 32},
          "final": {"channels": 1.0, "resolution": 64}}
PREVIEW_STAGES = {"queue_wait", "decode", "faces", "encode", "store_latent", "edit",
                  "render_preview"}


def _png(api, url: str) -> np.ndarray:
    data, content_type = api.image(url)
    assert content_type == "image/png"
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def test_real_photos_upload_preview_edit_finalize_download(stack):
    api = stack.api
    created = api.submit(real_photos(), RECIPE)
    assert [i["filename"] for i in created["items"]] == ["astronaut.png", "grace_hopper.jpg",
                                                          "camera.png"]
    batch = api.wait(created["id"], settled("preview_ready", "failed"))
    assert batch["status"] == "preview_ready" and batch["progress"] == 0.5
    for item in batch["items"]:
        assert item["status"] == "preview_ready" and item["error"] is None
        assert item["attempts"] == 0  # taken together in one message: a group's takes are free
        assert item["model"] == {"name": "tiny-random", "pretrained": False}
        assert PREVIEW_STAGES <= set(item["timings"])
        assert _png(api, item["preview_url"]).shape == (32, 32, 3)
        assert _png(api, item["projected_url"]).shape == (32, 32, 3)

    # A new preview for one item: new edits, a new edit version, a different picture.
    first = batch["items"][0]
    old_preview = _png(api, first["preview_url"])
    assert api.edit(first["id"], {"smiling": -1.0, "eyeglasses": 0.8})["edit_version"] == 1
    batch = api.wait(created["id"], lambda b: b["items"][0]["status"] == "preview_ready"
                     and b["items"][0]["edit_version"] == 1)
    assert not np.array_equal(_png(api, batch["items"][0]["preview_url"]), old_preview)

    assert api.finalize(created["id"])
    batch = api.wait(created["id"], settled("done", "failed"))
    assert batch["status"] == "done" and batch["progress"] == 1.0
    finals = []
    for item in batch["items"]:
        assert item["status"] == "done" and "render_final" in item["timings"]
        finals.append(_png(api, item["final_url"]))
        assert finals[-1].shape == (64, 64, 3)
    assert not np.array_equal(finals[0], finals[2])  # different faces, different results

    data, content_type = api.image(batch["download_url"])
    assert content_type == "application/zip"
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert len(archive.namelist()) == 3


def _blob_count(stack) -> int:
    with stack.services.sessions() as session:
        return session.scalar(select(func.count()).select_from(Blob))


def _items(stack, batch_id: str) -> list[Item]:
    with stack.services.sessions() as session:
        return list(session.scalars(
            select(Item).where(Item.batch_id == batch_id).order_by(Item.position)))


def test_duplicate_messages_leave_one_result_and_a_bad_item_fails_alone(stack):
    svc, api = stack.services, stack.api
    photos = real_photos()
    blobs_before = _blob_count(stack)
    # Non-image bytes inserted directly (the web side would refuse them at upload).
    uploads = [Upload(photos[0][0], photos[0][1], "image/png"),
               Upload("notes.png", b"these bytes are not an image", "image/png"),
               Upload(photos[1][0], photos[1][1], "image/jpeg")]
    batch_id = svc.batches.create_batch(stack.user_id, uploads, parse_recipe(RECIPE, 64))
    good, bad, other = _items(stack, batch_id)
    pairs = [(good.id, 0), (bad.id, 0), (other.id, 0)]
    svc.dispatcher.send_previews(pairs)  # the same message, delivered a second time
    svc.dispatcher.send_previews([(good.id, 7)])  # a stale or bogus edit version
    # One worker takes messages in order: when the next batch is rendered, those were handled.
    sentinel = api.submit([photos[2]], RECIPE)
    api.wait(sentinel["id"], settled("preview_ready"))

    good, bad, other = _items(stack, batch_id)
    assert (good.status, other.status) == ("preview_ready", "preview_ready")
    # One message of three: takes in a group are not charged (shared.items.states), and the
    # duplicate message took nothing.
    assert (good.attempts, other.attempts) == (0, 0)
    assert (bad.status, bad.error_code) == ("failed", "unsupported_format")
    assert bad.error_message
    # 4 uploads, a preview and a projection for each of 3 rendered items: no second result.
    assert _blob_count(stack) == blobs_before + 4 + 3 * 2

    assert svc.batches.finalize_batch(stack.user_id, batch_id) == 2
    svc.dispatcher.send_finals([good.id, other.id])  # the finals' message, twice
    api.finalize(sentinel["id"])
    api.wait(sentinel["id"], settled("done"))
    good, bad, other = _items(stack, batch_id)
    assert (good.status, other.status, bad.status) == ("done", "done", "failed")
    assert (good.attempts, other.attempts) == (0, 0)  # the finals' group: free; no duplicate took one
    assert _blob_count(stack) == blobs_before + 4 + 3 * 2 + 3
