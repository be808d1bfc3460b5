"""The preview lane's web side: ``GET /items/<id>/preview?v=N&wait=S`` answers as soon as the
preview of edit version N is stored (woken by the worker's nudge), never with an older edit's
picture; 404 not_ready when the item failed or time ran out; the pushed ``item.preview_ready``
event carries that version's image URL. A thread plays the worker on the real database."""

from __future__ import annotations

import threading
import time

import pytest
from web_api_helpers import image_bytes, upload

from shared.items import states
from shared.platform.nudges import nudge
from web.extensions import services

PNG = image_bytes("PNG")
RENDERED = {0: image_bytes("PNG", 32, (10, 20, 30)), 1: image_bytes("PNG", 32, (90, 80, 70))}


def _item(client, headers) -> tuple[str, str]:
    batch = upload(client, headers, [(PNG, "a.png")]).json
    return batch["id"], batch["items"][0]["id"]


def _render(app, batch_id: str, item_id: str, version: int, delay: float,
            nudged: bool = True) -> None:
    """What a worker does for one preview: take, store the picture, complete, nudge."""
    time.sleep(delay)
    svc = services(app)
    with svc.sessions.begin() as s:
        assert states.start_preview(s, item_id, version, "w1")
        blob = svc.blobs.put(s, RENDERED[version], "image/png", batch_id=batch_id)
        s.flush()
        assert states.complete_preview(s, item_id, version, preview_blob_id=blob.id)
    if nudged:
        nudge(svc.settings.redis_url, batch_id)


def _in_thread(*args, **kwargs) -> threading.Thread:
    worker = threading.Thread(target=_render, args=args, kwargs=kwargs)
    worker.start()
    return worker


@pytest.mark.parametrize("nudged", [True, False])
def test_long_poll_answers_when_the_version_is_stored(app, client, alice, nudged):
    batch_id, item_id = _item(client, alice["headers"])
    worker = _in_thread(app, batch_id, item_id, 0, 0.5, nudged=nudged)
    start = time.monotonic()
    r = client.get(f"/api/v1/items/{item_id}/preview?v=0&wait=10", headers=alice["headers"])
    took = time.monotonic() - start
    worker.join()
    assert r.status_code == 200 and r.data == RENDERED[0]
    assert r.headers["X-Edit-Version"] == "0"
    # Woken by the nudge, or found by the re-read every 0.25 s without one; never the timeout.
    assert 0.4 < took < 5


def test_an_older_edits_picture_is_never_the_answer(app, client, alice):
    batch_id, item_id = _item(client, alice["headers"])
    _render(app, batch_id, item_id, 0, 0)
    version = client.patch(f"/api/v1/items/{item_id}/edits", json={"edits": {"smiling": 0.5}},
                           headers=alice["headers"]).json["edit_version"]
    assert version == 1
    start = time.monotonic()
    r = client.get(f"/api/v1/items/{item_id}/preview?v=1&wait=1", headers=alice["headers"])
    assert r.status_code == 404 and r.json["error"]["code"] == "not_ready"
    assert r.json["error"]["item_status"] == "previewing" and time.monotonic() - start >= 0.9
    # Without wait the route answers at once, as before: the last picture there is.
    r = client.get(f"/api/v1/items/{item_id}/preview?v=1", headers=alice["headers"])
    assert r.status_code == 200 and r.data == RENDERED[0] and "X-Edit-Version" not in r.headers
    worker = _in_thread(app, batch_id, item_id, 1, 0.3)
    r = client.get(f"/api/v1/items/{item_id}/preview?v=1&wait=10", headers=alice["headers"])
    worker.join()
    assert r.status_code == 200 and r.data == RENDERED[1] and r.headers["X-Edit-Version"] == "1"
    # An older version asked for: the newer picture is the answer at once.
    r = client.get(f"/api/v1/items/{item_id}/preview?v=0&wait=10", headers=alice["headers"])
    assert r.data == RENDERED[1] and r.headers["X-Edit-Version"] == "1"


