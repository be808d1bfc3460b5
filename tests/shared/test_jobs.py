"""Batch operations against a real database and a real Redis: commit first, then send; a big
batch holds at most ``batch_queue_cap`` items in the queue; a broker outage loses nothing."""

import base64
import json
from datetime import datetime

import pytest
import redis
from sqlalchemy import select

from shared.commands.batches import Batches, Upload
from shared.commands.errors import CommandError
from shared.items import states
from shared.platform.queue import PREVIEW_TASK, Dispatcher
from shared.platform.settings import Settings
from shared.recipe.parse import parse_recipe
from shared.store.blobs import DatabaseBlobStore, FilesystemBlobStore
from shared.store.db import make_engine, make_session_factory
from shared.store.tables import Item, User, WorkerHeartbeat
from tests.support.workers import register_live_worker


def queued_messages(redis_url: str, queue: str = "preview") -> list[tuple[str, list]]:
    """(task name, item group) of the kombu messages waiting in a Redis list."""
    client = redis.Redis.from_url(redis_url)
    out = []
    for raw in client.lrange(queue, 0, -1):
        message = json.loads(raw)
        body = json.loads(base64.b64decode(message["body"]))
        out.append((message["headers"]["task"], body[0][0]))  # args = [group]
    client.close()
    return out


@pytest.fixture
def env(migrated, redis_url):
    settings = Settings(database_url=migrated, redis_url=redis_url, model="tiny-random",
                        batch_queue_cap=5, render_batch_size=2)
    engine = make_engine(migrated)
    sessions = make_session_factory(engine)
    with sessions.begin() as s:
        user = User(username="grace")
        s.add(user)
        s.flush()
        uid = user.id
    jobs = Batches(settings, sessions, DatabaseBlobStore(), Dispatcher(settings))
    register_live_worker(sessions, settings.model)  # uploads need one
    yield jobs, uid
    engine.dispose()


def uploads(n):
    return [Upload(f"p{i}.png", b"\x89PNG fake %d" % i, "image/png") for i in range(n)]


def test_big_batch_is_released_gradually(env, redis_url):
    jobs, uid = env
    jobs.create_batch(uid, uploads(12), parse_recipe({}, 64))
    messages = queued_messages(redis_url)
    sent = [item for _, args in messages for item in args]
    assert {name for name, _ in messages} == {PREVIEW_TASK}
    assert len(sent) == 5 and len(messages) == 3  # cap 5, groups of 2
    # Two items finish: two more are released, never one twice.
    with jobs.sessions.begin() as s:
        for item_id, version in sent[:2]:
            assert states.start_preview(s, item_id, version, "w")
            assert states.complete_preview(s, item_id, version)
    assert jobs.sender.release_user(uid) == 2
    assert jobs.sender.release_user(uid) == 0
    again = [i for _, args in queued_messages(redis_url) for i, _ in args]
    assert len(again) == 7 and len(set(again)) == 7


def test_broker_down_keeps_the_work(env):
    jobs, uid = env
    jobs.sender.dispatcher = Dispatcher(Settings(redis_url="redis://127.0.0.1:1/0"))
    batch_id = jobs.create_batch(uid, uploads(3), parse_recipe({}, 64))
    with jobs.sessions() as s:
        items = s.scalars(select(Item).where(Item.batch_id == batch_id)).all()
        assert [i.status for i in items] == ["queued"] * 3
        assert all(i.enqueued_at is None for i in items)  # to be sent again later


def test_owner_checks_and_state_errors(env):
    jobs, uid = env
    batch_id = jobs.create_batch(uid, uploads(1), parse_recipe({}, 64))
    with jobs.sessions() as s, pytest.raises(CommandError) as err:
        jobs.get_batch(s, uid + 1, batch_id)
    assert err.value.status == 404
    with jobs.sessions() as s:
        item_id = jobs.get_batch(s, uid, batch_id).items[0].id
    with pytest.raises(CommandError) as err:
        jobs.finalize_item(uid, item_id)  # still queued
    assert err.value.status == 409
    with pytest.raises(CommandError):
        jobs.create_batch(uid, [], parse_recipe({}, 64))


@pytest.mark.parametrize("store", ["database", "filesystem"])
def test_blob_stores_round_trip(env, tmp_path, store):
    jobs, _ = env
    blobs = DatabaseBlobStore() if store == "database" else FilesystemBlobStore(tmp_path)
    with jobs.sessions.begin() as s:
        blob_id = blobs.put(s, b"bytes", "image/png").id
    with jobs.sessions() as s:
        assert blobs.get(s, blob_id) == (b"bytes", "image/png")


def test_groups_are_spread_over_live_workers(env, redis_url):
    jobs, uid = env
    # The commands and their sender (which decides the groups) read the same settings.
    jobs.settings = jobs.sender.settings = Settings(
        database_url=jobs.settings.database_url, redis_url=redis_url, model="tiny-random",
        batch_queue_cap=100, render_batch_size=8)
    with jobs.sessions.begin() as s:
        s.query(WorkerHeartbeat).delete()  # exactly these workers: two live, one dead
        for name in ("w1@a:1", "w2@b:1"):
            s.add(WorkerHeartbeat(name=name, queues="preview,final", model_name="tiny-random",
                                  pretrained=False, device="cpu"))
        s.add(WorkerHeartbeat(name="dead@c:1", queues="preview,final", model_name="tiny-random",
                              pretrained=False, device="cpu", last_seen=datetime(2000, 1, 1)))
    jobs.create_batch(uid, uploads(8), parse_recipe({}, 64))
    # Two live workers, two messages each: groups of 2, not one group of 8 for one worker.
    assert [len(group) for _, group in queued_messages(redis_url)] == [2, 2, 2, 2]
    assert jobs.sender.group_size(100, "preview") == 8  # never above render_batch_size
