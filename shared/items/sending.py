"""Sending items to the workers: what to send, when, and to which queue.

The database is marked first (``states.mark_sent``, a guarded UPDATE, so two senders never send
one item twice), then the message goes to the Redis queue of the item's model; when Redis is down
the mark is taken back and the reconciler (``shared.items.recovery``) sends the item later.

Fair queues: one user (all of their batches together) never holds more than ``batch_queue_cap``
previews in the queue; the rest are released as theirs finish (``release_user``). Edits and finals
go at once: they are a person waiting on one item.

Used alike by the web (new batches, edits, finalize), the worker (auto-finalize, a group's items
handed back), the reaper and the reconciler.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from shared.items import states
from shared.items.states import ItemStatus
from shared.platform.queue import FINAL_QUEUE, PREVIEW_QUEUE, Dispatcher
from shared.platform.settings import Settings
from shared.store.tables import Batch, Item, WorkerHeartbeat, utcnow

log = logging.getLogger(__name__)

PREVIEW_WORK = (ItemStatus.QUEUED.value, ItemStatus.PREVIEWING.value)


def _by_model(rows: Sequence[tuple[str, int, str | None]]) -> dict[str | None, list]:
    """(item_id, edit_version, model) rows -> model -> [(item_id, edit_version), ...]."""
    out: dict[str | None, list] = {}
    for item_id, version, model in rows:
        out.setdefault(model, []).append((item_id, version))
    return out


class Sender:
    """Sends marked items to the queue of their model (``dispatcher``), unmarking on failure."""

    def __init__(self, settings: Settings, sessions: sessionmaker[Session],
                 dispatcher: Dispatcher):
        self.settings = settings
        self.sessions = sessions
        self.dispatcher = dispatcher

    def release_user(self, owner_id: int, now: datetime | None = None) -> int:
        """Send a user's queued-but-unsent items (oldest batch first), keeping at most
        ``batch_queue_cap`` of their previews in the queue. Safe to call from anywhere, any
        number of times. Returns items sent."""
        cap = self.settings.batch_queue_cap
        with self.sessions.begin() as session:
            # The unsent first: mostly there are none (an editor's re-edits go at once), and
            # then the count of what is in the queue is not needed.
            candidates = session.execute(
                select(Item.id, Item.edit_version, Batch.model_name)
                .join(Batch, Batch.id == Item.batch_id).where(
                    Batch.owner_id == owner_id, Item.status == ItemStatus.QUEUED.value,
                    Item.enqueued_at.is_(None), Item.worker.is_(None),
                ).order_by(Batch.created_at, Batch.id, Item.position).limit(cap)
            ).all()
            if not candidates:
                return 0
            mine = select(Batch.id).where(Batch.owner_id == owner_id)
            in_queue = session.scalar(
                select(func.count()).select_from(Item).where(
                    Item.batch_id.in_(mine), Item.status.in_(PREVIEW_WORK),
                    Item.enqueued_at.is_not(None))
            ) or 0
            candidates = candidates[:max(0, cap - in_queue)]
            now = now or utcnow()
            # Guarded: two releasers never send the same item twice.
            claimed = [(i, v, m) for i, v, m in candidates
                       if states.mark_sent(session, i, ItemStatus.QUEUED, now)]
        sent = 0
        for model, pairs in _by_model(claimed).items():  # each to its model's workers
            size = self.group_size(len(pairs), PREVIEW_QUEUE, model)
            if self._send(lambda p=pairs, s=size, m=model: self.dispatcher.send_previews(p, s, m),
                          [i for i, _ in pairs]):
                sent += len(pairs)
        return sent

    def send_unheld(self, status: ItemStatus, rows: Sequence[tuple[str, int]],
                    stale_before: datetime | None = None, now: datetime | None = None) -> int:
        """Send edits (``previewing``) or finals (``finalizing``) that nobody holds and that are
        unsent (or were sent before ``stale_before``). ``rows``: (item_id, edit_version)."""
        now = now or utcnow()
        with self.sessions.begin() as session:
            claimed = [(i, v) for i, v in rows
                       if states.mark_sent(session, i, status, now, stale_before)]
            models = dict(session.execute(
                select(Item.id, Batch.model_name).join(Batch, Batch.id == Item.batch_id)
                .where(Item.id.in_([i for i, _ in claimed]))).all()) if claimed else {}
        sent = 0
        for model, pairs in _by_model([(i, v, models.get(i)) for i, v in claimed]).items():
            ids = [i for i, _ in pairs]
            if status == ItemStatus.FINALIZING:
                size = self.group_size(len(ids), FINAL_QUEUE, model)
                ok = self._send(lambda d=ids, s=size, m=model: self.dispatcher.send_finals(d, s, m),
                                ids)
            else:
                ok = self._send(lambda p=pairs, m=model: self.dispatcher.send_previews(p, 1, m),
                                ids)
            sent += len(pairs) if ok else 0
        return sent

    def group_size(self, n_items: int, queue: str, model: str | None = None) -> int:
        """Items per message: ``render_batch_size``, but with several live workers of ``queue``
        small enough that each gets at least two messages, so none idles while another holds a
        big group (measured: 2 workers took 14% longer with groups of 8 than of 1)."""
        cutoff = utcnow() - timedelta(seconds=self.settings.heartbeat_timeout)
        with self.sessions() as session:
            workers = session.scalar(
                select(func.count()).select_from(WorkerHeartbeat).where(
                    WorkerHeartbeat.last_seen >= cutoff, WorkerHeartbeat.queues.contains(queue),
                    WorkerHeartbeat.load_error.is_(None),  # a worker whose model did not load
                    WorkerHeartbeat.model_name == (model or self.settings.model))
            ) or 0
        if workers <= 1:
            return self.settings.render_batch_size
        return max(1, min(self.settings.render_batch_size, math.ceil(n_items / (2 * workers))))

    def _send(self, send, item_ids: list[str]) -> bool:
        try:
            send()
            return True
        except Exception as exc:  # broker down: SQL keeps the work, un-mark so it is sent later
            log.warning("could not enqueue %d items (%s); they are sent later", len(item_ids), exc)
            with self.sessions.begin() as session:
                states.mark_unsent(session, item_ids)
            return False

    def send_preview(self, item_id: str, new: states.NewPreview, model: str) -> None:
        """The message of an edit its transaction marked sent (unmarked again if it fails). It
        carries the state the edit wrote, so a worker that holds the item warm renders it
        before it takes it (``worker.render.warm``)."""
        entry = (item_id, new.version, new.render_state())
        self._send(lambda: self.dispatcher.send_previews([entry], 1, model), [item_id])
