"""Webhooks end to end: a batch names a URL, item transitions (shared.items.states, as a worker makes
them) write outbox events in their own transactions, the sender POSTs them to a real HTTP receiver
on 127.0.0.1 that checks every Standard Webhooks signature itself, retries with backoff past a
receiver that fails the first two tries, records attempts, gives up after the last attempt, and
refuses private addresses unless allowed."""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import time
from collections import Counter

import pytest
from sqlalchemy import delete, select
from web_api_helpers import image_bytes

from shared.items import states, webhooks
from shared.items.events import BATCH_COMPLETED
from shared.store.tables import Event, WebhookDelivery
from tests.conftest import private_redis
from tests.support.webhook_receiver import Receiver
from web.extensions import services

PNG = image_bytes("PNG")


@pytest.fixture
def redis_url():
    with private_redis("webhard") as url:
        yield url


@pytest.fixture
def receiver():
    r = Receiver(failures=2)
    yield r
    r.close()


@pytest.fixture
def hook_app(app_factory):
    return app_factory(webhook_allow_private=True, webhook_backoff_seconds=0.05,
                       webhook_max_attempts=4, webhook_timeout=5)


def _upload(client, headers, url: str, files: int = 2, via_recipe: bool = False):
    data = {"files": [(io.BytesIO(PNG), f"p{i}.png") for i in range(files)]}
    if via_recipe:
        data["recipe"] = json.dumps({"edits": {"smiling": 0.4}, "webhook_url": url})
    else:
        data["webhook_url"] = url
    return client.post("/api/v1/batches", data=data, headers=headers,
                       content_type="multipart/form-data")


def _work(app, item_ids: list[str]) -> None:
    """What workers do: the first item renders a preview and a final, the second fails."""
    sessions = services(app).sessions
    first, second = item_ids
    with sessions.begin() as s:
        assert states.start_preview(s, first, 0, "w1") and states.complete_preview(s, first, 0)
    with sessions.begin() as s:
        assert states.request_final(s, first) and states.start_final(s, first, "w1")
    with sessions.begin() as s:
        assert states.complete_final(s, first)
    with sessions.begin() as s:
        assert states.start_preview(s, second, 0, "w2")
        assert states.fail(s, second, "no_face", "No face was found.")


def _deliver_until_settled(app, timeout: float = 15.0) -> list[WebhookDelivery]:
    svc = services(app)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        webhooks.deliver_due(svc.sessions, svc.settings)
        with svc.sessions() as s:
            rows = s.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)).all()
        if rows and all(r.status != "pending" for r in rows):
            return rows
        time.sleep(0.05)
    raise AssertionError(f"deliveries still pending: {[(r.id, r.attempts) for r in rows]}")


def test_events_are_signed_delivered_and_retried(hook_app, alice, receiver):
    client = hook_app.test_client()
    missing = _upload(client, alice["headers"], receiver.url)
    assert missing.status_code == 409 and missing.json["error"]["code"] == "webhook_secret_missing"
    made = client.post("/api/v1/webhooks/secret", headers=alice["headers"])
    assert made.status_code == 201 and made.json["secret"].startswith("whsec_")
    receiver.secret = made.json["secret"]

    created = _upload(client, alice["headers"], receiver.url)
    assert created.status_code == 201, created.json
    batch_id = created.json["id"]
    item_ids = [i["id"] for i in created.json["items"]]
    _work(hook_app, item_ids)

    rows = _deliver_until_settled(hook_app)
    assert [r.status for r in rows] == ["delivered"] * 4
    assert all(r.attempts == 3 and r.last_status_code == 204 and r.delivered_at for r in rows)
    # Every try was signed right; each event was tried three times under one webhook-id.
    assert receiver.received and all(r["verified"] for r in receiver.received)
    assert sorted(Counter(r["id"] for r in receiver.received).values()) == [3, 3, 3, 3]
    bodies = {}
    for r in receiver.received:
        assert bodies.setdefault(r["id"], r["body"]) == r["body"]  # the same body on retries
    events = [json.loads(b) for b in bodies.values()]
    kinds = Counter(e["type"] for e in events)
    assert kinds == {"item.preview_ready": 1, "item.done": 1, "item.failed": 1,
                     "batch.completed": 1}
    by_kind = {e["type"]: e for e in events}
    assert by_kind["item.done"]["data"]["item_id"] == item_ids[0]
    assert by_kind["item.failed"]["data"]["error"]["code"] == "no_face"
    completed = by_kind["batch.completed"]["data"]
    assert completed["batch_id"] == batch_id and completed["counts"]["done"] == 1
    assert completed["counts"]["failed"] == 1
    # Nothing is sent twice once delivered.
    sent = len(receiver.received)
    webhooks.deliver_due(services(hook_app).sessions, services(hook_app).settings)
    assert len(receiver.received) == sent


