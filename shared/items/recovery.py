"""Recovery, in one place: what a silent worker held (:func:`reap`) and what the queue lost
(:func:`reconcile`, the reconciler).

:func:`reap` (run by one process at a time, see ``worker.process.reaper``) finds items in
``previewing``/``finalizing`` whose worker has been silent for ``heartbeat_timeout`` (or never
beat at all), or that a worker has held longer than any task may run, and puts them back in the
queue, or fails them with ``worker_lost`` once they have been charged ``max_attempts`` takes.
Only a take alone is charged: items a dead worker held together are put back uncharged and
marked (``group_lost``) so that each is taken alone next (worker.render.pipeline), and only
the one whose take kills workers reaches the cap. Then
the reconciler sends every unheld active item whose message is missing, and the retention job
deletes expired batches.

The reconciler makes "the database is the truth" hold for the queue.

Every active item (``queued``, ``previewing``, ``finalizing``) that no worker holds is either
in the queue (a message was sent for its current work less than the visibility timeout ago) or
it is sent again here. That covers every way a message goes missing: Redis down when the web
sent it (edit, finalize, upload), Redis restarted without its data or flushed, a message acked
by a task that could not write its result, a worker that died holding the item (the reaper
releases it first, see ``worker.process.heartbeat``). A duplicate message is harmless: every take and
every result is a guarded transition (shared.items.states), so a second delivery changes nothing.

Queued previews are released within each user's cap (``Sender.release_user``); edits and finals
are sent at once (they are a person waiting on one item).

A Redis that lost its data (FLUSHALL, a restart without persistence, a replica promoted
without the data) is noticed at the next pass, not after the visibility timeout (13 minutes
with the default limits): the reconciler keeps a sentinel key in Redis (``SENTINEL_KEY``, no
expiry); when it is gone, so is the queue, and every item the database says is sent and no
worker holds is sent again at once (:func:`queue_wiped`). The visibility timeout stays for the
rarer loss of single messages. A new deployment has no sentinel yet: its first pass sends the
waiting items again, which is harmless (every take is guarded).
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import delete, distinct, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from shared.items import states
from shared.items.sending import Sender
from shared.items.states import ACTIVE, ItemStatus
from shared.platform.settings import Settings
from shared.store.blobs import BlobStore
from shared.store.retention import delete_expired
from shared.store.tables import Batch, Item, WorkerHeartbeat, utcnow

log = logging.getLogger(__name__)

WORKER_LOST = "worker_lost"
SENTINEL_KEY = "anycost:queue:sentinel"  # kept in Redis by the reconciler; gone: queue wiped
# Rows of workers gone this long (and holding nothing) are deleted.
PRUNE_AFTER = timedelta(days=1)


@dataclass
class Reconciled:
    presumed_lost: int = 0  # sent longer ago than the visibility timeout, nobody took them
    previews: int = 0  # queued items released
    edits: int = 0  # previewing items (new edits) sent
    finals: int = 0

    @property
    def sent(self) -> int:
        return self.previews + self.edits + self.finals


def queue_wiped(client) -> bool:
    """Whether Redis lost its data since the last pass: the sentinel is missing (it is set again
    here, before anything is re-sent, so a wipe after this check is seen by the next pass).
    Redis unreachable: False (nothing can be sent anyway; the next pass looks again)."""
    try:
        return bool(client.set(SENTINEL_KEY, "1", nx=True))
    except Exception as exc:
        log.info("queue sentinel unavailable (%s)", exc)
        return False


def reconcile(sessions: sessionmaker[Session], sender: Sender, settings: Settings,
              now: datetime | None = None, wiped: bool = False) -> Reconciled:
    """One pass. Safe to run concurrently with workers, web processes and another reconciler.
    ``wiped``: the queue lost its messages (:func:`queue_wiped`): whatever was sent and is not
    held is sent again now, whenever it was sent."""
    now = now or utcnow()
    stale = now if wiped else now - timedelta(seconds=settings.message_visibility)
    out = Reconciled()
    with sessions.begin() as session:
        lost = session.scalars(select(Item.id).where(
            Item.status.in_([s.value for s in ACTIVE]), Item.worker.is_(None),
            Item.enqueued_at < stale)).all()
        out.presumed_lost = states.mark_unsent(session, lost, sent_before=stale)
    if wiped:
        log.warning("the queue lost its data (sentinel %s gone): sending %d items again",
                    SENTINEL_KEY, out.presumed_lost)
    elif out.presumed_lost:
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
        out.previews += sender.release_user(owner_id, now)
    for status in unheld:
        sent = sender.send_unheld(status, [tuple(r) for r in unheld[status]], now=now)
        if status == ItemStatus.PREVIEWING:
            out.edits = sent
        else:
            out.finals = sent
    return out


@dataclass
class ReapResult:
    requeued_previews: list[str] = field(default_factory=list)
    requeued_finals: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    released: int = 0  # messages' items sent by the reconciler (requeued, unsent, lost ones)
    presumed_lost: int = 0  # items whose message was sent too long ago and never taken
    pruned_workers: int = 0
    expired_batches: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.requeued_previews or self.requeued_finals or self.failed
                    or self.released or self.pruned_workers or self.expired_batches)


def lost_items(session: Session, cutoff: datetime, held_before: datetime | None = None) -> list:
    """Items a worker holds whose heartbeat is older than ``cutoff`` or missing, or (with
    ``held_before``) that were taken before it: longer than a task may live, so whatever holds
    them lost them (a task that died without giving them back)."""
    alive = select(WorkerHeartbeat.name).where(WorkerHeartbeat.last_seen >= cutoff)
    silent = Item.worker.not_in(alive)
    if held_before is not None:
        silent = or_(silent, Item.updated_at < held_before)
    return session.execute(
        select(Item.id, Item.batch_id, Item.status, Item.worker, Item.attempts).where(
            Item.status.in_([ItemStatus.PREVIEWING.value, ItemStatus.FINALIZING.value]),
            Item.worker.is_not(None), silent,
        ).order_by(Item.batch_id, Item.position)
    ).all()


def _recover(session: Session, row, settings: Settings, group: bool = False) -> str | None:
    """Requeue or fail one lost item. Returns "requeued", "failed" or None (someone else moved
    it since we looked). ``group``: the worker held it with others: it was not charged for
    that take (``shared.items.states.start_preview``) and is taken alone from now on."""
    # Guard on the worker too: a no-op UPDATE that also locks the row (PostgreSQL) or the database
    # (SQLite) until commit, so a live worker that took the item meanwhile is never robbed of it.
    still_held = session.execute(
        update(Item).where(Item.id == row.id, Item.status == row.status, Item.worker == row.worker)
        .values(worker=row.worker).execution_options(synchronize_session=False)
    ).rowcount
    if not still_held:
        return None
    if row.attempts >= settings.max_attempts:
        states.fail(session, row.id, WORKER_LOST,
                    f"the worker rendering it stopped responding ({row.attempts} attempts)")
        return "failed"
    # Unheld and unsent: the reconciler sends it (previews within the user's cap).
    states.requeue_lost(session, row.id, ItemStatus(row.status), group=group)
    return "requeued"


def reap(
    sessions: sessionmaker[Session], sender: Sender, blobs: BlobStore, settings: Settings,
    now: datetime | None = None, trust_heartbeats: bool = True, client=None,
) -> ReapResult:
    """One pass: recover lost items, send whatever is missing from the queue (the reconciler),
    delete expired batches, prune old heartbeats. Safe to run concurrently with workers and with
    another reaper (every change is guarded). ``trust_heartbeats=False`` (just after a database
    outage, when no worker could beat) skips the lost-worker step. ``client``: the Redis of the
    queue, where the sentinel (:func:`queue_wiped`) is kept."""
    now = now or utcnow()
    cutoff = now - timedelta(seconds=settings.heartbeat_timeout)
    held_before = now - timedelta(seconds=settings.message_visibility)
    result = ReapResult()
    rows = []
    if trust_heartbeats:
        with sessions.begin() as session:
            rows = lost_items(session, cutoff, held_before)
    held = Counter((row.worker, row.status) for row in rows)
    for row in rows:
        with sessions.begin() as session:
            outcome = _recover(session, row, settings, group=held[row.worker, row.status] > 1)
        if outcome == "failed":
            result.failed.append(row.id)
        elif outcome == "requeued":
            lst = result.requeued_previews if row.status == ItemStatus.PREVIEWING else \
                result.requeued_finals
            lst.append(row.id)
        if outcome:
            log.warning("item %s %s: worker %s silent since before %s (attempt %d)", row.id,
                        outcome, row.worker, cutoff.isoformat(timespec="seconds"), row.attempts,
                        extra={"item_id": row.id, "batch_id": row.batch_id})

    wiped = client is not None and queue_wiped(client)
    sent = reconcile(sessions, sender, settings, now, wiped=wiped)
    result.released = sent.sent
    result.presumed_lost = sent.presumed_lost
    result.expired_batches = delete_expired(settings, sessions, blobs, now)

    with sessions.begin() as session:
        held = select(Item.worker).where(Item.worker.is_not(None))
        result.pruned_workers = session.execute(
            delete(WorkerHeartbeat).where(
                WorkerHeartbeat.last_seen < now - max(PRUNE_AFTER, 10 * (now - cutoff)),
                WorkerHeartbeat.name.not_in(held),
            ).execution_options(synchronize_session=False)
        ).rowcount
    return result
