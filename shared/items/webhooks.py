"""Webhook delivery: the outbox's ``webhook_deliveries`` POSTed to the batch's URL, signed the
Standard Webhooks way, retried with exponential backoff, at least once.

Headers: ``webhook-id`` (the event's id, the same on every retry: receivers deduplicate on it),
``webhook-timestamp`` (Unix seconds of this attempt) and ``webhook-signature`` =
``v1,`` + base64(HMAC-SHA256(key, f"{id}.{timestamp}.{body}")) where the key is the base64 part of
the owner's ``whsec_...`` secret. Body: ``{"type": kind, "timestamp": ISO 8601, "data": {...}}``.

A delivery is claimed with a guarded UPDATE (a lease on ``next_attempt_at``), so several senders
never POST the same attempt twice at once; one that dies mid-attempt loses only its lease. Any 2xx
is success; anything else (or no answer) is retried until ``webhook_max_attempts``. Redirects are
not followed.

Each POST goes to the address that was checked (``shared.items.webhook_http``: one lookup, no
loopback or private address unless ``webhook_allow_private``, so DNS rebinding reaches nothing
inside) and has one total deadline, ``webhook_timeout``: an answer not complete by then is a
failed attempt. Deliveries run concurrently (``webhook_concurrency`` at once, at most
``PER_HOST`` to one host), so one slow receiver delays only its own events. A URL that resolves
to a private address is refused when the batch is submitted too (``check_destination``).

    flask --app web webhooks deliver          # the loop (compose service ``webhooks``)
    flask --app web webhooks deliver --once   # one pass
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import secrets
import tempfile
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor, wait
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from shared.items import webhook_http
from shared.items.events import sweep_completed_batches
from shared.platform.settings import Settings
from shared.store.tables import Batch, Event, User, WebhookDelivery, utcnow

log = logging.getLogger(__name__)

SECRET_PREFIX = "whsec_"
MAX_BACKOFF_SECONDS = 3600
MAX_URL_CHARS = 2000
PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
USER_AGENT = "anycost-webhooks/1"
SWEEP_SECONDS = 10.0  # how often the loop looks for a batch.completed that nobody wrote
PER_HOST = 2  # deliveries to one host in flight at once: a slow receiver holds no more threads


class WebhookUrlError(ValueError):
    """A webhook URL that will never be delivered to."""


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header value for one attempt."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def verify(secret: str, headers, body: bytes, tolerance: int = 300) -> bool:
    """A receiver's check (used by the tests and documented for users)."""
    msg_id, timestamp = headers.get("webhook-id", ""), headers.get("webhook-timestamp", "")
    if not msg_id or not timestamp.isdigit() or abs(time.time() - int(timestamp)) > tolerance:
        return False
    expected = sign(secret, msg_id, int(timestamp), body).split(",", 1)[1]
    for candidate in headers.get("webhook-signature", "").split():
        version, _, value = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(value, expected):
            return True
    return False


def check_url(url: str) -> str:
    """The URL's form (http/https, a host, no credentials, no control characters)."""
    if not url or len(url) > MAX_URL_CHARS or any(ord(c) < 33 or ord(c) == 127 for c in url):
        raise WebhookUrlError(f"a webhook URL is 1 to {MAX_URL_CHARS} characters, no spaces")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise WebhookUrlError("the webhook URL cannot be parsed") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WebhookUrlError("a webhook URL is http:// or https:// with a host name")
    if parts.username or parts.password:
        raise WebhookUrlError("a webhook URL must not carry a user name or password")
    return url


def check_destination(url: str, allow_private: bool, unresolvable_ok: bool = False) -> None:
    """Refuse a URL whose host resolves to a non-public address. Checked when a batch names
    it (``unresolvable_ok``: a name that does not resolve yet may later) and again at every
    attempt, where the connection goes to the address checked (``webhook_http.post``)."""
    parts = urlsplit(url)
    try:
        webhook_http.resolve(parts.hostname or "", parts.port or 0, allow_private)
    except webhook_http.DestinationError as exc:
        if unresolvable_ok and "cannot resolve" in str(exc):
            return
        raise WebhookUrlError(str(exc)) from None