def test_a_failure_ends_the_wait_and_others_items_stay_hidden(app, client, alice, bob):
    batch_id, item_id = _item(client, alice["headers"])

    def fail_soon() -> None:
        time.sleep(0.3)
        with services(app).sessions.begin() as s:
            assert states.fail(s, item_id, "no_face", "No face was found.")
        nudge(services(app).settings.redis_url, batch_id)

    threading.Thread(target=fail_soon).start()
    start = time.monotonic()
    r = client.get(f"/api/v1/items/{item_id}/preview?v=0&wait=20", headers=alice["headers"])
    assert r.status_code == 404 and r.json["error"]["item_status"] == "failed"
    assert time.monotonic() - start < 10
    r = client.get(f"/api/v1/items/{item_id}/preview?v=0&wait=1", headers=bob["headers"])
    assert r.status_code == 404 and r.json["error"]["code"] == "not_found"
    for bad in ("wait=31", "wait=x", "wait=1&v=-1"):
        r = client.get(f"/api/v1/items/{item_id}/preview?{bad}", headers=alice["headers"])
        assert r.status_code == 400 and r.json["error"]["code"] == "invalid_parameter"


def test_the_pushed_event_carries_the_versions_image_url(app, client, alice):
    batch_id, item_id = _item(client, alice["headers"])
    _render(app, batch_id, item_id, 0, 0)
    with services(app).sessions.begin() as s:
        states.fail(s, item_id, "no_face", "x")  # ends the batch: the stream closes
    r = client.get(f"/api/v1/batches/{batch_id}/events?timeout=5&last_event_id=0",
                   headers=alice["headers"], buffered=False)
    text = b"".join(r.response).decode()
    ready = [line for line in text.splitlines() if line.startswith("data: ")
             and "preview_url" in line]
    assert len(ready) == 1
    assert f'/api/v1/items/{item_id}/preview?v=0"' in ready[0]
    url = ready[0].split('"preview_url":"')[1].split('"')[0]
    r = client.get(url.split("localhost", 1)[-1], headers=alice["headers"])
    assert r.status_code == 200 and r.data == RENDERED[0]


def test_the_lane_answers_before_the_database_knows(app, client, alice, bob):
    """A worker puts the picture in the preview lane before its SQL transaction: the long-poll
    answers with it (no ETag: nothing is stored yet) while the item still says previewing; an
    older version in the lane is never the answer; another user never reaches the lane."""
    from shared.platform import preview_lane

    batch_id, item_id = _item(client, alice["headers"])
    _render(app, batch_id, item_id, 0, 0)
    version = client.patch(f"/api/v1/items/{item_id}/edits", json={"edits": {"smiling": 0.5}},
                           headers=alice["headers"]).json["edit_version"]
    redis_url = services(app).settings.redis_url
    preview_lane.publish(redis_url, item_id, 0, "image/png", RENDERED[0])

    def lane_only() -> None:
        time.sleep(0.3)
        preview_lane.publish(redis_url, item_id, version, "image/jpeg", b"early")

    threading.Thread(target=lane_only).start()
    start = time.monotonic()
    r = client.get(f"/api/v1/items/{item_id}/preview?v={version}&wait=10",
                   headers=alice["headers"])
    took = time.monotonic() - start
    assert r.status_code == 200 and r.data == b"early" and r.mimetype == "image/jpeg"
    assert r.headers["X-Edit-Version"] == str(version) and "ETag" not in r.headers
    assert 0.25 < took < 0.25 + 5  # woken by the lane's nudge, never the timeout
    assert client.get(f"/api/v1/items/{item_id}", headers=alice["headers"]).json["status"] \
        == "previewing"
    # The same wait from someone else: not found, before any look at the lane.
    r = client.get(f"/api/v1/items/{item_id}/preview?v={version}&wait=1",
                   headers=bob["headers"])
    assert r.status_code == 404 and r.json["error"]["code"] == "not_found"


