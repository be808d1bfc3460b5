"""``GET /api/v1/batches/<id>/events``: the batch's outbox as server-sent events.

The stream opens with a ``snapshot`` (every item's status now) unless the client resumes with
``Last-Event-ID``, then sends each event (``id`` = the outbox sequence, ``event`` = the kind, ``data``
= the webhook payload's data) as it is committed. It ends after ``batch.completed`` (or at once
when the batch is already finished), after ``timeout`` seconds (at most ``ANYCOST_SSE_MAX_SECONDS``),
or when the database goes away; a ``: keep-alive`` comment goes out on a quiet stream every
``ANYCOST_SSE_HEARTBEAT_SECONDS``. Clients reconnect with ``Last-Event-ID`` to continue.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator

from flask import Response, request
from sqlalchemy import func, select

from shared.events import BATCH_COMPLETED
from shared.models import Event, Item
from shared.nudges import Waiter
from shared.states import TERMINAL, batch_status, status_counts
from web.api.blueprint import bp, current_user
from web.api.params import int_param
from web.extensions import Services, db, services

log = logging.getLogger(__name__)
POLL_SECONDS = 0.5
_TERMINAL = frozenset(s.value for s in TERMINAL)


def _frame(kind: str, data: dict, event_id: int | None = None) -> str:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def _snapshot(svc: Services, batch_id: str) -> tuple[dict, int, bool]:
    with svc.sessions() as session:
        rows = session.execute(select(Item.id, Item.status).where(Item.batch_id == batch_id)
                               .order_by(Item.position)).all()
        last = session.scalar(select(func.max(Event.id)).where(Event.batch_id == batch_id)) or 0
    statuses = [s for _, s in rows]
    data = {"batch_id": batch_id, "status": batch_status(statuses),
            "counts": status_counts(statuses),
            "items": [{"id": i, "status": s} for i, s in rows]}
    finished = bool(statuses) and all(s in _TERMINAL for s in statuses)
    return data, last, finished


def _stream(svc: Services, batch_id: str, cursor: int | None, timeout: int) -> Iterator[str]:
    deadline = time.monotonic() + timeout
    heartbeat = svc.settings.sse_heartbeat_seconds
    yield f"retry: {int(POLL_SECONDS * 4000)}\n\n"
    if cursor is None:
        data, cursor, finished = _snapshot(svc, batch_id)
        yield _frame("snapshot", data, cursor)
        if finished:
            return
    quiet_since = time.monotonic()
    waiter = Waiter(svc.settings.redis_url, batch_id)
    try:
        yield from _follow(svc, batch_id, cursor, deadline, heartbeat, quiet_since, waiter)
    finally:
        waiter.close()


def _follow(svc: Services, batch_id: str, cursor: int, deadline: float, heartbeat: float,
            quiet_since: float, waiter: Waiter) -> Iterator[str]:
    """Events after ``cursor`` as they are committed: read at once when the worker nudges the
    batch (shared.nudges), else every POLL_SECONDS."""
    while time.monotonic() < deadline:
        try:
            with svc.sessions() as session:
                events = session.execute(
                    select(Event.id, Event.kind, Event.data)
                    .where(Event.batch_id == batch_id, Event.id > cursor)
                    .order_by(Event.id).limit(100)
                ).all()
        except Exception as exc:  # the database went away: end; the client reconnects later
            log.warning("event stream of %s ends: %s", batch_id, exc)
            return
        for event_id, kind, data in events:
            cursor = event_id
            yield _frame(kind, data, event_id)
            if kind == BATCH_COMPLETED:
                return
        if events:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= heartbeat:
            quiet_since = time.monotonic()
            yield ": keep-alive\n\n"
        waiter.wait(min(POLL_SECONDS, max(0.0, deadline - time.monotonic())))


@bp.get("/batches/<batch_id>/events")
def batch_events(batch_id: str):
    svc = services()
    svc.jobs.get_batch(db(), current_user().id, batch_id)  # 404 unless it is the caller's
    limit = svc.settings.sse_max_seconds
    timeout = int_param(request.args.get("timeout"), "timeout", 1, limit, limit)
    resume = request.headers.get("Last-Event-ID") or request.args.get("last_event_id")
    cursor = int_param(resume, "Last-Event-ID", 0, 2**63 - 1, 0) if resume else None
    response = Response(_stream(svc, batch_id, cursor, timeout), mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"  # nginx: pass events through as they come
    return response
