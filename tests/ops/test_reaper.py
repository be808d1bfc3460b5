"""Heartbeats and the reaper against a real database (SQLite and PostgreSQL) and a real Redis:
items held by a dead worker go back to the queue (and a new message is sent), then fail with
``worker_lost`` after ``max_attempts``; items of live workers are left alone."""

from __future__ import annotations

import time
from datetime import timedelta

from sqlalchemy import select, update

from shared.items import states
from shared.items.recovery import WORKER_LOST, reap
from shared.items.states import ItemStatus
from shared.platform.queue import FINAL_QUEUE, PREVIEW_QUEUE
from shared.store.tables import Item, WorkerHeartbeat, utcnow
from tests.ops.conftest import make_batch, queued_args
from tests.support.workers import LIVE_WORKER
from worker.process.heartbeat import Heartbeat, worker_name
from worker.process.reaper import ReaperParts, reap_if_turn

DEAD = "celery@gone-host:4242"
LIVE = "celery@alive-host:77"


def _items(sessions, batch_id):
    with sessions.begin() as session:
        return session.scalars(select(Item).where(Item.batch_id == batch_id)
                               .order_by(Item.position)).all()


def _beat(sessions, name, age_s, now):
    Heartbeat(sessions, name, interval=1).beat(now - timedelta(seconds=age_s))


def _take_preview(sessions, item_id, worker):
    with sessions.begin() as session:
        assert states.start_preview(session, item_id, 0, worker)


def test_heartbeat_thread_writes_rows(sessions):
    name = worker_name("celery@test-host", 1234)
    assert name == "celery@test-host:1234"
    hb = Heartbeat(sessions, name, interval=0.2, queues="preview", model_name="tiny-random",
                   device="cpu").start()
    try:
        with sessions.begin() as session:
            first = session.get(WorkerHeartbeat, name).last_seen
        time.sleep(0.7)
        with sessions.begin() as session:
            row = session.get(WorkerHeartbeat, name)
            assert row.last_seen > first, "the thread kept beating"
            assert (row.queues, row.model_name, row.device) == ("preview", "tiny-random", "cpu")
    finally:
        hb.stop(remove=True)
    with sessions.begin() as session:
        assert session.get(WorkerHeartbeat, name) is None


def test_reaper_requeues_preview_of_dead_worker_and_resends(sessions, jobs, settings, owner_id,
                                                             rclient):
    batch_id = make_batch(jobs, owner_id, 2)
    lost, kept = _items(sessions, batch_id)
    assert sorted(queued_args(rclient, PREVIEW_QUEUE)[0]) == sorted([[lost.id, 0], [kept.id, 0]])
    rclient.delete(PREVIEW_QUEUE)  # two workers took the message's items
    now = utcnow()
    _beat(sessions, DEAD, age_s=settings.heartbeat_timeout + 30, now=now)
    _beat(sessions, LIVE, age_s=5, now=now)
    _take_preview(sessions, lost.id, DEAD)
    _take_preview(sessions, kept.id, LIVE)

    result = reap(sessions, jobs.sender, jobs.blobs, settings, now)

    assert result.requeued_previews == [lost.id] and not result.failed
    lost_now, kept_now = _items(sessions, batch_id)
    assert lost_now.status == ItemStatus.QUEUED and lost_now.worker is None
    assert lost_now.enqueued_at is not None, "re-sent, so marked as in the queue again"
    assert kept_now.status == ItemStatus.PREVIEWING and kept_now.worker == LIVE
    assert queued_args(rclient, PREVIEW_QUEUE) == [[[lost.id, 0]]]
    # A second pass finds nothing to do and sends nothing twice.
    again = reap(sessions, jobs.sender, jobs.blobs, settings, now)
    assert not again.requeued_previews and again.released == 0
    assert len(queued_args(rclient, PREVIEW_QUEUE)) == 1


def test_reaper_fails_item_after_max_attempts(sessions, jobs, settings, owner_id, rclient):
    batch_id = make_batch(jobs, owner_id, 1)
    (item,) = _items(sessions, batch_id)
    now = utcnow()
    # No heartbeat row at all for this worker: it died before its first beat.
    for attempt in range(1, settings.max_attempts + 1):
        rclient.delete(PREVIEW_QUEUE)
        _take_preview(sessions, item.id, DEAD)
        result = reap(sessions, jobs.sender, jobs.blobs, settings, now)
        if attempt < settings.max_attempts:
            assert result.requeued_previews == [item.id]
            assert queued_args(rclient, PREVIEW_QUEUE) == [[[item.id, 0]]]
    assert result.failed == [item.id]
    (item_now,) = _items(sessions, batch_id)
    assert item_now.status == ItemStatus.FAILED
    assert item_now.error_code == WORKER_LOST
    assert item_now.attempts == settings.max_attempts
    assert rclient.llen(PREVIEW_QUEUE) == 0, "a failed item is not sent again"


def test_reaper_resends_final_of_dead_worker(sessions, jobs, settings, owner_id, rclient):
    batch_id = make_batch(jobs, owner_id, 1)
    (item,) = _items(sessions, batch_id)
    _take_preview(sessions, item.id, LIVE)
    with sessions.begin() as session:
        assert states.complete_preview(session, item.id, 0)
        assert states.request_final(session, item.id)
        assert states.start_final(session, item.id, DEAD)
    now = utcnow()
    _beat(sessions, DEAD, age_s=settings.heartbeat_timeout + 1, now=now)

    result = reap(sessions, jobs.sender, jobs.blobs, settings, now)

    assert result.requeued_finals == [item.id]
    (item_now,) = _items(sessions, batch_id)
    assert item_now.status == ItemStatus.FINALIZING and item_now.worker is None
    assert queued_args(rclient, FINAL_QUEUE) == [[item.id]]


def test_reaper_sends_items_never_sent(sessions, jobs, settings, owner_id, rclient):
    batch_id = make_batch(jobs, owner_id, 3)
    rclient.delete(PREVIEW_QUEUE)
    with sessions.begin() as session:  # as if Redis had been down when the batch was created
        session.execute(update(Item).where(Item.batch_id == batch_id).values(enqueued_at=None))
    result = reap(sessions, jobs.sender, jobs.blobs, settings)
    assert result.released == 3
    assert sorted(p[0] for p in queued_args(rclient, PREVIEW_QUEUE)[0]) == \
        sorted(i.id for i in _items(sessions, batch_id))


def test_reaper_prunes_long_silent_workers(sessions, jobs, settings):
    now = utcnow()
    _beat(sessions, DEAD, age_s=3 * 86400, now=now)
    _beat(sessions, LIVE, age_s=1, now=now)
    assert reap(sessions, jobs.sender, jobs.blobs, settings, now).pruned_workers == 1
    with sessions.begin() as session:
        assert session.scalars(select(WorkerHeartbeat.name).where(
            WorkerHeartbeat.name != LIVE_WORKER)).all() == [LIVE]


def test_one_reaper_per_period(sessions, jobs, settings, rclient):
    assert reap_if_turn(settings, ReaperParts(sessions, jobs.sender, jobs.blobs, rclient)) is not None
    assert reap_if_turn(settings, ReaperParts(sessions, jobs.sender, jobs.blobs, rclient)) is None, "the second waits its turn"
    assert rclient.ttl("anycost:reaper:lock") > 0
