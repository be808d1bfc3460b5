"""Runs :func:`shared.items.recovery.reap` periodically, at most once per period across the cluster.

    python -m worker.process.reaper            # loop (the compose ``reaper`` service)
    python -m worker.process.reaper --once     # one pass, prints what it did
    python -m worker.process.reaper --healthcheck   # exit 0 when the loop ran recently (container check)
    python -m worker.process.reaper --cleanup  # delete batches past ANYCOST_RETENTION_DAYS, then exit

Workers may also run it in a daemon thread (:func:`start_reaper_thread`), so a deployment
without the reaper service still recovers lost items. Whoever sets the Redis key first in a
period reaps; the key expires after the period. Passes that overlap (a very slow pass) are still
safe: every change ``reap`` makes is a guarded UPDATE. Between passes the loop looks every 5 s
for the queue's sentinel key: when Redis lost its data the pass comes at once (and the lock key,
gone with the data, lets it), so lost messages are sent again within seconds.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import redis
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from shared.items.recovery import SENTINEL_KEY, ReapResult, reap
from shared.items.sending import Sender
from shared.platform.logging import configure_logging
from shared.platform.queue import Dispatcher
from shared.platform.settings import Settings
from shared.store.blobs import BlobStore, make_blob_store
from shared.store.db import make_engine, make_session_factory
from shared.store.retention import delete_expired
from worker.process.heartbeat import clear_load_failure, start_heartbeat

log = logging.getLogger(__name__)

LOCK_KEY = "anycost:reaper:lock"
# Touched after every loop turn that reached Redis and the database; the healthcheck reads it.
ALIVE_FILE = Path(tempfile.gettempdir()) / "anycost-reaper.alive"


def reap_period(settings: Settings) -> int:
    """Seconds between passes: the heartbeat period, so a worker silent for the timeout is
    noticed at most one period later (45 + 10 s with the defaults: under a minute)."""
    return max(1, settings.heartbeat_seconds)


@dataclass(frozen=True)
class ReaperParts:
    """What a reaper pass uses: database sessions, the sender, the blob store, Redis."""

    sessions: sessionmaker[Session]
    sender: Sender
    blobs: BlobStore
    client: redis.Redis


def reap_if_turn(settings: Settings, parts: ReaperParts,
                 trust_heartbeats: bool = True) -> ReapResult | None:
    """Reap unless another process already did in this period. None when it was not our turn.
    Redis down: everyone reaps (the lock is only there to save work; every change is guarded),
    since the reconciler is what sends the work once Redis is back."""
    try:
        if not parts.client.set(LOCK_KEY, uuid.uuid4().hex, nx=True, ex=reap_period(settings)):
            return None
    except redis.RedisError as exc:
        log.info("reaper lock unavailable (%s): reaping anyway", exc)
    result = reap(parts.sessions, parts.sender, parts.blobs, settings,
                  trust_heartbeats=trust_heartbeats, client=parts.client)
    if result.changed:
        log.info("reaper: %d previews and %d finals requeued, %d failed, %d sent (%d presumed "
                 "lost), %d batches expired, %d workers pruned", len(result.requeued_previews),
                 len(result.requeued_finals), len(result.failed), result.released,
                 result.presumed_lost, result.expired_batches, result.pruned_workers)
    return result


class Trust:
    """Whether heartbeats can be believed: after a database outage (no worker could beat, yet
    none is dead) not until the database has answered for a whole heartbeat timeout."""

    def __init__(self, settings: Settings):
        self.timeout = settings.heartbeat_timeout
        self.up_since: float | None = None  # None: no outage seen since this process started
        self.down = False

    def ok(self) -> None:
        if self.down:
            self.down, self.up_since = False, time.monotonic()

    def failed(self) -> None:
        self.down = True

    @property
    def heartbeats(self) -> bool:
        if self.down:
            return False
        return self.up_since is None or time.monotonic() - self.up_since >= self.timeout


def build(settings: Settings, sessions: sessionmaker[Session] | None = None,
          sender: Sender | None = None, blobs: BlobStore | None = None) -> ReaperParts:
    """The reaper's parts; those given are reused (a worker's own sessions, sender, blobs)."""
    sessions = sessions or make_session_factory(make_engine(settings.database_url))
    client = redis.Redis.from_url(settings.redis_url,
                                  socket_connect_timeout=settings.redis_connect_timeout,
                                  socket_timeout=settings.redis_socket_timeout)
    return ReaperParts(sessions, sender or Sender(settings, sessions, Dispatcher(settings)),
                       blobs or make_blob_store(settings), client)


def run_forever(settings: Settings, stop: threading.Event, parts: ReaperParts | None = None,
                alive_file: Path | None = None) -> None:
    """Offer to reap every period until ``stop`` is set."""
    parts = parts or build(settings)
    period = reap_period(settings)
    trust = Trust(settings)
    while not stop.is_set():
        try:
            if reap_if_turn(settings, parts, trust.heartbeats) is None:
                parts.client.ping()  # not our turn: still prove Redis answers before saying alive
            trust.ok()
            if alive_file is not None:
                alive_file.touch()
        except SQLAlchemyError as exc:  # database away: heartbeats stop meaning anything
            trust.failed()
            log.warning("reaper pass failed, database unavailable: %s", exc)
        except Exception:  # Redis away: log and try again next period
            log.exception("reaper pass failed")
        _wait_or_wiped(parts.client, stop, period)


SENTINEL_CHECK_SECONDS = 5.0


def _wait_or_wiped(client: redis.Redis, stop: threading.Event, period: float) -> None:
    """Wait ``period`` seconds, or less when the queue's sentinel disappears (Redis lost its
    data: the next pass sends the lost messages again at once, see shared.items.recovery)."""
    deadline = time.monotonic() + period
    while not stop.wait(min(SENTINEL_CHECK_SECONDS, max(0.0, deadline - time.monotonic()))):
        if time.monotonic() >= deadline:
            return
        try:
            if not client.exists(SENTINEL_KEY):
                return
        except redis.RedisError:
            pass  # Redis away: the pass will say so


def healthy(settings: Settings, alive_file: Path = ALIVE_FILE) -> bool:
    """The loop got through a turn within the last three periods."""
    try:
        age = time.time() - os.stat(alive_file).st_mtime
    except FileNotFoundError:
        return False
    return age < 3 * reap_period(settings) + 10


def start_reaper_thread(settings: Settings, parts: ReaperParts | None = None) -> threading.Event:
    """Reap in a daemon thread of this process; set the returned event to stop it."""
    stop = threading.Event()
    threading.Thread(target=run_forever, args=(settings, stop, parts),
                     name="anycost-reaper", daemon=True).start()
    return stop


def start(rt) -> None:
    """Worker start-up hook (``worker.process.celery_app`` calls it in each pool process with its
    ``worker.render.runtime.Runtime``): beat under the process's name, and take part in reaping."""
    rt.extras["heartbeat"] = start_heartbeat(
        rt.settings, rt.sessions, rt.worker_name, model_name=str(rt.model_name),
        queues=rt.extras.get("queues", "preview,final"),
        pretrained=bool(rt.pretrained), device=str(rt.device))
    # This node loaded its model: an earlier failure report of it no longer holds.
    clear_load_failure(rt.sessions, rt.worker_name.rsplit(":", 1)[0])
    # Every worker offers to reap; a Redis key lets one of them do it per period, so a worker
    # host needs nothing but DATABASE_URL and REDIS_URL for lost items to be recovered.
    rt.extras["reaper_stop"] = start_reaper_thread(
        rt.settings, build(rt.settings, rt.sessions, rt.sender, rt.blobs))


