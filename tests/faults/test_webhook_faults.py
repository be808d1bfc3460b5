"""Webhook delivery under hostile receivers and DNS, with the real sender against PostgreSQL:
a rebinding resolver (public on the check, loopback on the connection) reaches nothing; a
receiver that trickles its answer is cut at the deadline, counted as a failed attempt, and
delays nobody else: another user's delivery arrives on time meanwhile."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import replace

import pytest
from sqlalchemy import select

from shared.items import webhooks
from shared.items.events import record_event
from shared.store.tables import Batch, Item, User, WebhookDelivery, new_id
from tests.support.webhook_receiver import Receiver, Trickler

pytestmark = [pytest.mark.faults, pytest.mark.integration, pytest.mark.slow]

PUBLIC = "93.184.215.14"  # a global address (unreachable from the test machine: no network)


def _user(stack, username: str) -> tuple[int, str]:
    """A user with a webhook secret: (id, secret)."""
    user_id, _ = stack.user(username)
    with stack.sessions.begin() as session:
        user = session.get(User, user_id)
        user.webhook_secret = webhooks.new_secret()
        return user_id, user.webhook_secret


def _batch_with_events(stack, user_id: int, url: str, events: int) -> list[int]:
    """A batch of the user naming ``url`` and ``events`` item events (each one delivery due
    now); the delivery ids."""
    with stack.sessions.begin() as session:
        batch = Batch(id=new_id(), owner_id=user_id, recipe={}, model_name="tiny-random",
                      webhook_url=url)
        session.add(batch)
        session.flush()
        for i in range(events):
            item = Item(id=new_id(), batch_id=batch.id, position=i, filename=f"{i}.png",
                        status="preview_ready", timings={}, edit_version=0, attempts=0,
                        preview_cost={}, final_cost={})
            session.add(item)
            session.flush()
            record_event(session, item.id, "item.preview_ready")
        return list(session.scalars(select(WebhookDelivery.id)
                                    .where(WebhookDelivery.url == url)))


def _rows(stack, ids: list[int]) -> list[WebhookDelivery]:
    with stack.sessions() as session:
        return list(session.scalars(select(WebhookDelivery).where(WebhookDelivery.id.in_(ids))
                                    .order_by(WebhookDelivery.id)))


def test_a_rebinding_resolver_reaches_nothing_inside(limit_stack, monkeypatch):
    """rebind.test answers a public address to the first lookup and 127.0.0.1 (where a receiver
    listens) after: the check passes, and the connection must go to the address checked."""
    receiver = Receiver()
    port = receiver.server.server_port
    url = f"http://rebind.test:{port}/hook"
    user_id, receiver.secret = _user(limit_stack, "rebound")
    ids = _batch_with_events(limit_stack, user_id, url, 1)
    real = socket.getaddrinfo
    lookups: list[str] = []

    def rebinding(host, *args, **kwargs):
        if host != "rebind.test":
            return real(host, *args, **kwargs)
        lookups.append(host)
        address = PUBLIC if len(lookups) == 1 else "127.0.0.1"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    settings = replace(limit_stack.settings, webhook_timeout=2.0, webhook_allow_private=False)
    try:
        started = time.monotonic()
        webhooks.deliver_due(limit_stack.sessions, settings)
        took = time.monotonic() - started
    finally:
        receiver.close()
    row = _rows(limit_stack, ids)[0]
    print(f"\nrebinding resolver: {len(lookups)} lookup(s), receiver got {len(receiver.received)}, "
          f"attempt: {row.status} after {took:.1f} s ({row.last_error})")
    assert receiver.received == []
    assert lookups == ["rebind.test"]  # one lookup per attempt: the connection used its answer
    assert row.status == "pending" and row.attempts == 1 and row.last_error


def test_a_trickling_receiver_delays_only_its_own_events(limit_stack):
    """One user's receiver trickles a header line a second for a minute; another user's events,
    written while those deliveries hang, arrive within a second. The trickled ones are cut at
    the 3 s deadline and counted as failed attempts, never delivered."""
    slow, fast = Trickler(every=1.0, lines=60), Receiver()
    settings = replace(limit_stack.settings, webhook_timeout=3.0, webhook_allow_private=True,
                       webhook_backoff_seconds=600)
    slow_user, _ = _user(limit_stack, "trickled")
    fast_user, fast.secret = _user(limit_stack, "punctual")
    slow_ids = _batch_with_events(limit_stack, slow_user, slow.url("localhost"), 3)
    stop = threading.Event()
    sender = threading.Thread(target=webhooks.run_forever,
                              args=(limit_stack.sessions, settings, stop), kwargs={"period": 0.1})
    sender.start()
    try:
        deadline = time.monotonic() + 10
        while len(slow.accepted) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)  # until the slow deliveries are in flight
        time.sleep(0.3)
        written = time.monotonic()
        fast_ids = _batch_with_events(limit_stack, fast_user, fast.url, 5)
        while len(fast.received) < 5 and time.monotonic() - written < 20:
            time.sleep(0.02)
        fast_s = time.monotonic() - written
        while len(slow.connections) < 2 and time.monotonic() - written < 20:
            time.sleep(0.05)
    finally:
        stop.set()
        sender.join(30)
        slow.close()
        fast.close()
    held = [round(end - start, 1) for start, end in slow.connections]
    slow_rows, fast_rows = _rows(limit_stack, slow_ids), _rows(limit_stack, fast_ids)
    print(f"\ntrickling receiver: connections held {held} s (deadline 3 s); slow deliveries "
          f"{[(r.status, r.attempts) for r in slow_rows]}; 5 other-user deliveries all "
          f"received {fast_s:.2f} s after they were written")
    assert len(fast.received) == 5 and all(r["verified"] for r in fast.received)
    assert fast_s < 1.0
    assert all(r.status == "delivered" for r in fast_rows)
    assert held and max(held) < 4.5  # cut at the deadline, not after the minute of trickling
    assert all(r.status != "delivered" for r in slow_rows)
    tried = [r for r in slow_rows if r.attempts]
    assert tried and all("within" in (r.last_error or "") for r in tried)


def test_delivery_rate_with_a_slow_receiver_present(limit_stack):
    """Throughput (deliveries per second) to a fast receiver while a trickling one holds its
    deliveries for the whole run: the default concurrency (8, at most 2 per host)."""
    slow, fast = Trickler(every=1.0, lines=60), Receiver()
    settings = replace(limit_stack.settings, webhook_timeout=10.0, webhook_allow_private=True,
                       webhook_backoff_seconds=600)
    slow_user, _ = _user(limit_stack, "slowpoke")
    fast_user, fast.secret = _user(limit_stack, "busy")
    _batch_with_events(limit_stack, slow_user, slow.url("localhost"), 4)
    _batch_with_events(limit_stack, fast_user, fast.url, 100)
    stop = threading.Event()
    sender = threading.Thread(target=webhooks.run_forever,
                              args=(limit_stack.sessions, settings, stop), kwargs={"period": 0.1})
    started = time.monotonic()
    sender.start()
    try:
        while len(fast.received) < 100 and time.monotonic() - started < 60:
            time.sleep(0.02)
        took = time.monotonic() - started
    finally:
        stop.set()
        sender.join(30)
        slow.close()
        fast.close()
    rate = len(fast.received) / took
    print(f"\nwebhooks: 100 deliveries in {took:.1f} s ({rate:.0f}/s) with a trickling receiver "
          f"holding {len(slow.accepted)} connections meanwhile")
    assert len(fast.received) == 100 and took < 10
