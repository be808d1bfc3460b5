"""Runs :func:`worker.heartbeat.reap` periodically, at most once per period across the cluster.

    python -m worker.reaper            # loop (the compose ``reaper`` service)
    python -m worker.reaper --once     # one pass, prints what it did

Workers may also run it in a daemon thread (:func:`start_reaper_thread`), so a deployment
without the reaper service still recovers lost items. Whoever sets the Redis key first in a
period reaps; the key expires after the period. Passes that overlap (a very slow pass) are still
safe: every change ``reap`` makes is a guarded UPDATE.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import threading
import uuid

import redis
from sqlalchemy.orm import Session, sessionmaker

from shared.blobs import make_blob_store
from shared.db import make_engine, make_session_factory
from shared.jobs import Jobs
from shared.logging import configure_logging
from shared.queue import Dispatcher
from shared.settings import Settings
from worker.heartbeat import ReapResult, reap

log = logging.getLogger(__name__)

LOCK_KEY = "anycost:reaper:lock"


def reap_period(settings: Settings) -> int:
    """Seconds between passes: twice the heartbeat period, well under the timeout."""
    return max(1, 2 * settings.heartbeat_seconds)


def reap_if_turn(
    settings: Settings, sessions: sessionmaker[Session], jobs: Jobs, client: redis.Redis
) -> ReapResult | None:
    """Reap unless another process already did in this period. None when it was not our turn."""
    if not client.set(LOCK_KEY, uuid.uuid4().hex, nx=True, ex=reap_period(settings)):
        return None
    result = reap(sessions, jobs, settings)
    if result.changed:
        log.info("reaper: %d previews and %d finals requeued, %d failed, %d sent, %d workers "
                 "pruned", len(result.requeued_previews), len(result.requeued_finals),
                 len(result.failed), result.released, result.pruned_workers)
    return result


def build(settings: Settings, sessions: sessionmaker[Session] | None = None,
          jobs: Jobs | None = None) -> tuple[sessionmaker[Session], Jobs, redis.Redis]:
    sessions = sessions or make_session_factory(make_engine(settings.database_url))
    jobs = jobs or Jobs(settings, sessions, make_blob_store(settings), Dispatcher(settings))
    client = redis.Redis.from_url(settings.redis_url, socket_connect_timeout=5, socket_timeout=10)
    return sessions, jobs, client


def run_forever(settings: Settings, stop: threading.Event, sessions=None, jobs=None) -> None:
    """Offer to reap every period until ``stop`` is set. Reuses ``sessions``/``jobs`` if given."""
    sessions, jobs, client = build(settings, sessions, jobs)
    period = reap_period(settings)
    while not stop.is_set():
        try:
            reap_if_turn(settings, sessions, jobs, client)
        except Exception:  # database or Redis away: log and try again next period
            log.exception("reaper pass failed")
        stop.wait(period)


def start_reaper_thread(settings: Settings, sessions: sessionmaker[Session] | None = None,
                        jobs: Jobs | None = None) -> threading.Event:
    """Reap in a daemon thread of this process; set the returned event to stop it."""
    stop = threading.Event()
    threading.Thread(target=run_forever, args=(settings, stop, sessions, jobs),
                     name="anycost-reaper", daemon=True).start()
    return stop


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m worker.reaper", description=__doc__.split("\n")[0])
    parser.add_argument("--once", action="store_true", help="one pass (ignores the lock), then exit")
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    configure_logging(settings)
    if args.once:
        sessions, jobs, _ = build(settings)
        result = reap(sessions, jobs, settings)
        print(json.dumps(vars(result)))
        return 0
    log.info("reaper started: a pass every %ds, heartbeat timeout %ds", reap_period(settings),
             settings.heartbeat_timeout)
    try:
        run_forever(settings, threading.Event())
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