def stop(rt) -> None:
    """Worker shutdown hook: stop reaping and remove this process's heartbeat row."""
    if (stop_reaper := rt.extras.pop("reaper_stop", None)) is not None:
        stop_reaper.set()
    if (heartbeat := rt.extras.pop("heartbeat", None)) is not None:
        try:
            heartbeat.stop(remove=True)
        except SQLAlchemyError as exc:  # the row goes stale and is pruned later
            log.warning("heartbeat row of %s not removed: %s", heartbeat.name, exc)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m worker.process.reaper", description=__doc__.split("\n")[0])
    parser.add_argument("--once", action="store_true", help="one pass (ignores the lock), then exit")
    parser.add_argument("--healthcheck", action="store_true",
                        help="exit 0 if the running loop completed a turn recently, else 1")
    parser.add_argument("--cleanup", action="store_true",
                        help="delete batches older than ANYCOST_RETENTION_DAYS, then exit")
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    if args.healthcheck:
        return 0 if healthy(settings) else 1
    configure_logging(settings)
    if args.cleanup:
        parts = build(settings)
        deleted = 0
        while batch := delete_expired(settings, parts.sessions, parts.blobs):  # 100 per call
            deleted += batch
        print(json.dumps({"expired_batches": deleted}))
        return 0
    if args.once:
        parts = build(settings)
        result = reap(parts.sessions, parts.sender, parts.blobs, settings, client=parts.client)
        print(json.dumps(vars(result)))
        return 0
    log.info("reaper started: a pass every %ds, heartbeat timeout %ds", reap_period(settings),
             settings.heartbeat_timeout)
    try:
        run_forever(settings, threading.Event(), alive_file=ALIVE_FILE)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
