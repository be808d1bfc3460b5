"""The event outbox: ``record_event`` writes what happened to an item into ``events`` (and one
``webhook_deliveries`` row when the batch names a webhook URL) in the caller's transaction, the
same one that changes the item, so an event exists exactly when its change was committed.

Kinds: ``item.preview_ready``, ``item.done``, ``item.failed`` (from shared.items.states transitions) and
``batch.completed`` once every item of a batch is done, failed or canceled. Two workers finishing
a batch's last items at once may both miss the moment (neither sees the other's commit), so the
webhook sender also calls ``sweep_completed_batches``: at least once, never lost.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from shared.codes.item_status import TERMINAL, batch_status, status_counts
from shared.store.tables import Batch, Event, Item, WebhookDelivery, utcnow

ITEM_PREVIEW_READY = "item.preview_ready"
ITEM_DONE = "item.done"
ITEM_FAILED = "item.failed"
BATCH_COMPLETED = "batch.completed"
ITEM_KINDS = (ITEM_PREVIEW_READY, ITEM_DONE, ITEM_FAILED)
KINDS = (*ITEM_KINDS, BATCH_COMPLETED)
_TERMINAL = frozenset(s.value for s in TERMINAL)


def _add(session: Session, batch_id: str, webhook_url: str | None, kind: str, data: dict,
         item_id: str | None = None) -> Event:
    event = Event(public_id=f"msg_{uuid.uuid4().hex}", batch_id=batch_id, item_id=item_id,
                  kind=kind, data=data, created_at=utcnow())
    session.add(event)
    session.flush()
    if webhook_url:
        session.add(WebhookDelivery(event_id=event.id, url=webhook_url, status="pending",
                                    attempts=0, next_attempt_at=utcnow(), created_at=utcnow()))
        session.flush()
    return event


def record_event(session: Session, item_id: str, kind: str) -> Event | None:
    """Record ``kind`` for the item (after its transition, same transaction). None when the
    item is gone."""
    row = session.execute(
        select(Item.batch_id, Item.status, Item.error_code, Item.error_message, Item.edit_version,
               Batch.webhook_url)
        .join(Batch, Batch.id == Item.batch_id).where(Item.id == item_id)
    ).one_or_none()
    if row is None:
        return None
    error = {"code": row.error_code, "message": row.error_message} if row.error_code else None
    data = {"batch_id": row.batch_id, "item_id": item_id, "status": row.status,
            "edit_version": row.edit_version, "error": error}
    event = _add(session, row.batch_id, row.webhook_url, kind, data, item_id)
    if kind in (ITEM_DONE, ITEM_FAILED):
        complete_batch_if_finished(session, row.batch_id)
    return event


def complete_batch_if_finished(session: Session, batch_id: str) -> Event | None:
    """``batch.completed`` when every item is terminal and no such event followed the last item
    event (a retried item that finishes again completes the batch again)."""
    statuses = session.scalars(select(Item.status).where(Item.batch_id == batch_id)).all()
    if not statuses or any(s not in _TERMINAL for s in statuses):
        return None
    def last(*kinds: str) -> int | None:
        return session.scalar(select(func.max(Event.id)).where(
            Event.batch_id == batch_id, Event.kind.in_(kinds)))

    last_item = last(*ITEM_KINDS)
    if last_item is None:
        return None  # nothing happened to its items through the state machine (canceled only)
    last_completed = last(BATCH_COMPLETED)
    if last_completed is not None and last_completed > last_item:
        return None
    batch = session.execute(select(Batch.webhook_url, Batch.name)
                            .where(Batch.id == batch_id)).one_or_none()
    webhook_url, name = batch if batch is not None else (None, None)
    data = {"batch_id": batch_id, "name": name, "status": batch_status(statuses),
            "counts": status_counts(statuses)}
    return _add(session, batch_id, webhook_url, BATCH_COMPLETED, data)


def sweep_completed_batches(session: Session, within: timedelta = timedelta(days=1)) -> int:
    """``complete_batch_if_finished`` for every batch whose latest item event (within ``within``)
    came after its latest ``batch.completed``; how many it wrote (the caller commits)."""
    since = utcnow() - within
    last_item = func.max(case((Event.kind.in_(ITEM_KINDS), Event.id)))
    last_completed = func.coalesce(func.max(case((Event.kind == BATCH_COMPLETED, Event.id))), 0)
    candidates = session.scalars(
        select(Event.batch_id).where(Event.created_at >= since).group_by(Event.batch_id)
        .having(last_item > last_completed)
    ).all()
    return sum(complete_batch_if_finished(session, b) is not None for b in candidates)
