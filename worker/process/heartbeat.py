"""Worker heartbeats and the reaper that requeues what a silent worker held.

Each worker process runs a :class:`Heartbeat` daemon thread that upserts its ``WorkerHeartbeat``
row every ``heartbeat_seconds``. The name it beats under must be the one its tasks write into
``Item.worker`` (see :func:`worker_name`). :func:`reap` (run by one process at a time, see
``worker.process.reaper``) finds items in ``previewing``/``finalizing`` whose worker has been silent for
``heartbeat_timeout`` (or never beat at all), or that a worker has held longer than any task may
run, and puts them back in the queue, or fails them with ``worker_lost`` once they have been taken
``max_attempts`` times. Then the reconciler (``shared.items.recovery``) sends every unheld active item
whose message is missing, and the retention job deletes expired batches.

Times are the hosts' UTC clocks: keep them in sync (NTP); a skew well under ``heartbeat_timeout``
does no harm.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from shared.commands.batches import Jobs
from shared.items import states
from shared.items.recovery import reconcile
from shared.items.states import ItemStatus
from shared.platform.settings import Settings
from shared.store.tables import Item, WorkerHeartbeat, utcnow

log = logging.getLogger(__name__)

WORKER_LOST = "worker_lost"
# Rows of workers gone this long (and holding nothing) are deleted.
PRUNE_AFTER = timedelta(days=1)


def worker_name(hostname: str | None = None, pid: int | None = None) -> str:
    """``<celery node name>:<pid>`` (as ``worker.render.runtime`` names its process): one name per
    process, so a pool child that dies and is replaced leaves a silent name and its item is
    reaped. Node names must differ between hosts (Celery's default ``celery@<hostname>`` does)."""
    return f"{hostname or 'celery@' + socket.gethostname()}:{pid or os.getpid()}"


class Heartbeat:
    """Writes this process's ``WorkerHeartbeat`` row now and every ``interval`` seconds.

    Create it after fork (in the pool child), with a session factory of that process.
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        name: str,
        *,
        interval: float,
        queues: str = "preview,final",
        model_name: str = "",
        pretrained: bool = False,
        device: str = "cpu",
    ):
        self.sessions = sessions
        self.name = name
        self.interval = interval
        self.info = {"queues": queues[:100], "model_name": model_name[:80],
                     "pretrained": pretrained, "device": device[:40]}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def beat(self, now: datetime | None = None) -> None:
        now = now or utcnow()
        with self.sessions.begin() as session:
            changed = session.execute(
                update(WorkerHeartbeat).where(WorkerHeartbeat.name == self.name)
                .values(last_seen=now, **self.info).execution_options(synchronize_session=False)
            ).rowcount
            if not changed:
                session.add(WorkerHeartbeat(name=self.name, started_at=now, last_seen=now,
                                            **self.info))

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.beat()
            except SQLAlchemyError as exc:  # database away for a moment: try again next period
                log.warning("heartbeat of %s not written: %s", self.name, exc)
            self._stop.wait(self.interval)

    def start(self) -> Heartbeat:
        """Beat now and then every ``interval`` seconds in a daemon thread."""
        try:
            self.beat()
        except SQLAlchemyError as exc:
            log.error("first heartbeat of %s not written (will retry): %s", self.name, exc)
        self._thread = threading.Thread(target=self._run, name="anycost-heartbeat", daemon=True)
        self._thread.start()
        return self

    def stop(self, remove: bool = True) -> None:
        """Stop beating; ``remove`` deletes the row (a clean shutdown holds no items)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.interval + 5)
        if remove:
            with self.sessions.begin() as session:
                session.execute(delete(WorkerHeartbeat).where(WorkerHeartbeat.name == self.name))


def start_heartbeat(settings: Settings, sessions: sessionmaker[Session], name: str,
                    **info) -> Heartbeat:
    """The worker start-up call: a heartbeat every ``settings.heartbeat_seconds``."""
    return Heartbeat(sessions, name, interval=settings.heartbeat_seconds, **info).start()


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


def _recover(session: Session, row, settings: Settings) -> str | None:
    """Requeue or fail one lost item. Returns "requeued", "failed" or None (someone else moved
    it since we looked)."""
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
    states.requeue_lost(session, row.id, ItemStatus(row.status))
    return "requeued"


def reap(
    sessions: sessionmaker[Session], jobs: Jobs, settings: Settings, now: datetime | None = None,
    trust_heartbeats: bool = True,
) -> ReapResult:
    """One pass: recover lost items, send whatever is missing from the queue (the reconciler),
    delete expired batches, prune old heartbeats. Safe to run concurrently with workers and with
    another reaper (every change is guarded). ``trust_heartbeats=False`` (just after a database
    outage, when no worker could beat) skips the lost-worker step."""
    now = now or utcnow()
    cutoff = now - timedelta(seconds=settings.heartbeat_timeout)
    held_before = now - timedelta(seconds=settings.message_visibility)
    result = ReapResult()
    rows = []
    if trust_heartbeats:
        with sessions.begin() as session:
            rows = lost_items(session, cutoff, held_before)
    for row in rows:
        with sessions.begin() as session:
            outcome = _recover(session, row, settings)
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

    sent = reconcile(sessions, jobs, settings, now)
    result.released = sent.sent
    result.presumed_lost = sent.presumed_lost
    result.expired_batches = jobs.delete_expired(now)

    with sessions.begin() as session:
        held = select(Item.worker).where(Item.worker.is_not(None))
        result.pruned_workers = session.execute(
            delete(WorkerHeartbeat).where(
                WorkerHeartbeat.last_seen < now - max(PRUNE_AFTER, 10 * (now - cutoff)),
                WorkerHeartbeat.name.not_in(held),
            ).execution_options(synchronize_session=False)
        ).rowcount
    return result
