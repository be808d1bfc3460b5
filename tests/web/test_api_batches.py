"""The REST contract end to end with the Flask test client, on SQLite and PostgreSQL, with a real
Redis: uploads land as rows and as Celery messages, reads follow the API contract, limits and owners hold."""

from __future__ import annotations

import time

from sqlalchemy import select
from web_api_helpers import image_bytes, queued_messages, upload

from shared.platform.queue import PREVIEW_TASK
from shared.store.tables import Item
from web.extensions import services

ITEM_FIELDS = {"id", "filename", "status", "error", "preview_url", "final_url", "projected_url",
               "original_url", "timings", "edits", "edit_version", "attempts"}


def test_upload_creates_rows_and_preview_messages(app, client, alice, redis_url):
    recipe = {"edits": {"smiling": 0.5, "young": -0.3}, "preview": {"channels": 0.5, "resolution": 256}}
    files = [(image_bytes("PNG"), "a.png"), (image_bytes("JPEG"), "b.jpg"),
             (image_bytes("WEBP"), "c.webp")]
    response = upload(client, alice["headers"], files, recipe)
    assert response.status_code == 201, response.json
    body = response.json
    assert body["status"] == "queued"
    assert [i["filename"] for i in body["items"]] == ["a.png", "b.jpg", "c.webp"]
    assert {i["status"] for i in body["items"]} == {"queued"}
    ids = [i["id"] for i in body["items"]]

    # The messages really are in Redis, carrying (item id, edit version) only.
    messages = queued_messages(redis_url, "preview")
    assert {task for task, _ in messages} == {PREVIEW_TASK}
    sent = [pair for _, group in messages for pair in group]
    assert sorted(sent) == sorted([[i, 0] for i in ids])

    with services(app).sessions() as session:
        rows = session.scalars(select(Item).where(Item.batch_id == body["id"])).all()
        assert sorted(r.id for r in rows) == sorted(ids)
        assert all(r.enqueued_at is not None for r in rows)

    batch = client.get(f"/api/v1/batches/{body['id']}", headers=alice["headers"]).json
    assert batch["status"] == "queued" and batch["progress"] == 0.0
    assert batch["counts"]["queued"] == 3 and batch["counts"]["done"] == 0
    assert batch["recipe"]["edits"] == {"31_Smiling": 0.5, "39_Young": -0.3}
    assert batch["recipe"]["preview"] == {"channels": 0.5, "resolution": 256}
    assert batch["recipe"]["final"] == {"channels": 1.0, "resolution": 1024}
    assert batch["model"] == {"name": "anycost-ffhq-config-f", "pretrained": True}
    assert batch["created_at"].endswith("Z")
    item = batch["items"][1]
    assert ITEM_FIELDS <= set(item)
    assert item["error"] is None and item["preview_url"] is None and item["final_url"] is None

    # The original comes back byte for byte, typed by its content (not its name).
    original = client.get(item["original_url"], headers=alice["headers"])
    assert original.status_code == 200
    assert original.mimetype == "image/jpeg" and original.data == files[1][0]
    again = client.get(item["original_url"], headers={**alice["headers"],
                                                        "If-None-Match": original.headers["ETag"]})
    assert again.status_code == 304
    missing = client.get(f"/api/v1/items/{item['id']}/preview", headers=alice["headers"])
    assert missing.status_code == 404 and missing.json["error"]["code"] == "not_ready"


def test_redis_outage_keeps_the_items_queued(app_factory, alice, client):
    down = app_factory(redis_url="redis://127.0.0.1:1/0")  # nothing listens on port 1
    client = down.test_client()
    started = time.monotonic()
    response = upload(client, alice["headers"], [(image_bytes(), "a.png"), (image_bytes(), "b.png")])
    elapsed = time.monotonic() - started
    assert response.status_code == 201, response.json
    with services(down).sessions() as session:
        rows = session.scalars(select(Item).where(Item.batch_id == response.json["id"])).all()
        assert len(rows) == 2
        # Still queued and marked unsent, so the reconciler's release_user sends them later.
        assert {(r.status, r.enqueued_at) for r in rows} == {("queued", None)}
    assert elapsed < 10, f"an upload during a Redis outage took {elapsed:.1f} s"


def test_another_users_batch_is_not_found(client, alice, bob):
    created = upload(client, alice["headers"], [(image_bytes(), "a.png")]).json
    batch_id, item_id = created["id"], created["items"][0]["id"]
    for method, url in [
        ("get", f"/api/v1/batches/{batch_id}"),
        ("post", f"/api/v1/batches/{batch_id}/finalize"),
        ("post", f"/api/v1/batches/{batch_id}/cancel"),
        ("get", f"/api/v1/batches/{batch_id}/download"),
        ("get", f"/api/v1/items/{item_id}"),
        ("get", f"/api/v1/items/{item_id}/original"),
        ("get", f"/api/v1/items/{item_id}/final"),
        ("post", f"/api/v1/items/{item_id}/finalize"),
        ("post", f"/api/v1/items/{item_id}/retry"),
    ]:
        response = getattr(client, method)(url, headers=bob["headers"])
        assert response.status_code == 404, (method, url, response.status_code)
        assert response.json["error"]["code"] == "not_found"
    edit = client.patch(f"/api/v1/items/{item_id}/edits", json={"edits": {"smiling": 1}},
                        headers=bob["headers"])
    assert edit.status_code == 404
    listing = client.get("/api/v1/batches", headers=bob["headers"]).json
    assert listing["total"] == 0
    # Nothing bob did changed alice's batch.
    batch = client.get(f"/api/v1/batches/{batch_id}", headers=alice["headers"]).json
    assert batch["status"] == "queued" and batch["items"][0]["edit_version"] == 0


def test_pagination_newest_first(client, alice, bob):
    ids = [upload(client, alice["headers"], [(image_bytes(), f"{n}.png")]).json["id"]
           for n in range(5)]
    upload(client, bob["headers"], [(image_bytes(), "bob.png")])
    pages = [client.get(f"/api/v1/batches?page={p}&per_page=2", headers=alice["headers"]).json
             for p in (1, 2, 3)]
    assert [p["total"] for p in pages] == [5, 5, 5] and pages[0]["pages"] == 3
    seen = [b["id"] for p in pages for b in p["batches"]]
    assert [len(p["batches"]) for p in pages] == [2, 2, 1]
    assert sorted(seen) == sorted(ids)
    assert seen[0] == ids[-1], "the newest batch comes first"
    assert pages[0]["batches"][0]["item_count"] == 1
    assert pages[0]["batches"][0]["counts"]["queued"] == 1
    for bad in ("per_page=0", "per_page=101", "page=0", "page=abc"):
        response = client.get(f"/api/v1/batches?{bad}", headers=alice["headers"])
        assert response.status_code == 400
        assert response.json["error"]["field"] == bad.split("=")[0]


def test_cancel_batch(client, alice):
    created = upload(client, alice["headers"], [(image_bytes(), "a.png"), (image_bytes(), "b.png")])
    batch_id = created.json["id"]
    response = client.post(f"/api/v1/batches/{batch_id}/cancel", headers=alice["headers"])
    assert response.status_code == 200 and response.json["canceled"] == 2
    batch = client.get(f"/api/v1/batches/{batch_id}", headers=alice["headers"]).json
    assert batch["status"] == "canceled" and batch["progress"] == 1.0
    assert batch["counts"]["canceled"] == 2 and batch["canceled_at"]
    # Nothing is left to finalize.
    response = client.post(f"/api/v1/batches/{batch_id}/finalize", headers=alice["headers"])
    assert response.status_code == 202 and response.json["queued"] == 0
