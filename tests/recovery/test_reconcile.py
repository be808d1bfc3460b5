"""The reconciler and the reaper against a real database (SQLite and PostgreSQL) and a real
Redis: each way a message went missing in the issue is sent again, and only then."""

from __future__ import annotations

import dataclasses
import os
import signal
import time
from datetime import timedelta

from sqlalchemy import select

from shared.items import states
from shared.items.recovery import reap, reconcile
from shared.items.states import ItemStatus
from shared.platform.queue import FINAL_QUEUE, PREVIEW_QUEUE
from shared.store.tables import Item, WorkerHeartbeat, utcnow
from tests.recovery.conftest import add_user, make_batch, make_jobs, queued_ids
from tests.support.redis_server import RedisServer, free_port
from worker.process.heartbeat import Heartbeat
from worker.process.reaper import Trust

LIVE = "celery@alive-host:77"


def _items(sessions, batch_id):
    with sessions() as session:
        return session.scalars(select(Item).where(Item.batch_id == batch_id)
                               .order_by(Item.position)).all()


def _to_preview_ready(sessions, item_id, worker=LIVE):
    with sessions.begin() as session:
        assert states.start_preview(session, item_id, 0, worker)
        assert states.complete_preview(session, item_id, 0)


def test_messages_wiped_from_redis_are_sent_again_after_the_visibility_timeout(
        sessions, jobs, settings, owner_id, rclient):
    batch_id = make_batch(jobs, owner_id, 3)
    first = _items(sessions, batch_id)[0].id
    _to_preview_ready(sessions, first)
    jobs.finalize_item(owner_id, first)
    assert queued_ids(rclient, FINAL_QUEUE) == [first]
    rclient.flushall()  # Redis lost its data: two queued previews and a final are gone

    now = utcnow()
    early = reconcile(sessions, jobs.sender, settings, now)
    assert early.sent == 0 and rclient.llen(PREVIEW_QUEUE) == 0, "not before the timeout"

    later = now + timedelta(seconds=settings.message_visibility + 1)
    result = reconcile(sessions, jobs.sender, settings, later)
    assert (result.presumed_lost, result.previews, result.finals) == (3, 2, 1)
    queued = [i.id for i in _items(sessions, batch_id) if i.status == "queued"]
    assert sorted(queued_ids(rclient, PREVIEW_QUEUE)) == sorted(queued)
    assert queued_ids(rclient, FINAL_QUEUE) == [first]
    assert reconcile(sessions, jobs.sender, settings, later).sent == 0, "sent once per timeout"


def test_an_item_a_live_worker_holds_too_long_is_taken_back(sessions, jobs, settings, owner_id,
                                                            rclient):
    """A task acked without writing its items' state (database away) leaves them held by a
    worker that is alive: the reaper takes them back once no task can still be running."""
    batch_id = make_batch(jobs, owner_id, 1)
    (item,) = _items(sessions, batch_id)
    rclient.flushall()
    with sessions.begin() as session:
        assert states.start_preview(session, item.id, 0, LIVE)
    later = utcnow() + timedelta(seconds=settings.message_visibility + 5)
    Heartbeat(sessions, LIVE, interval=1).beat(later)  # the worker is alive at that time
    assert reap(sessions, jobs.sender, jobs.blobs, settings, utcnow()).requeued_previews == []  # not yet
    result = reap(sessions, jobs.sender, jobs.blobs, settings, later)
    assert result.requeued_previews == [item.id] and result.released == 1
    assert queued_ids(rclient, PREVIEW_QUEUE) == [item.id]


def test_heartbeats_are_not_trusted_right_after_a_database_outage(sessions, jobs, settings,
                                                                  owner_id, rclient):
    batch_id = make_batch(jobs, owner_id, 1)
    (item,) = _items(sessions, batch_id)
    with sessions.begin() as session:
        assert states.start_preview(session, item.id, 0, LIVE)
    # LIVE could not beat during the outage: its row is stale, yet it is alive.
    stale = utcnow() - timedelta(seconds=settings.heartbeat_timeout + 5)
    Heartbeat(sessions, LIVE, interval=1).beat(stale)
    trust = Trust(dataclasses.replace(settings, heartbeat_timeout=1))
    assert trust.heartbeats
    trust.failed()
    assert not trust.heartbeats
    trust.ok()
    assert not trust.heartbeats, "the database has only just come back"
    assert reap(sessions, jobs.sender, jobs.blobs, settings, trust_heartbeats=trust.heartbeats).requeued_previews == []
    assert _items(sessions, batch_id)[0].worker == LIVE
    time.sleep(1.1)
    assert trust.heartbeats
    assert reap(sessions, jobs.sender, jobs.blobs, settings).requeued_previews == [item.id]


