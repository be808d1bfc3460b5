"""Worker heartbeats: each worker process runs a :class:`Heartbeat` daemon thread that upserts
its ``WorkerHeartbeat`` row every ``heartbeat_seconds``. The name it beats under must be the one
its tasks write into ``Item.worker`` (see :func:`worker_name`). What a silent worker held is
recovered by ``shared.items.recovery.reap`` (run by ``worker.process.reaper``). A worker that
cannot load its model says why in a row of its own (:func:`report_load_failure`), which
``shared.commands.availability`` reads.

Times are the hosts' UTC clocks: keep them in sync (NTP); a skew well under ``heartbeat_timeout``
does no harm.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from datetime import datetime, timedelta

from sqlalchemy import delete, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from shared.platform.settings import Settings
from shared.store.tables import WorkerHeartbeat, utcnow

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


def report_load_failure(sessions: sessionmaker[Session], name: str, *, model_name: str,
                        queues: str, reason: str, fix: str, device: str = "") -> None:
    """Write (or refresh) the row of a worker that could not load its model: ``load_error`` says
    why, ``load_fix`` what to do. ``name`` is the Celery node (one row per node, however often it
    retries); such a row holds no items and never counts as serving the model."""
    now = utcnow()
    values = {"queues": queues[:100], "model_name": model_name[:80], "pretrained": False,
              "device": device[:40], "last_seen": now, "load_error": reason[:2000],
              "load_fix": fix[:2000]}
    with sessions.begin() as session:
        changed = session.execute(
            update(WorkerHeartbeat).where(WorkerHeartbeat.name == name).values(**values)
            .execution_options(synchronize_session=False)).rowcount
        if not changed:
            session.add(WorkerHeartbeat(name=name, started_at=now, **values))


def clear_load_failure(sessions: sessionmaker[Session], name: str) -> None:
    """Forget node ``name``'s failure report: it has loaded its model since."""
    with sessions.begin() as session:
        session.execute(delete(WorkerHeartbeat).where(WorkerHeartbeat.name == name,
                                                      WorkerHeartbeat.load_error.is_not(None)))


def start_heartbeat(settings: Settings, sessions: sessionmaker[Session], name: str,
                    **info) -> Heartbeat:
    """The worker start-up call: a heartbeat every ``settings.heartbeat_seconds``."""
    return Heartbeat(sessions, name, interval=settings.heartbeat_seconds, **info).start()
