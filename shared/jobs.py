"""What a user can do to batches and items, for the REST API and the portal alike.

Each operation writes SQL first (committed), then sends queue messages: if Redis is down the work
is not lost, the items stay ``queued`` and ``release_pending`` (called by the reaper) sends them
later. Fair queues: one batch never holds more than ``batch_queue_cap`` items in the preview queue;
the rest are released as its items finish (``release_pending``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from shared import states
from shared.blobs import BlobStore
from shared.models import Batch, Item, WorkerHeartbeat, new_id, utcnow
from shared.queue import FINAL_QUEUE, PREVIEW_QUEUE, Dispatcher
from shared.recipe import Recipe, parse_edits
from shared.settings import Settings
from shared.states import ItemStatus

log = logging.getLogger(__name__)


class JobError(Exception):
    """A request that cannot be done; ``status`` is the HTTP status the web side answers."""

    def __init__(self, code: str, message: str, status: int = 400):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


@dataclass(frozen=True)
class Upload:
    filename: str
    data: bytes
    content_type: str


class Jobs:
    def __init__(
        self,
        settings: Settings,
        sessions: sessionmaker[Session],
        blobs: BlobStore,
        dispatcher: Dispatcher,
    ):
        self.settings = settings
        self.sessions = sessions
        self.blobs = blobs
        self.dispatcher = dispatcher

    # --- reading, with per-owner access ------------------------------------------------------

    def get_batch(self, session: Session, owner_id: int, batch_id: str) -> Batch:
        batch = session.get(Batch, batch_id)
        if batch is None or batch.owner_id != owner_id:
            raise JobError("not_found", "no such batch", 404)
        return batch

    def get_item(self, session: Session, owner_id: int, item_id: str) -> Item:
        item = session.get(Item, item_id)
        if item is None or item.batch.owner_id != owner_id:
            raise JobError("not_found", "no such item", 404)
        return item

    def list_batches(
        self, session: Session, owner_id: int, page: int = 1, per_page: int = 20
    ) -> tuple[list[Batch], int]:
        total = session.scalar(select(func.count()).select_from(Batch).where(Batch.owner_id == owner_id))
        rows = session.scalars(
            select(Batch).where(Batch.owner_id == owner_id)
            .order_by(Batch.created_at.desc(), Batch.id).limit(per_page)
            .offset((page - 1) * per_page)
        ).all()
        return list(rows), int(total or 0)

    # --- writing ----------------------------------------------------------------------------

    def create_batch(self, owner_id: int, uploads: Sequence[Upload], recipe: Recipe,
                     webhook_url: str | None = None) -> str:
        if not uploads:
            raise JobError("no_files", "a batch needs at least one file (form field 'files')")
        if len(uploads) > self.settings.max_files_per_batch:
            raise JobError(
                "too_many_files",
                f"{len(uploads)} files; at most {self.settings.max_files_per_batch} per batch",
                413,
            )
        batch_id = new_id()
        with self.sessions.begin() as session:
            session.add(Batch(
                id=batch_id, owner_id=owner_id, recipe=recipe.as_dict(),
                model_name=self.settings.model, webhook_url=webhook_url,
            ))
            session.flush()
            for position, upload in enumerate(uploads):
                blob = self.blobs.put(session, upload.data, upload.content_type)
                session.add(Item(
                    id=new_id(), batch_id=batch_id, position=position,
                    filename=upload.filename[:255], status=ItemStatus.QUEUED.value,
                    upload_blob_id=blob.id, preview_cost=recipe.preview.as_dict(),
                    final_cost=recipe.final.as_dict(), timings={}, edit_version=0, attempts=0,
                ))
        self.release_pending(batch_id)
        return batch_id

    def release_pending(self, batch_id: str) -> int:
        """Send queued-but-unsent items of a batch, keeping at most ``batch_queue_cap`` of them in
        the queue. Safe to call from anywhere, any number of times. Returns items sent."""
        cap = self.settings.batch_queue_cap
        with self.sessions.begin() as session:
            in_queue = session.scalar(
                select(func.count()).select_from(Item).where(
                    Item.batch_id == batch_id,
                    Item.status.in_([ItemStatus.QUEUED.value, ItemStatus.PREVIEWING.value]),
                    Item.enqueued_at.is_not(None),
                )
            ) or 0
            room = cap - in_queue
            if room <= 0:
                return 0
            candidates = session.execute(
                select(Item.id, Item.edit_version).where(
                    Item.batch_id == batch_id, Item.status == ItemStatus.QUEUED.value,
                    Item.enqueued_at.is_(None),
                ).order_by(Item.position).limit(room)
            ).all()
            claimed = []
            now = utcnow()
            for item_id, version in candidates:
                # Guarded: two releasers never send the same item twice.
                done = session.execute(
                    update(Item).where(Item.id == item_id, Item.enqueued_at.is_(None))
                    .values(enqueued_at=now).execution_options(synchronize_session=False)
                ).rowcount
                if done:
                    claimed.append((item_id, version))
        if claimed:
            size = self.group_size(len(claimed), PREVIEW_QUEUE)
            self._send(lambda: self.dispatcher.send_previews(claimed, size), [i for i, _ in claimed])
        return len(claimed)

    def group_size(self, n_items: int, queue: str) -> int:
        """Items per message: ``render_batch_size``, but with several live workers of ``queue``
        small enough that each gets at least two messages, so none idles while another holds a
        big group (measured: 2 workers took 14% longer with groups of 8 than of 1)."""
        cutoff = utcnow() - timedelta(seconds=self.settings.heartbeat_timeout)
        with self.sessions() as session:
            workers = session.scalar(
                select(func.count()).select_from(WorkerHeartbeat).where(
                    WorkerHeartbeat.last_seen >= cutoff, WorkerHeartbeat.queues.contains(queue))
            ) or 0
        if workers <= 1:
            return self.settings.render_batch_size
        return max(1, min(self.settings.render_batch_size, math.ceil(n_items / (2 * workers))))

    def _send(self, send, item_ids: list[str]) -> None:
        try:
            send()
        except Exception as exc:  # broker down: SQL keeps the work, un-mark so it is sent later
            log.warning("could not enqueue %d items (%s); they stay queued", len(item_ids), exc)
            with self.sessions.begin() as session:
                session.execute(
                    update(Item).where(Item.id.in_(item_ids), Item.status == ItemStatus.QUEUED.value)
                    .values(enqueued_at=None).execution_options(synchronize_session=False)
                )

    def finalize_batch(self, owner_id: int, batch_id: str) -> int:
        """Queue finals for every preview_ready item. Returns how many were queued."""
        with self.sessions.begin() as session:
            batch = self.get_batch(session, owner_id, batch_id)
            ids = [i.id for i in batch.items if i.status == ItemStatus.PREVIEW_READY.value]
            queued = [i for i in ids if states.request_final(session, i)]
        if queued:
            self._send_finals(queued, self.group_size(len(queued), FINAL_QUEUE))
        return len(queued)

    def finalize_item(self, owner_id: int, item_id: str) -> None:
        with self.sessions.begin() as session:
            item = self.get_item(session, owner_id, item_id)
            if not states.request_final(session, item.id):
                raise JobError(
                    "invalid_state", f"item is {item.status}; only a preview_ready item can be "
                    "finalized", 409)
        self._send_finals([item_id])

    def _send_finals(self, item_ids: list[str], group_size: int | None = None) -> None:
        try:
            self.dispatcher.send_finals(item_ids, group_size)
        except Exception as exc:  # the reaper resends finals that nobody holds
            log.warning("could not enqueue %d finals (%s); the reaper will retry", len(item_ids), exc)

    def edit_item(self, owner_id: int, item_id: str, raw_edits) -> int:
        """New edits for one item (a new preview). Returns the new edit version."""
        edits = parse_edits(raw_edits)
        with self.sessions.begin() as session:
            item = self.get_item(session, owner_id, item_id)
            version = states.request_edit(session, item.id, edits)
            if version is None:
                raise JobError(
                    "invalid_state", f"item is {item.status}; its edits cannot change now", 409)
        try:
            self.dispatcher.send_previews([(item_id, version)])
        except Exception as exc:
            log.warning("could not enqueue preview of %s (%s); the reaper will retry", item_id, exc)
        return version

    def set_preview_cost(self, owner_id: int, item_id: str, cost: dict) -> None:
        with self.sessions.begin() as session:
            item = self.get_item(session, owner_id, item_id)
            item.preview_cost = cost

    def cancel_batch(self, owner_id: int, batch_id: str) -> int:
        with self.sessions.begin() as session:
            batch = self.get_batch(session, owner_id, batch_id)
            n = sum(states.cancel(session, item.id) for item in batch.items)
            batch.canceled_at = utcnow()
        return n

    def retry_item(self, owner_id: int, item_id: str) -> None:
        with self.sessions.begin() as session:
            item = self.get_item(session, owner_id, item_id)
            if not states.retry(session, item.id):
                raise JobError("invalid_state", f"item is {item.status}; only a failed item can "
                               "be retried", 409)
            session.execute(update(Item).where(Item.id == item.id).values(enqueued_at=None))
            batch_id = item.batch_id
        self.release_pending(batch_id)
