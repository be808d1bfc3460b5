"""GET /api/v1/webhooks/deliveries: a user sees their own batches' deliveries (one batch's with
?batch=), each with its status, tries, last HTTP status and error, as the real sender left them
after POSTing to a real receiver that fails each event's first try."""

from __future__ import annotations

import io

import pytest
from web_api_helpers import image_bytes

from shared.items import states, webhooks
from tests.conftest import private_redis
from tests.support.webhook_receiver import Receiver
from web.extensions import services

PNG = image_bytes("PNG")
DELIVERIES = "/api/v1/webhooks/deliveries"


@pytest.fixture
def redis_url():
    with private_redis("webhard") as url:
        yield url


@pytest.fixture
def receiver():
    r = Receiver(failures=1)
    yield r
    r.close()


@pytest.fixture
def hook_app(app_factory):
    return app_factory(webhook_allow_private=True, webhook_backoff_seconds=0.01,
                       webhook_max_attempts=3, webhook_timeout=5)


def _batch_with_a_preview(app, client, headers, url: str) -> str:
    """A batch of one photo that names ``url``; its item's preview is ready (one event)."""
    created = client.post("/api/v1/batches", headers=headers, content_type="multipart/form-data",
                          data={"files": [(io.BytesIO(PNG), "p.png")], "webhook_url": url})
    assert created.status_code == 201, created.json
    item_id = created.json["items"][0]["id"]
    with services(app).sessions.begin() as s:
        assert states.start_preview(s, item_id, 0, "w1") and states.complete_preview(s, item_id, 0)
    return created.json["id"]


def _deliver_once(app) -> int:
    svc = services(app)
    return webhooks.deliver_due(svc.sessions, svc.settings, sweep=False)


def test_deliveries_show_tries_and_the_last_answer(hook_app, alice, bob, receiver):
    client = hook_app.test_client()
    receiver.secret = client.post("/api/v1/webhooks/secret",
                                  headers=alice["headers"]).json["secret"]
    first = _batch_with_a_preview(hook_app, client, alice["headers"], receiver.url)
    second = _batch_with_a_preview(hook_app, client, alice["headers"], receiver.url)

    listed = client.get(DELIVERIES, headers=alice["headers"])
    assert listed.status_code == 200, listed.json
    assert listed.json["total"] == 2 and listed.json["pages"] == 1
    untried = listed.json["deliveries"]
    assert [d["batch_id"] for d in untried] == [second, first]  # newest first
    assert all(d["status"] == "pending" and d["attempts"] == 0 and d["last_status_code"] is None
               and d["last_attempt_at"] is None and d["next_attempt_at"] for d in untried)
    assert {d["event"]["type"] for d in untried} == {"item.preview_ready"}
    assert untried[0]["url"] == receiver.url

    assert _deliver_once(hook_app) == 2  # the receiver answers 500 to each first try
    failed_once = client.get(DELIVERIES, headers=alice["headers"]).json["deliveries"]
    assert all(d["status"] == "pending" and d["attempts"] == 1 and d["last_status_code"] == 500
               and d["last_error"] == "HTTP 500" and d["last_attempt_at"] for d in failed_once)

    for _ in range(200):  # the backoff is 10 ms
        if _deliver_once(hook_app) == 2:
            break
    only_first = client.get(DELIVERIES, query_string={"batch": first}, headers=alice["headers"])
    assert only_first.status_code == 200 and only_first.json["total"] == 1
    (delivered,) = only_first.json["deliveries"]
    assert delivered["batch_id"] == first and delivered["status"] == "delivered"
    assert delivered["attempts"] == 2 and delivered["last_status_code"] == 204
    assert delivered["last_error"] is None and delivered["delivered_at"]
    assert delivered["next_attempt_at"] is None
    assert sum(r["id"] == delivered["event"]["id"] for r in receiver.received) == 2

    # Bob sees none of Alice's, and her batch is no batch of his.
    assert client.get(DELIVERIES, headers=bob["headers"]).json["deliveries"] == []
    theirs = client.get(DELIVERIES, query_string={"batch": first}, headers=bob["headers"])
    assert theirs.status_code == 404 and theirs.json["error"]["code"] == "not_found"


def test_deliveries_are_paged_and_check_their_parameters(hook_app, alice, receiver):
    client = hook_app.test_client()
    receiver.secret = client.post("/api/v1/webhooks/secret",
                                  headers=alice["headers"]).json["secret"]
    made = [_batch_with_a_preview(hook_app, client, alice["headers"], receiver.url)
            for _ in range(3)]
    page = client.get(DELIVERIES, query_string={"per_page": 2, "page": 2},
                      headers=alice["headers"]).json
    assert page["total"] == 3 and page["pages"] == 2
    assert [d["batch_id"] for d in page["deliveries"]] == [made[0]]
    bad = client.get(DELIVERIES, query_string={"per_page": 0}, headers=alice["headers"])
    assert bad.status_code == 400 and bad.json["error"]["field"] == "per_page"
    unknown = client.get(DELIVERIES, query_string={"batch_id": made[0]}, headers=alice["headers"])
    assert unknown.status_code == 400 and unknown.json["error"]["code"] == "unknown_parameter"
    assert client.get(DELIVERIES).status_code == 401
