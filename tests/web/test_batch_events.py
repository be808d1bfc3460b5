"""``GET /api/v1/batches/<id>/events`` (server-sent events from the outbox): a snapshot, then each
item event as transitions commit, ending after ``batch.completed``; resuming with Last-Event-ID;
keep-alive comments and an end on a quiet stream; 404 for another user's batch."""

from __future__ import annotations

import io
import json
import threading
import time

import pytest
from web_api_helpers import image_bytes

from shared.items import states
from tests.conftest import private_redis
from web.extensions import services

PNG = image_bytes("PNG")


@pytest.fixture
def redis_url():
    with private_redis("webhard") as url:
        yield url


def _frames(response) -> list[dict]:
    """Parse a whole event stream into frames ({"id", "event", "data"} or {"comment"})."""
    text = b"".join(response.response).decode()
    frames = []
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        frame: dict = {}
        for line in block.splitlines():
            field, _, value = line.partition(": ")
            if line.startswith(":"):
                frame["comment"] = line[1:].strip()
            elif field == "data":
                frame["data"] = json.loads(value)
            else:
                frame[field] = value
        frames.append(frame)
    return frames


def _batch(client, headers, files: int = 2) -> dict:
    data = {"files": [(io.BytesIO(PNG), f"p{i}.png") for i in range(files)]}
    return client.post("/api/v1/batches", data=data, headers=headers,
                       content_type="multipart/form-data").json


def _work(app, first: str, second: str, delay: float) -> None:
    time.sleep(delay)
    sessions = services(app).sessions
    with sessions.begin() as s:
        states.start_preview(s, first, 0, "w1")
        states.complete_preview(s, first, 0)
    with sessions.begin() as s:
        states.request_final(s, first)
        states.complete_final(s, first)
    with sessions.begin() as s:
        states.fail(s, second, "no_face", "No face was found.")


def test_stream_follows_the_batch_to_completion_and_resumes(app, client, alice):
    batch = _batch(client, alice["headers"])
    first, second = (i["id"] for i in batch["items"])
    worker = threading.Thread(target=_work, args=(app, first, second, 0.5))
    started = time.monotonic()
    worker.start()
    response = client.get(f"/api/v1/batches/{batch['id']}/events?timeout=20",
                          headers=alice["headers"], buffered=False)
    assert response.status_code == 200 and response.mimetype == "text/event-stream"
    frames = [f for f in _frames(response) if "event" in f]
    worker.join()
    assert time.monotonic() - started < 15  # it ended at batch.completed, not at the timeout
    assert [f["event"] for f in frames] == [
        "snapshot", "item.preview_ready", "item.done", "item.failed", "batch.completed"]
    snapshot = frames[0]["data"]
    assert snapshot["status"] == "queued" and [i["id"] for i in snapshot["items"]] == [first, second]
    assert frames[2]["data"]["item_id"] == first and frames[3]["data"]["error"]["code"] == "no_face"
    ids = [int(f["id"]) for f in frames]
    assert ids == sorted(ids) and len(set(ids[1:])) == 4

    # Resume after item.done: the rest, no snapshot.
    resumed = client.get(f"/api/v1/batches/{batch['id']}/events",
                         headers={**alice["headers"], "Last-Event-ID": frames[2]["id"]})
    assert [f["event"] for f in _frames(resumed) if "event" in f] == [
        "item.failed", "batch.completed"]
    # A fresh stream of a finished batch: the snapshot, then the end.
    done = _frames(client.get(f"/api/v1/batches/{batch['id']}/events", headers=alice["headers"]))
    assert [f["event"] for f in done if "event" in f] == ["snapshot"]
    counts = done[-1]["data"]["counts"]
    assert done[-1]["data"]["status"] == "done" and counts["done"] == counts["failed"] == 1


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.slow
def test_quiet_stream_sends_keep_alives_and_ends_at_the_timeout(app_factory, alice):
    app = app_factory(sse_heartbeat_seconds=1)
    client = app.test_client()
    batch = _batch(client, alice["headers"], files=1)
    started = time.monotonic()
    frames = _frames(client.get(f"/api/v1/batches/{batch['id']}/events?timeout=3",
                                headers=alice["headers"], buffered=False))
    elapsed = time.monotonic() - started
    assert 2.5 < elapsed < 8
    assert [f["event"] for f in frames if "event" in f] == ["snapshot"]
    assert sum(f.get("comment") == "keep-alive" for f in frames) >= 2


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_only_the_owner_streams_and_parameters_are_checked(client, alice, bob):
    batch = _batch(client, alice["headers"], files=1)
    url = f"/api/v1/batches/{batch['id']}/events"
    assert client.get(url, headers=bob["headers"]).status_code == 404
    assert client.get(url).status_code == 401
    for query in ("?timeout=0", "?timeout=99999", "?timeout=abc"):
        assert client.get(url + query, headers=alice["headers"]).status_code == 400
    response = client.get(url, headers={**alice["headers"], "Last-Event-ID": "x"})
    assert response.status_code == 400


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
@pytest.mark.slow
def test_an_event_committed_after_a_later_one_is_still_sent(app, client, alice):
    """PostgreSQL commits out of id order: item 1's event gets its id first but commits after
    item 2's. A stream that already passed item 2's id sends item 1's when it commits."""
    batch = _batch(client, alice["headers"])
    first, second = (i["id"] for i in batch["items"])
    sessions = services(app).sessions
    allocated, go = threading.Event(), threading.Event()

    def slow_commit():
        with sessions.begin() as s:
            states.start_preview(s, first, 0, "w1")
            states.complete_preview(s, first, 0)  # its event row is flushed: its id is taken
            allocated.set()
            go.wait(20)

    slow = threading.Thread(target=slow_commit)
    slow.start()
    assert allocated.wait(20)
    with sessions.begin() as s:  # a later id, committed first
        states.fail(s, second, "no_face", "No face was found.")
    threading.Timer(1.5, go.set).start()  # commits while the stream below is open
    frames = _frames(client.get(f"/api/v1/batches/{batch['id']}/events?timeout=6",
                                headers=alice["headers"], buffered=False))
    slow.join()
    events = [f for f in frames if "event" in f]
    assert events[0]["event"] == "snapshot"
    snapshot = {i["id"]: i["status"] for i in events[0]["data"]["items"]}
    assert snapshot[second] == "failed" and snapshot[first] != "preview_ready"
    late = [f for f in events[1:] if f["data"].get("item_id") == first]
    assert [f["event"] for f in late] == ["item.preview_ready"]
    assert int(late[0]["id"]) < int(events[0]["id"])  # sent after a higher id: its commit order