def test_finalize_and_edit_while_redis_is_down_are_sent_by_the_reconciler(
        sessions, jobs, settings, owner_id, rclient):
    batch_id = make_batch(jobs, owner_id, 2)
    edited, finalized = (i.id for i in _items(sessions, batch_id))
    for item_id in (edited, finalized):
        _to_preview_ready(sessions, item_id)
    rclient.flushall()
    down = dataclasses.replace(settings, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    offline = make_jobs(down, sessions)
    started = time.monotonic()
    assert offline.edit_item(owner_id, edited, {"smiling": 0.5}) == 1
    offline.finalize_item(owner_id, finalized)
    assert time.monotonic() - started < 2
    rows = {i.id: i for i in _items(sessions, batch_id)}
    assert (rows[edited].status, rows[edited].worker, rows[edited].enqueued_at) == \
        ("previewing", None, None)
    assert (rows[finalized].status, rows[finalized].worker, rows[finalized].enqueued_at) == \
        ("finalizing", None, None)

    result = reconcile(sessions, jobs.sender, settings)
    assert (result.edits, result.finals) == (1, 1)
    assert queued_ids(rclient, PREVIEW_QUEUE) == [edited]
    assert queued_ids(rclient, FINAL_QUEUE) == [finalized]


def test_an_upload_during_a_hung_redis_answers_quickly_and_is_sent_later(
        sessions, settings, owner_id):
    with RedisServer() as server:
        hung = dataclasses.replace(settings, redis_url=server.url(0))
        jobs = make_jobs(hung, sessions)
        os.kill(server.proc.pid, signal.SIGSTOP)
        try:
            started = time.monotonic()
            first = make_batch(jobs, owner_id, 2)
            second = make_batch(jobs, owner_id, 2)  # the breaker: no second wait
            took = time.monotonic() - started
        finally:
            os.kill(server.proc.pid, signal.SIGCONT)
        assert took < 2.0, f"two uploads took {took:.1f}s on a hung Redis"
        rows = _items(sessions, first) + _items(sessions, second)
        assert {(i.status, i.enqueued_at) for i in rows} == {("queued", None)}
        jobs.sender.dispatcher._down_until = 0  # the breaker would let it through in 5 s
        assert reconcile(sessions, jobs.sender, hung).previews == 4


def test_one_users_batches_share_one_cap(sessions, jobs, settings, owner_id, rclient):
    """10 batches of one user do not make another user wait behind all of them."""
    for _ in range(3):
        make_batch(jobs, owner_id, 4)
    assert len(queued_ids(rclient, PREVIEW_QUEUE)) == settings.batch_queue_cap
    other = add_user(sessions, "someone-else")
    theirs = make_batch(jobs, other, 2)
    queue = queued_ids(rclient, PREVIEW_QUEUE)
    assert len(queue) == settings.batch_queue_cap + 2
    assert queue[-2:] == [i.id for i in _items(sessions, theirs)]
    assert reconcile(sessions, jobs.sender, settings).previews == 0, "the cap still holds"


def test_the_attempt_cap_counts_every_take(sessions, jobs, settings, owner_id):
    batch_id = make_batch(jobs, owner_id, 1)
    (item,) = _items(sessions, batch_id)
    cap = settings.max_attempts
    with sessions.begin() as session:
        for n in range(cap):  # Celery redelivers to a new pool child each time one dies
            assert states.start_preview(session, item.id, 0, f"celery@h:{n}", cap)
        assert not states.start_preview(session, item.id, 0, "celery@h:99", cap)
        assert states.fail_exhausted(session, item.id, ItemStatus.PREVIEWING, cap, 0)
    (item,) = _items(sessions, batch_id)
    assert (item.status, item.error_code, item.attempts) == ("failed", "worker_lost", cap)


def test_a_refused_edit_changes_nothing(sessions, jobs, owner_id):
    import pytest

    from shared.commands.errors import CommandError

    batch_id = make_batch(jobs, owner_id, 1)
    (item,) = _items(sessions, batch_id)
    _to_preview_ready(sessions, item.id)
    jobs.finalize_item(owner_id, item.id)
    with pytest.raises(CommandError) as refused:
        jobs.edit_item(owner_id, item.id, {"smiling": 1.0}, {"channels": 1.0, "resolution": 128})
    assert refused.value.status == 409
    (after,) = _items(sessions, batch_id)
    assert (after.preview_cost, after.edits, after.edit_version) == \
        (item.preview_cost, item.edits, item.edit_version)


def test_prunes_nothing_it_should_not(sessions, jobs, settings):
    Heartbeat(sessions, LIVE, interval=1).beat()
    assert reap(sessions, jobs.sender, jobs.blobs, settings).pruned_workers == 0
    with sessions() as session:
        assert session.get(WorkerHeartbeat, LIVE) is not None
