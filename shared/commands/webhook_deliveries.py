"""A user's webhook deliveries: which event of which of their batches went (or is going) to
which URL, how many tries it took and the last answer. Sending lives in
``shared.items.webhooks``; this is what ``GET /api/v1/webhooks/deliveries`` reads."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shared.commands.errors import CommandError
from shared.store.tables import Batch, Event, WebhookDelivery


def list_deliveries(session: Session, owner_id: int, batch_id: str | None, page: int,
                    per_page: int) -> tuple[list[tuple[WebhookDelivery, Event]], int]:
    """One page of the owner's deliveries (of one batch when ``batch_id``), newest first, and
    how many there are in all. Someone else's (or no) batch is a 404, as everywhere."""
    query = (select(WebhookDelivery, Event)
             .join(Event, Event.id == WebhookDelivery.event_id)
             .join(Batch, Batch.id == Event.batch_id)
             .where(Batch.owner_id == owner_id))
    if batch_id is not None:
        if session.scalar(select(Batch.id).where(Batch.id == batch_id,
                                                 Batch.owner_id == owner_id)) is None:
            raise CommandError("not_found", "no such batch", 404)
        query = query.where(Event.batch_id == batch_id)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.execute(query.order_by(WebhookDelivery.id.desc())
                           .limit(per_page).offset((page - 1) * per_page)).all()
    return [(delivery, event) for delivery, event in rows], total