def test_a_download_from_the_lane_is_named_as_a_stored_one(app, client, alice):
    """``download=1`` with a wait: the lane's picture comes as the same attachment (the upload's
    name and the kind) as the stored one does."""
    from shared.platform import preview_lane

    batch_id, item_id = _item(client, alice["headers"])
    _render(app, batch_id, item_id, 0, 0)
    version = client.patch(f"/api/v1/items/{item_id}/edits", json={"edits": {"smiling": 0.5}},
                           headers=alice["headers"]).json["edit_version"]
    preview_lane.publish(services(app).settings.redis_url, item_id, version, "image/jpeg", b"lane")
    early = client.get(f"/api/v1/items/{item_id}/preview?v={version}&wait=5&download=1",
                       headers=alice["headers"])
    stored = client.get(f"/api/v1/items/{item_id}/preview?download=1", headers=alice["headers"])
    assert early.status_code == 200 and early.data == b"lane" and "ETag" not in early.headers
    assert early.headers["Content-Disposition"] == \
        'attachment; filename="a-preview.jpg"; filename*=UTF-8\'\'a-preview.jpg'
    assert stored.headers["Content-Disposition"] == \
        'attachment; filename="a-preview.png"; filename*=UTF-8\'\'a-preview.png'
    plain = client.get(f"/api/v1/items/{item_id}/preview?v={version}&wait=5",
                       headers=alice["headers"])
    assert plain.data == b"lane" and "Content-Disposition" not in plain.headers


def test_waits_are_bounded_per_user_and_per_process(app, client, alice, bob, monkeypatch):
    """A waiting request holds a server thread: one user has at most PER_USER waits at once,
    and a wait takes one of the process's stream places; past either a 503 with Retry-After, at
    once, while the others still wait and are answered."""
    from shared.platform import preview_lane
    from web.api import stream_guard, wait_slots

    batch_id, item_id = _item(client, alice["headers"])
    url = f"/api/v1/items/{item_id}/preview?v=0&wait=20"
    answers: list[int] = []

    def wait_in_thread() -> threading.Thread:
        thread = threading.Thread(target=lambda: answers.append(
            app.test_client().get(url, headers=alice["headers"]).status_code))
        thread.start()
        return thread

    waiting = [wait_in_thread() for _ in range(wait_slots.PER_USER)]
    deadline = time.monotonic() + 10
    while wait_slots.SLOTS.waiting(alice["id"]) < wait_slots.PER_USER:
        assert time.monotonic() < deadline, "the waits never started"
        time.sleep(0.02)
    start = time.monotonic()
    r = client.get(url, headers=alice["headers"])
    assert r.status_code == 503 and r.json["error"]["code"] == "unavailable"
    assert r.headers["Retry-After"] == "1" and time.monotonic() - start < 2
    # Bob's waits are his own (his item: no picture yet, a short wait ends in 404 not_ready).
    _, bobs_item = _item(client, bob["headers"])
    r = client.get(f"/api/v1/items/{bobs_item}/preview?v=0&wait=1", headers=bob["headers"])
    assert r.status_code == 404 and r.json["error"]["code"] == "not_ready"
    # A process whose stream places (gunicorn's threads but a reserve) are all taken: no wait.
    full = threading.BoundedSemaphore(1)
    full.acquire()
    monkeypatch.setattr(stream_guard, "_PROCESS_SLOTS", full)
    r = client.get(f"/api/v1/items/{bobs_item}/preview?v=0&wait=1", headers=bob["headers"])
    assert r.status_code == 503
    monkeypatch.setattr(stream_guard, "_PROCESS_SLOTS", None)
    # The picture arrives: every waiting request gets it and gives its place back.
    preview_lane.publish(services(app).settings.redis_url, item_id, 0, "image/png",
                         RENDERED[0])
    for thread in waiting:
        thread.join(timeout=10)
    assert answers == [200] * wait_slots.PER_USER
    assert wait_slots.SLOTS.waiting(alice["id"]) == 0 and wait_slots.SLOTS.waiting() == 0