def test_gives_up_after_the_last_attempt_and_a_missed_completion_is_swept(hook_app, alice):
    broken = Receiver(failures=None)
    try:
        client = hook_app.test_client()
        broken.secret = client.post("/api/v1/webhooks/secret", headers=alice["headers"]).json["secret"]
        created = _upload(client, alice["headers"], broken.url, via_recipe=True)
        assert created.status_code == 201, created.json
        assert "webhook_url" not in created.json  # not part of the stored recipe
        _work(hook_app, [i["id"] for i in created.json["items"]])
        svc = services(hook_app)
        # As if two workers finished the last items together and neither saw the batch complete.
        with svc.sessions.begin() as s:
            s.execute(delete(Event).where(Event.kind == BATCH_COMPLETED))
        rows = _deliver_until_settled(hook_app)
        assert len(rows) == 4 and all(r.status == "failed" for r in rows)
        assert all(r.attempts == 4 and r.last_status_code == 500 for r in rows)
        assert all(r["verified"] for r in broken.received) and len(broken.received) == 16
        with svc.sessions() as s:
            assert s.scalar(select(Event.kind).where(Event.kind == BATCH_COMPLETED))
    finally:
        broken.close()


def test_private_addresses_are_refused_unless_allowed(app_factory, alice, receiver):
    """At submission: 400 naming the field. At delivery (a URL stored while allowed, then the
    setting turned off): the attempt fails for good, nothing reaches the receiver."""
    allowed = app_factory(webhook_allow_private=True)
    client = allowed.test_client()
    receiver.secret = client.post("/api/v1/webhooks/secret", headers=alice["headers"]).json["secret"]
    created = _upload(client, alice["headers"], receiver.url)
    app = app_factory()  # webhook_allow_private is off by default
    refused = _upload(app.test_client(), alice["headers"], receiver.url)
    assert refused.status_code == 400, refused.json
    assert refused.json["error"]["code"] == "invalid_webhook_url"
    assert refused.json["error"]["field"] == "webhook_url"
    assert "private" in refused.json["error"]["message"]
    _work(app, [i["id"] for i in created.json["items"]])
    rows = _deliver_until_settled(app)
    assert rows and all(r.status == "failed" and r.attempts == 1 for r in rows)
    assert "private" in rows[0].last_error and receiver.received == []


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # refused before any SQL
@pytest.mark.parametrize("url", ["ftp://example.com/x", "http://", "example.com",
                                 "http://user:pw@example.com/", "http://exa mple.com/",
                                 "http://example.com:99999/", "https://e.com/" + "a" * 2000])
def test_bad_webhook_urls_are_400(client, alice, url):
    client.post("/api/v1/webhooks/secret", headers=alice["headers"])
    response = _upload(client, alice["headers"], url)
    assert response.status_code == 400, response.json
    assert response.json["error"]["code"] == "invalid_webhook_url"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_cli_makes_a_secret_that_signs(app):
    result = app.test_cli_runner().invoke(args=["webhook-secret", "nobody"])
    assert result.exit_code != 0
    from web.auth import create_user

    with services(app).sessions.begin() as s:
        create_user(s, "frank")
    result = app.test_cli_runner().invoke(args=["webhook-secret", "frank"])
    secret = result.output.strip().splitlines()[-1]
    signature = webhooks.sign(secret, "msg_1", 1700000000, b"{}")
    key = base64.b64decode(secret[len("whsec_"):])
    expected = hmac.new(key, b"msg_1.1700000000.{}", hashlib.sha256).digest()
    assert signature == "v1," + base64.b64encode(expected).decode()
    # The receiver-side helper accepts exactly that, fresh, and nothing tampered with.
    now = int(time.time())
    headers = {"webhook-id": "msg_1", "webhook-timestamp": str(now),
               "webhook-signature": "v1,bogus " + webhooks.sign(secret, "msg_1", now, b"{}")}
    assert webhooks.verify(secret, headers, b"{}")
    assert not webhooks.verify(secret, headers, b"{ }")
    assert not webhooks.verify(webhooks.new_secret(), headers, b"{}")
    stale = {**headers, "webhook-timestamp": str(now - 3600)}
    stale["webhook-signature"] = webhooks.sign(secret, "msg_1", now - 3600, b"{}")
    assert not webhooks.verify(secret, stale, b"{}")
