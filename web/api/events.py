"""``GET /api/v1/batches/<id>/events``: the batch's outbox as server-sent events.

The stream opens with a ``snapshot`` (every item's status now) unless the client resumes with
``Last-Event-ID``, then sends each event (``id`` = the outbox sequence, ``event`` = the kind, ``data``
= the webhook payload's data) as it is committed. It ends after ``batch.completed`` (or at once
when the batch is already finished), after ``timeout`` seconds (at most ``ANYCOST_SSE_MAX_SECONDS``),
or when the database goes away, and within seconds of the end of the credential it was opened
with (token revoked, sign-out, password change); a ``: keep-alive`` comment goes out on a quiet
stream every ``ANYCOST_SSE_HEARTBEAT_SECONDS``. Clients reconnect with ``Last-Event-ID`` to
continue. A user has at most ``ANYCOST_SSE_MAX_PER_USER`` streams open (``web.api.stream_guard``).

Events are sent in commit order, which on PostgreSQL is not always id order: an event whose
transaction committed late comes after one with a higher id (see ``_Sent``).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from datetime import timedelta

from flask import Response, request, url_for
from sqlalchemy import func, select

from shared.items.events import BATCH_COMPLETED, ITEM_PREVIEW_READY
from shared.items.states import TERMINAL, batch_status, status_counts
from shared.platform.nudges import Waiter
from shared.store.tables import Event, Item, utcnow
from web.api.blueprint import bp, current_user
from web.api.params import DB_INT_MAX, int_param
from web.api.stream_guard import RECHECK_SECONDS, Credential, StreamSlot
from web.extensions import Services, db, services

log = logging.getLogger(__name__)
POLL_SECONDS = 0.5
#: How long an event id stays open to an earlier id committing after it (see ``_Sent``).
LATE_SECONDS = 5.0
_TERMINAL = frozenset(s.value for s in TERMINAL)


def _frame(kind: str, data: dict, event_id: int | None = None) -> str:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def _snapshot(session, batch_id: str) -> tuple[dict, bool]:
    rows = session.execute(select(Item.id, Item.status).where(Item.batch_id == batch_id)
                           .order_by(Item.position)).all()
    statuses = [s for _, s in rows]
    data = {"batch_id": batch_id, "status": batch_status(statuses),
            "counts": status_counts(statuses),
            "items": [{"id": i, "status": s} for i, s in rows]}
    finished = bool(statuses) and all(s in _TERMINAL for s in statuses)
    return data, finished


def _with_url(kind: str, data: dict, preview_url: str) -> dict:
    """A preview's event carries the URL of that version's image (``preview_url`` with the
    item's id in place of ``{item}``): the editor loads it at once, with no item read first."""
    if kind != ITEM_PREVIEW_READY or "item_id" not in data:
        return data
    url = preview_url.replace("{item}", data["item_id"])
    return {**data, "preview_url": f"{url}?v={data.get('edit_version', 0)}"}


def _stream(svc: Services, batch_id: str, cursor: int | None, timeout: int,
            credential: Credential, slot: StreamSlot, preview_url: str = "") -> Iterator[str]:
    try:
        yield from _stream_events(svc, batch_id, cursor, timeout, credential, preview_url)
    finally:
        slot.release()


def _stream_events(svc: Services, batch_id: str, cursor: int | None, timeout: int,
                   credential: Credential, preview_url: str = "") -> Iterator[str]:
    deadline = time.monotonic() + timeout
    heartbeat = svc.settings.sse_heartbeat_seconds
    yield f"retry: {int(POLL_SECONDS * 4000)}\n\n"
    try:
        with svc.sessions() as session:
            # The events first, then the items: an event committed in between is in the
            # snapshot and sent again after it (harmless), never in neither.
            sent = _Sent.start(session, batch_id, cursor)
            snapshot = _snapshot(session, batch_id) if cursor is None else None
    except Exception as exc:  # the database went away: end; the client reconnects later
        log.warning("event stream of %s ends before it starts: %s", batch_id, exc)
        return
    if snapshot is not None:
        data, finished = snapshot
        yield _frame("snapshot", data, sent.cursor)
        if finished:
            return
    quiet_since = time.monotonic()
    waiter = Waiter(svc.settings.redis_url, batch_id)
    try:
        yield from _follow(svc, batch_id, sent, deadline, heartbeat, quiet_since, waiter,
                           credential, preview_url)
    finally:
        waiter.close()


class _Sent:
    """Which of a batch's events a stream has sent. Outbox ids come from one sequence, but on
    PostgreSQL transactions commit out of id order: an event may become visible after a later
    one was sent. So ids above ``floor`` are looked at again until they are ``LATE_SECONDS``
    old, and any not sent yet go out then (no event lost to a slow commit; a commit later than
    that after the next event's is the one case still missed)."""

    def __init__(self, cursor: int, floor: int | None = None):
        self.cursor = cursor  # the highest id sent
        self.floor = cursor if floor is None else floor  # every id at or below is settled
        self._recent: dict[int, float] = {}  # ids above floor that were sent -> when

    @classmethod
    def start(cls, session, batch_id: str, cursor: int | None) -> _Sent:
        """A new stream's state: after ``cursor`` (Last-Event-ID), or after every event now
        visible (a snapshot, which these are in). The events of the last ``LATE_SECONDS`` up to
        the cursor count as sent, so one still committing below the cursor goes out later."""
        if cursor is None:
            cursor = session.scalar(select(func.max(Event.id))
                                    .where(Event.batch_id == batch_id)) or 0
        cutoff = utcnow() - timedelta(seconds=LATE_SECONDS)
        floor = session.scalar(select(func.max(Event.id)).where(
            Event.batch_id == batch_id, Event.id <= cursor, Event.created_at < cutoff)) or 0
        sent = cls(cursor, floor)
        now = time.monotonic()
        for event_id in session.scalars(select(Event.id).where(
                Event.batch_id == batch_id, Event.id > floor, Event.id <= cursor)):
            sent._recent[event_id] = now
        return sent

    def mark(self, event_id: int, now: float) -> None:
        self._recent[event_id] = now
        self.cursor = max(self.cursor, event_id)

    def unsent(self, ids) -> list[int]:
        return [i for i in ids if i not in self._recent]

    def settle(self, now: float) -> None:
        old = [i for i, at in self._recent.items() if now - at >= LATE_SECONDS]
        if old:
            self.floor = max(self.floor, *old)
            self._recent = {i: at for i, at in self._recent.items() if i > self.floor}


def _read(session, batch_id: str, sent: _Sent) -> list:
    """Events committed since the last read: late ones (ids between floor and cursor not sent
    yet) first, then new ones (above the cursor), each in id order."""
    late = sent.unsent(session.scalars(
        select(Event.id).where(Event.batch_id == batch_id, Event.id > sent.floor,
                               Event.id < sent.cursor)).all()) if sent.cursor - sent.floor > 1 else []
    columns = (Event.id, Event.kind, Event.data)
    rows = list(session.execute(select(*columns).where(Event.id.in_(late))
                                .order_by(Event.id)).all()) if late else []
    rows += session.execute(select(*columns).where(Event.batch_id == batch_id,
                                                   Event.id > sent.cursor)
                            .order_by(Event.id).limit(100)).all()
    return rows


def _follow(svc: Services, batch_id: str, sent: _Sent, deadline: float, heartbeat: float,
            quiet_since: float, waiter: Waiter, credential: Credential,
            preview_url: str = "") -> Iterator[str]:
    """Events not ``sent`` yet as they are committed: read at once when the worker nudges the
    batch (shared.platform.nudges), else every POLL_SECONDS. Ends within RECHECK_SECONDS of
    the credential's end (revoked token, sign-out, password change)."""
    checked = time.monotonic()
    while time.monotonic() < deadline:
        try:
            with svc.sessions() as session:
                if time.monotonic() - checked >= RECHECK_SECONDS:
                    checked = time.monotonic()
                    if not credential.still_valid(session):
                        log.info("event stream of %s ends: its credential ended", batch_id)
                        return
                events = _read(session, batch_id, sent)
        except Exception as exc:  # the database went away: end; the client reconnects later
            log.warning("event stream of %s ends: %s", batch_id, exc)
            return
        for event_id, kind, data in events:
            sent.mark(event_id, time.monotonic())
            yield _frame(kind, _with_url(kind, data, preview_url) if preview_url else data,
                         event_id)
            if kind == BATCH_COMPLETED:
                return
        sent.settle(time.monotonic())
        if events:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= heartbeat:
            quiet_since = time.monotonic()
            yield ": keep-alive\n\n"
        waiter.wait(min(POLL_SECONDS, max(0.0, deadline - time.monotonic())))


@bp.get("/batches/<batch_id>/events")
def batch_events(batch_id: str):
    svc = services()
    svc.batches.get_batch(db(), current_user().id, batch_id)  # 404 unless it is the caller's
    limit = svc.settings.sse_max_seconds
    timeout = int_param(request.args.get("timeout"), "timeout", 1, limit, limit)
    resume = request.headers.get("Last-Event-ID") or request.args.get("last_event_id")
    cursor = int_param(resume, "Last-Event-ID", 0, DB_INT_MAX, 0) if resume else None
    credential = Credential.of_request(request)
    slot = StreamSlot(svc.settings.redis_url, credential.user_id, svc.settings.sse_max_per_user,
                      timeout)
    preview_url = url_for("api.item_preview", item_id="{item}", _external=True).replace(
        "%7Bitem%7D", "{item}")
    response = Response(_stream(svc, batch_id, cursor, timeout, credential, slot, preview_url),
                        mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"  # nginx: pass events through as they come
    return response
