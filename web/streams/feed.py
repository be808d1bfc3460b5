"""One open event stream's progress (``EventFeed``), for both servers of the events route: the
frames to send next and when the stream is done. It does the database work of one step in one
session and never waits: the Flask view calls it from its thread and sleeps on a Redis
subscription between steps; the stream service calls it in a small thread pool (a thread is held
for one step's queries only) and awaits a nudge between steps."""

from __future__ import annotations

import logging
import time

from shared.items.events import BATCH_COMPLETED
from web.streams.protocol import (
    KEEP_ALIVE,
    POLL_SECONDS,
    RECHECK_SECONDS,
    RETRY_FRAME,
    Credential,
    SentEvents,
    Sessions,
    StreamParams,
    frame,
    read_events,
    snapshot,
    with_preview_url,
)

log = logging.getLogger(__name__)


class EventFeed:
    """The stream of ``batch_id`` opened with ``params`` by ``credential``: ``start`` once, then
    ``step`` after each wait of ``wait_seconds`` until ``done``."""

    def __init__(self, batch_id: str, params: StreamParams, credential: Credential,
                 preview_url: str, heartbeat: float):
        self.batch_id = batch_id
        self.cursor = params.cursor
        self.credential = credential
        self.preview_url = preview_url
        self.heartbeat = heartbeat
        self.deadline = time.monotonic() + params.timeout
        self.done = False
        self.sent: SentEvents | None = None
        self.checked = self.quiet_since = time.monotonic()

    def start(self, sessions: Sessions) -> list[str]:
        """The first frames: the client's retry interval, then the snapshot (unless resuming).
        Done already when the batch is finished or the database is away."""
        frames = [RETRY_FRAME]
        try:
            with sessions() as session:
                # The events first, then the items: an event committed in between is in the
                # snapshot and sent again after it (harmless), never in neither.
                self.sent = SentEvents.start(session, self.batch_id, self.cursor)
                state = snapshot(session, self.batch_id) if self.cursor is None else None
        except Exception as exc:  # the database went away: end; the client reconnects later
            log.warning("event stream of %s ends before it starts: %s", self.batch_id, exc)
            self.done = True
            return frames
        if state is not None:
            data, finished = state
            frames.append(frame("snapshot", data, self.sent.cursor))
            self.done = finished
        self.checked = self.quiet_since = time.monotonic()
        return frames

    def step(self, sessions: Sessions) -> list[str]:
        """The events committed since the last step (or a keep-alive on a quiet stream). Ends
        the stream at its deadline, after ``batch.completed``, when the database is away and
        within RECHECK_SECONDS of the credential's end."""
        if self.done or time.monotonic() >= self.deadline:
            self.done = True
            return []
        try:
            with sessions() as session:
                if time.monotonic() - self.checked >= RECHECK_SECONDS:
                    self.checked = time.monotonic()
                    if not self.credential.still_valid(session):
                        log.info("event stream of %s ends: its credential ended", self.batch_id)
                        self.done = True
                        return []
                events = read_events(session, self.batch_id, self.sent)
        except Exception as exc:  # the database went away: end; the client reconnects later
            log.warning("event stream of %s ends: %s", self.batch_id, exc)
            self.done = True
            return []
        return self._frames(events)

    def _frames(self, events: list) -> list[str]:
        frames = []
        for event_id, kind, data in events:
            self.sent.mark(event_id, time.monotonic())
            body = with_preview_url(kind, data, self.preview_url) if self.preview_url else data
            frames.append(frame(kind, body, event_id))
            if kind == BATCH_COMPLETED:
                self.done = True
                return frames
        self.sent.settle(time.monotonic())
        if events:
            self.quiet_since = time.monotonic()
        elif time.monotonic() - self.quiet_since >= self.heartbeat:
            self.quiet_since = time.monotonic()
            frames.append(KEEP_ALIVE)
        return frames

    def wait_seconds(self) -> float:
        """How long to wait for a nudge before the next step."""
        return min(POLL_SECONDS, max(0.0, self.deadline - time.monotonic()))