def post(url: str, msg_id: str, secret: str, body: bytes, timeout: float,
         allow_private: bool = False) -> int:
    """One signed POST within ``timeout`` seconds in all; the HTTP status (raises OSError
    when no complete answer came, WebhookUrlError for an address we must not reach)."""
    timestamp = int(time.time())
    headers = {"content-type": "application/json", "user-agent": USER_AGENT,
               "webhook-id": msg_id, "webhook-timestamp": str(timestamp),
               "webhook-signature": sign(secret, msg_id, timestamp, body)}
    try:
        return webhook_http.post(url, headers, body, timeout, allow_private)
    except webhook_http.DestinationError as exc:
        raise WebhookUrlError(str(exc)) from None


def payload(event: Event) -> bytes:
    body = {"type": event.kind, "timestamp": event.created_at.isoformat() + "Z", "data": event.data}
    return json.dumps(body, separators=(",", ":")).encode()


def backoff(settings: Settings, attempts: int) -> timedelta:
    """Delay after the ``attempts``-th failed try: base, 2x base, 4x base ... at most an hour."""
    seconds = settings.webhook_backoff_seconds * 2 ** max(0, attempts - 1)
    return timedelta(seconds=min(MAX_BACKOFF_SECONDS, seconds))


def _claim(session: Session, delivery_id: int, seen_next: object, lease: timedelta) -> bool:
    return session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == delivery_id, WebhookDelivery.status == PENDING,
               WebhookDelivery.next_attempt_at == seen_next)
        .values(next_attempt_at=utcnow() + lease)
        .execution_options(synchronize_session=False)
    ).rowcount == 1


class Deliverer:
    """Attempts due deliveries on a pool of threads (``webhook_concurrency``, at most
    ``PER_HOST`` to one host at once); ``run_pass`` claims and starts them without waiting."""

    def __init__(self, sessions: sessionmaker[Session], settings: Settings):
        self.sessions = sessions
        self.settings = settings
        self.size = max(1, settings.webhook_concurrency)
        self.pool = ThreadPoolExecutor(self.size, thread_name_prefix="webhook")
        self.lock = threading.Lock()
        self.by_host: dict[str, int] = {}
        self.futures: set[Future] = set()
        self.wake = threading.Event()  # set when an attempt ends: room for the next one

    def run_pass(self, sweep: bool = True, limit: int = 200, due_by=None) -> int:
        """Write missed ``batch.completed`` events (``sweep``), then start every delivery due
        by ``due_by`` (default now) there is room for; how many were started."""
        if sweep:
            with self.sessions.begin() as session:
                sweep_completed_batches(session)
        with self.sessions.begin() as session:
            due = session.execute(
                select(WebhookDelivery.id, WebhookDelivery.next_attempt_at, WebhookDelivery.url)
                .where(WebhookDelivery.status == PENDING,
                       WebhookDelivery.next_attempt_at <= (due_by or utcnow()))
                .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id).limit(limit)
            ).all()
        lease = timedelta(seconds=self.settings.webhook_timeout + 30)
        started = 0
        for delivery_id, seen_next, url in due:
            host = (urlsplit(url).hostname or "").lower()
            with self.lock:
                if len(self.futures) >= self.size:
                    break
                if self.by_host.get(host, 0) >= PER_HOST:
                    continue  # this host is busy: its deliveries wait, nobody else's do
            with self.sessions.begin() as session:
                if not _claim(session, delivery_id, seen_next, lease):
                    continue  # another sender has it
            with self.lock:
                self.by_host[host] = self.by_host.get(host, 0) + 1
                future = self.pool.submit(_attempt, self.sessions, self.settings, delivery_id)
                self.futures.add(future)
            future.add_done_callback(lambda f, h=host: self._done(f, h))
            started += 1
        return started

    def _done(self, future: Future, host: str) -> None:
        with self.lock:
            self.futures.discard(future)
            self.by_host[host] -= 1
            if not self.by_host[host]:
                del self.by_host[host]
        self.wake.set()
        if future.exception() is not None:
            log.error("webhook attempt failed: %r", future.exception())

    def drain(self) -> None:
        """Until every started attempt has ended."""
        with self.lock:
            pending = set(self.futures)
        wait(pending)

    def close(self) -> None:
        self.pool.shutdown(wait=True)


