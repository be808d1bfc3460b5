"""What an event stream of a batch (``GET /api/v1/batches/<id>/events``) sends, in one copy for
both servers of that route: the Flask view (``web.api.events``, a thread per stream, for
``make run``) and the stream service (``web.streams.service``, asyncio, no thread per stream).
They only move bytes and wait; every decision is made here.

The stream opens with a ``snapshot`` (every item's status now) unless the client resumes with
``Last-Event-ID``, then sends each event (``id`` = the outbox sequence, ``event`` = the kind, ``data``
= the webhook payload's data) as it is committed. It ends after ``batch.completed`` (or at once
when the batch is already finished), after ``timeout`` seconds (at most ``ANYCOST_SSE_MAX_SECONDS``),
or when the database goes away, and within ``RECHECK_SECONDS`` of the end of the credential it
was opened with (token revoked, sign-out, password change); a ``: keep-alive`` comment goes out
on a quiet stream every ``ANYCOST_SSE_HEARTBEAT_SECONDS``. Clients reconnect with
``Last-Event-ID`` to continue.

Events are sent in commit order, which on PostgreSQL is not always id order: an event whose
transaction committed late comes after one with a higher id (see ``SentEvents``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shared.items.events import ITEM_PREVIEW_READY
from shared.items.states import TERMINAL, batch_status, status_counts
from shared.store.tables import Event, Item, utcnow
from web.params import DB_INT_MAX, int_param

#: The route both servers serve (Flask's rule syntax) and where a preview's image is.
ROUTE = "/api/v1/batches/<batch_id>/events"
PREVIEW_PATH = "/api/v1/items/{item}/preview"
#: A stream reads the outbox at least this often (at once when a worker nudges the batch).
POLL_SECONDS = 0.5
#: How long an event id stays open to an earlier id committing after it (see ``SentEvents``).
LATE_SECONDS = 5.0
#: How often a stream checks that its credential still holds.
RECHECK_SECONDS = 2.0
RETRY_FRAME = f"retry: {int(POLL_SECONDS * 4000)}\n\n"
KEEP_ALIVE = ": keep-alive\n\n"
#: The answer's headers besides its type (``text/event-stream; charset=utf-8``).
HEADERS = {"Cache-Control": "no-cache",
           "X-Accel-Buffering": "no"}  # nginx: pass events through as they come
_TERMINAL = frozenset(s.value for s in TERMINAL)

Sessions = Callable[[], AbstractContextManager[Session]]


class Credential(Protocol):
    user_id: int

    def still_valid(self, db: Session) -> bool: ...


@dataclass(frozen=True)
class StreamParams:
    """A stream request's parameters, checked (400 naming the parameter, as ``web.api.params``)."""

    timeout: int
    cursor: int | None  # Last-Event-ID: the stream resumes after it, without a snapshot

    @classmethod
    def parse(cls, args: Mapping[str, str], headers: Mapping[str, str],
              max_seconds: int) -> StreamParams:
        timeout = int_param(args.get("timeout"), "timeout", 1, max_seconds, max_seconds)
        resume = headers.get("Last-Event-ID") or args.get("last_event_id")
        cursor = int_param(resume, "Last-Event-ID", 0, DB_INT_MAX, 0) if resume else None
        return cls(timeout, cursor)


def frame(kind: str, data: dict, event_id: int | None = None) -> str:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def snapshot(session: Session, batch_id: str) -> tuple[dict, bool]:
    """Every item's status now, and whether they are all finished."""
    rows = session.execute(select(Item.id, Item.status).where(Item.batch_id == batch_id)
                           .order_by(Item.position)).all()
    statuses = [s for _, s in rows]
    data = {"batch_id": batch_id, "status": batch_status(statuses),
            "counts": status_counts(statuses),
            "items": [{"id": i, "status": s} for i, s in rows]}
    finished = bool(statuses) and all(s in _TERMINAL for s in statuses)
    return data, finished


def preview_url_template(origin: str) -> str:
    """The preview URL of every item (``{item}`` for its id) at ``origin`` (scheme://host)."""
    return origin.rstrip("/") + PREVIEW_PATH


def with_preview_url(kind: str, data: dict, preview_url: str) -> dict:
    """A preview's event carries the URL of that version's image (``preview_url`` with the
    item's id in place of ``{item}``): the editor loads it at once, with no item read first."""
    if kind != ITEM_PREVIEW_READY or "item_id" not in data:
        return data
    url = preview_url.replace("{item}", data["item_id"])
    return {**data, "preview_url": f"{url}?v={data.get('edit_version', 0)}"}


class SentEvents:
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
    def start(cls, session: Session, batch_id: str, cursor: int | None) -> SentEvents:
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


def read_events(session: Session, batch_id: str, sent: SentEvents) -> list:
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
