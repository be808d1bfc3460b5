"""The reaper as it runs: `python -m worker.process.reaper --once` in its own process, the loop's
healthcheck file, and the worker hooks that start a heartbeat and a reaper thread."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import types
from datetime import timedelta

from sqlalchemy import select

from shared.items import states
from shared.platform.queue import PREVIEW_QUEUE
from shared.store.tables import Item, WorkerHeartbeat, utcnow
from tests.ops.conftest import make_batch, queued_args
from worker.process import heartbeat, reaper


def test_reaper_cli_once_requeues(settings, sessions, jobs, owner_id, rclient):
    batch_id = make_batch(jobs, owner_id, 1)
    rclient.delete(PREVIEW_QUEUE)
    with sessions.begin() as session:
        item_id = session.scalar(select(Item.id).where(Item.batch_id == batch_id))
        assert states.start_preview(session, item_id, 0, "celery@crashed:9")
    heartbeat.Heartbeat(sessions, "celery@crashed:9", interval=1).beat(
        utcnow() - timedelta(seconds=settings.heartbeat_timeout + 5))
    env = {**os.environ, "DATABASE_URL": settings.database_url, "REDIS_URL": settings.redis_url}
    result = subprocess.run([sys.executable, "-m", "worker.process.reaper", "--once"], env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1])["requeued_previews"] == [item_id]
    assert queued_args(rclient, PREVIEW_QUEUE) == [[[item_id, 0]]]


def test_loop_touches_alive_file_and_healthcheck_reads_it(settings, sessions, jobs, tmp_path):
    alive = tmp_path / "alive"
    assert not reaper.healthy(settings, alive)
    stop = threading.Event()
    thread = threading.Thread(target=reaper.run_forever,
                              args=(settings, stop, reaper.build(settings, sessions, jobs.sender, jobs.blobs), alive), daemon=True)
    thread.start()
    try:
        deadline = time.time() + 20
        while not alive.exists() and time.time() < deadline:
            time.sleep(0.1)
        assert reaper.healthy(settings, alive)
    finally:
        stop.set()
        thread.join(timeout=10)
    os.utime(alive, (0, 0))  # a loop that stopped long ago
    assert not reaper.healthy(settings, alive)


def test_worker_hooks_start_and_stop_heartbeat(settings, sessions, jobs, rclient):
    rt = types.SimpleNamespace(settings=settings, sessions=sessions, sender=jobs.sender, blobs=jobs.blobs,
                               worker_name="celery@hooks:1", model_name="tiny-random",
                               pretrained=False, device="cpu", extras={})
    reaper.start(rt)
    try:
        with sessions.begin() as session:
            row = session.get(WorkerHeartbeat, "celery@hooks:1")
            assert row is not None and row.model_name == "tiny-random"
        deadline = time.time() + 20  # the worker's reaper thread takes the period's turn
        while not rclient.exists(reaper.LOCK_KEY) and time.time() < deadline:
            time.sleep(0.1)
        assert rclient.exists(reaper.LOCK_KEY)
    finally:
        reaper.stop(rt)
    assert rt.extras == {}
    with sessions.begin() as session:
        assert session.get(WorkerHeartbeat, "celery@hooks:1") is None
