"""The reconciler: makes "the database is the truth" hold for the queue.

Every active item (``queued``, ``previewing``, ``finalizing``) that no worker holds is either
in the queue (a message was sent for its current work less than the visibility timeout ago) or
it is sent again here. That covers every way a message goes missing: Redis down when the web
sent it (edit, finalize, upload), Redis restarted without its data or flushed, a message acked
by a task that could not write its result, a worker that died holding the item (the reaper
releases it first, see ``worker.process.heartbeat``). A duplicate message is harmless: every take and
every result is a guarded transition (shared.items.states), so a second delivery changes nothing.

Queued previews are released within each user's cap (``Jobs.release_user``); edits and finals
are sent at once (they are a person waiting on one item).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import distinct, select
from sqlalchemy.orm import Session, sessionmaker

from shared.commands.batches import Jobs
from shared.items import states
from shared.items.states import ACTIVE, ItemStatus
from shared.platform.settings import Settings
from shared.store.tables import Batch, Item, utcnow

log = logging.getLogger(__name__)


@dataclass
class Reconciled:
    presumed_lost: int = 0  # sent longer ago than the visibility timeout, nobody took them
    previews: int = 0  # queued items released
    edits: int = 0  # previewing items (new edits) sent
    finals: int = 0

    @property
    def sent(self) -> int:
        return self.previews + self.edits + self.finals


def reconcile(sessions: sessionmaker[Session], jobs: Jobs, settings: Settings,
              now: datetime | None = None) -> Reconciled:
    """One pass. Safe to run concurrently with workers, web processes and another reconciler."""
    now = now or utcnow()
    stale = now - timedelta(seconds=settings.message_visibility)
    out = Reconciled()
    with sessions.begin() as session:
        lost = session.scalars(select(Item.id).where(
            Item.status.in_([s.value for s in ACTIVE]), Item.worker.is_(None),
            Item.enqueued_at < stale)).all()
        out.presumed_lost = states.mark_unsent(session, lost, sent_before=stale)
    if out.presumed_lost:
        log.warning("%d items were sent more than %ds ago and never taken: sending them again",
                    out.presumed_lost, settings.message_visibility)

    with sessions.begin() as session:
        owners = session.scalars(
            select(distinct(Batch.owner_id)).join(Item, Item.batch_id == Batch.id).where(
                Item.status == ItemStatus.QUEUED.value, Item.enqueued_at.is_(None))).all()
        unheld = {status: session.execute(
            select(Item.id, Item.edit_version).where(
                Item.status == status.value, Item.worker.is_(None), Item.enqueued_at.is_(None))
            .order_by(Item.updated_at)).all()
            for status in (ItemStatus.PREVIEWING, ItemStatus.FINALIZING)}
    for owner_id in owners:
        out.previews += jobs.release_user(owner_id, now)
    for status in unheld:
        sent = jobs.send_unheld(status, [tuple(r) for r in unheld[status]], now=now)
        if status == ItemStatus.PREVIEWING:
            out.edits = sent
        else:
            out.finals = sent
    return out
