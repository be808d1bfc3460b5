"""Worker-side recovery in-process (real database, real tiny-random models): a task that dies
gives its items back, or leaves its message unacked when it cannot; degenerate photos fail
``no_face``; database writes are retried through a blip."""

from __future__ import annotations

import dataclasses
import io
import time

import numpy as np
import pytest
from celery.exceptions import Reject
from PIL import Image
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from shared.commands.batches import Upload
from shared.items import states
from shared.recipe.parse import Cost, Recipe
from shared.store.db import make_engine, make_session_factory, retry_transient
from shared.store.tables import Item
from tests.conftest import batches_for, pipeline_runtime, private_redis
from tests.support.redis_server import free_port
from worker.process import tasks
from worker.render import pipeline

pytestmark = pytest.mark.slow  # loads the tiny-random models (about 15 s on a busy CPU)

RECIPE = Recipe(edits={}, preview=Cost(0.5, 32), final=Cost(1.0, 64), output="crop")


@pytest.fixture
def runtime(database_url, tiny_bundle, tiny_weights_dir):
    with private_redis("recovery") as redis_url:
        with pipeline_runtime(database_url, redis_url, tiny_bundle, tiny_weights_dir,
                              "celery@recovery-test:1") as rt:
            yield rt


def _png(size: tuple[int, int]) -> bytes:
    out = io.BytesIO()
    Image.fromarray(np.full((size[1], size[0], 3), 128, np.uint8)).save(out, "PNG")
    return out.getvalue()


def _batch(rt, owner, datas: list[bytes]) -> list[str]:
    batch_id = batches_for(rt).create_batch(owner, [Upload(f"{i}.png", d, "image/png")
                                            for i, d in enumerate(datas)], RECIPE)
    with rt.sessions() as session:
        return list(session.scalars(select(Item.id).where(Item.batch_id == batch_id)
                                    .order_by(Item.position)))


def _item(rt, item_id):
    with rt.sessions() as session:
        return session.get(Item, item_id)


def test_tiny_and_degenerate_photos_fail_no_face(runtime, owner):
    ids = _batch(runtime, owner, [_png((1, 1)), _png((16, 16)), _png((1, 300)), _png((40, 900))])
    report = pipeline.run_previews(runtime, [(i, 0) for i in ids])
    assert report.failed == {i: "no_face" for i in ids}
    assert {_item(runtime, i).error_code for i in ids} == {"no_face"}


def test_a_group_taken_again_renders_one_item_and_sends_the_others_singly(runtime, owner):
    import redis

    from tests.recovery.conftest import queued_ids
    from tests.support.stack import real_photos

    photo = real_photos()[0][1]
    ids = _batch(runtime, owner, [photo, photo])
    client = redis.Redis.from_url(runtime.settings.redis_url)
    client.flushdb()
    with runtime.sessions.begin() as session:  # a pool process took the group, then died
        for item_id in ids:
            assert states.start_preview(session, item_id, 0, "celery@h:1")
    report = pipeline.run_previews(runtime, [(i, 0) for i in ids])
    assert report.completed == [ids[0]] and report.skipped == [ids[1]]
    second = _item(runtime, ids[1])
    assert (second.status, second.worker, second.attempts) == ("queued", None, 2)
    assert second.enqueued_at is not None and queued_ids(client, "preview") == [ids[1]]
    client.close()


def test_a_task_that_dies_gives_its_items_back(runtime, owner):
    (item_id,) = _batch(runtime, owner, [_png((64, 64))])
    with runtime.sessions.begin() as session:
        assert states.start_preview(session, item_id, 0, runtime.worker_name)

    def dies():
        raise OperationalError("UPDATE items ...", {}, Exception("server closed the connection"))

    with pytest.raises(OperationalError):
        tasks._run(runtime, dies, [item_id])
    item = _item(runtime, item_id)
    assert (item.status, item.worker, item.enqueued_at) == ("queued", None, None)


def test_a_task_that_cannot_give_its_items_back_is_not_acked(runtime, owner):
    (item_id,) = _batch(runtime, owner, [_png((64, 64))])
    dead_db = make_session_factory(make_engine(
        f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/none",
        connect_args={"connect_timeout": 1}))
    offline = dataclasses.replace(
        runtime, sessions=dead_db,
        settings=dataclasses.replace(runtime.settings, db_retry_seconds=0.5))

    def dies():
        raise OperationalError("SELECT 1", {}, Exception("connection refused"))

    with pytest.raises(Reject) as rejected:
        tasks._run(offline, dies, [item_id])
    assert rejected.value.requeue, "the message goes back to the queue"


def test_a_database_blip_is_retried():
    calls = []

    def flaky():
        calls.append(time.monotonic())
        if len(calls) < 3:
            raise OperationalError("SELECT 1", {}, Exception("connection refused"))
        return "written"

    assert retry_transient(flaky, 10) == "written" and len(calls) == 3
    with pytest.raises(ValueError):  # not a database outage: raised at once
        retry_transient(_bug, 10)
    assert len(calls) == 3


def _bug():
    raise ValueError("a bug")