def deliver_due(sessions: sessionmaker[Session], settings: Settings, limit: int = 50,
                sweep: bool = True) -> int:
    """Try every due delivery once, concurrently, and wait for them (after writing any missed
    ``batch.completed`` when ``sweep``); returns how many were attempted."""
    deliverer = Deliverer(sessions, settings)
    due_by = utcnow()  # a retry scheduled during this call waits for the next one
    try:
        attempted = 0
        while attempted < limit:
            started = deliverer.run_pass(sweep=sweep and not attempted, limit=limit,
                                         due_by=due_by)
            if not started:
                break
            attempted += started
            deliverer.drain()
        return attempted
    finally:
        deliverer.close()


def _attempt(sessions: sessionmaker[Session], settings: Settings, delivery_id: int) -> None:
    with sessions() as session:
        delivery = session.get(WebhookDelivery, delivery_id)
        event = delivery.event
        secret = session.scalar(
            select(User.webhook_secret).join(Batch, Batch.owner_id == User.id)
            .where(Batch.id == event.batch_id))
        url, msg_id, body = delivery.url, event.public_id, payload(event)
    status_code, error, permanent = None, None, False
    try:
        if not secret:
            raise WebhookUrlError("the batch owner has no webhook secret")
        check_url(url)
        status_code = post(url, msg_id, secret, body, settings.webhook_timeout,
                           settings.webhook_allow_private)
        if not 200 <= status_code < 300:
            error = f"HTTP {status_code}"
    except WebhookUrlError as exc:
        error, permanent = str(exc), True
    except (OSError, ValueError) as exc:  # refused, reset, timed out, bad answer
        error = f"{type(exc).__name__}: {exc}"
    with sessions.begin() as session:
        delivery = session.get(WebhookDelivery, delivery_id)
        delivery.attempts += 1
        delivery.last_attempt_at = utcnow()
        delivery.last_status_code = status_code
        delivery.last_error = error
        if error is None:
            delivery.status, delivery.delivered_at = DELIVERED, utcnow()
        elif permanent or delivery.attempts >= settings.webhook_max_attempts:
            delivery.status = FAILED
            log.warning("webhook %s to %s failed for good after %d attempts: %s", msg_id, url,
                        delivery.attempts, error)
        else:
            delivery.next_attempt_at = utcnow() + backoff(settings, delivery.attempts)


#: Touched after every pass that reached the database; the container healthcheck reads it.
ALIVE_FILE = Path(tempfile.gettempdir()) / "anycost-webhooks.alive"


def run_forever(sessions: sessionmaker[Session], settings: Settings, stop: threading.Event,
                period: float = 1.0, alive_file: Path | None = None) -> None:
    """Deliver until ``stop`` is set; a database outage is logged and retried next period.
    Attempts run on the Deliverer's threads: a pass never waits for a slow receiver."""
    last_sweep = 0.0
    deliverer = Deliverer(sessions, settings)
    try:
        while not stop.is_set():
            deliverer.wake.clear()
            try:
                sweep = time.monotonic() - last_sweep >= SWEEP_SECONDS
                deliverer.run_pass(sweep=sweep)
                if sweep:
                    last_sweep = time.monotonic()
                if alive_file is not None:
                    alive_file.touch()
            except Exception:
                log.exception("webhook pass failed")
            # Next pass when an attempt ends (room for another) or after the period.
            deliverer.wake.wait(period)
    finally:
        deliverer.close()


def healthy(alive_file: Path = ALIVE_FILE, max_age: float = 120.0) -> bool:
    try:
        return time.time() - os.stat(alive_file).st_mtime < max_age
    except FileNotFoundError:
        return False
