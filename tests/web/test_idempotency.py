"""``Idempotency-Key`` on uploads (SQLite and PostgreSQL, real Redis queue): the same user and key
return the first batch and store and queue nothing more; another body with the key is a 422; the
key is per user; a key older than 24 hours is free again; a refused upload frees its key."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update
from web_api_helpers import image_bytes, queued_messages

from shared.store.tables import Batch, Blob, IdempotencyKey, utcnow
from tests.conftest import private_redis
from web.extensions import services

PNG = image_bytes("PNG")
OTHER = image_bytes("PNG", color=(10, 20, 30))


@pytest.fixture
def redis_url():
    with private_redis("webhard") as url:
        yield url


def _post(client, headers, key=None, files=((PNG, "a.png"),), recipe=None):
    import io

    data = {"files": [(io.BytesIO(b), n) for b, n in files]}
    if recipe is not None:
        data["recipe"] = json.dumps(recipe)
    if key is not None:
        headers = {**headers, "Idempotency-Key": key}
    return client.post("/api/v1/batches", data=data, headers=headers,
                       content_type="multipart/form-data")


def _count(app, model) -> int:
    with services(app).sessions() as session:
        return session.scalar(select(func.count()).select_from(model))


def test_same_key_same_request_returns_the_same_batch(app, client, alice, redis_url):
    first = _post(client, alice["headers"], "key-1", recipe={"edits": {"smiling": 0.5}})
    assert first.status_code == 201, first.json
    blobs, messages = _count(app, Blob), len(queued_messages(redis_url, "preview"))
    again = _post(client, alice["headers"], "key-1", recipe={"edits": {"smiling": 0.5}})
    assert again.status_code == 200, again.json
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json["id"] == first.json["id"]
    assert [i["id"] for i in again.json["items"]] == [i["id"] for i in first.json["items"]]
    assert again.headers["Location"].endswith(first.json["id"])
    # No second upload: no new batch, blob or queue message.
    assert _count(app, Batch) == 1 and _count(app, Blob) == blobs
    assert len(queued_messages(redis_url, "preview")) == messages


def test_same_key_different_request_is_422_and_stores_nothing(app, client, alice):
    assert _post(client, alice["headers"], "key-2").status_code == 201
    for changed in ({"files": ((OTHER, "a.png"),)}, {"files": ((PNG, "b.png"),)},
                    {"recipe": {"edits": {"young": 0.3}}}):
        response = _post(client, alice["headers"], "key-2", **changed)
        assert response.status_code == 422, response.json
        assert response.json["error"]["code"] == "idempotency_key_reused"
        assert response.json["error"]["field"] == "Idempotency-Key"
    assert _count(app, Batch) == 1


def test_keys_are_per_user_and_expire(app, client, alice, bob):
    mine = _post(client, alice["headers"], "shared-key").json["id"]
    theirs = _post(client, bob["headers"], "shared-key")
    assert theirs.status_code == 201 and theirs.json["id"] != mine
    assert _post(client, alice["headers"]).status_code == 201  # no key: always a new batch
    assert _post(client, alice["headers"]).status_code == 201
    assert _count(app, Batch) == 4
    with services(app).sessions.begin() as session:
        session.execute(update(IdempotencyKey).values(created_at=utcnow() - timedelta(hours=25)))
    later = _post(client, alice["headers"], "shared-key", recipe={"edits": {"young": 0.3}})
    assert later.status_code == 201 and later.json["id"] != mine


def test_a_refused_upload_frees_its_key_and_bad_keys_are_400(app, client, alice):
    bad = _post(client, alice["headers"], "key-3", files=((b"not an image", "a.png"),))
    assert bad.status_code == 415
    assert _count(app, IdempotencyKey) == 0
    assert _post(client, alice["headers"], "key-3").status_code == 201
    for key in ("", " ", "x" * 256, "caf\u00e9"):
        response = _post(client, alice["headers"], key)
        assert response.status_code == 400, (key, response.json)
    assert _count(app, Batch) == 1


def test_a_key_still_being_stored_is_409_with_retry_after(app, client, alice):
    from web import idempotency

    print_ = "0" * 64
    assert idempotency.claim(services(app).sessions, alice["id"], "key-4", print_) is None
    with services(app).sessions() as session:
        stored = session.scalar(select(IdempotencyKey.fingerprint))
    assert stored == print_
    # A second request with the same content while the first holds the claim.
    with services(app).sessions.begin() as session:
        session.execute(update(IdempotencyKey).values(fingerprint=_fingerprint_of_default_post()))
    response = _post(client, alice["headers"], "key-4")
    assert response.status_code == 409 and response.headers["Retry-After"] == "1"
    assert response.json["error"]["code"] == "idempotency_in_progress"
    # A claim left by a request that died long ago is taken over.
    with services(app).sessions.begin() as session:
        session.execute(update(IdempotencyKey).values(created_at=utcnow() - timedelta(hours=1)))
    assert _post(client, alice["headers"], "key-4").status_code == 201


def _fingerprint_of_default_post() -> str:
    from shared.commands.batches import Upload
    from shared.recipe.parse import parse_recipe
    from web import idempotency

    recipe = parse_recipe({}, 1024).as_dict()
    return idempotency.fingerprint(recipe, None, [Upload("a.png", PNG, "image/png")])
