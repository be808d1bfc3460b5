"""Per-model queues: a batch of a second config is sent to that config's queues (preview@CONFIG,
final@CONFIG), by the upload and by the reconciler after Redis lost its messages; the default
config keeps the plain names. A worker that gets another model's item fails it, not renders it."""

from __future__ import annotations

from datetime import timedelta

import redis

from shared.commands.synthesis import create_synthesis_batch, parse_request
from shared.items.recovery import reconcile
from shared.items.states import ItemStatus
from shared.platform.queue import queue_for
from shared.store.tables import Item, utcnow
from tests.conftest import batches_for
from tests.synthesis.conftest import queued
from worker.process.heartbeat import Heartbeat
from worker.process.tasks import preview_entries
from worker.render import pipeline

CAR = "anycost-car-config-f"


def _owner(rt) -> int:
    from shared.store.tables import User

    with rt.sessions.begin() as session:
        user = User(username="queues")
        session.add(user)
        session.flush()
        return user.id


def _batch(rt, owner: int, body: dict) -> str:
    with rt.sessions() as session:
        request = parse_request(body, rt.settings, session, owner)
    return create_synthesis_batch(batches_for(rt), owner, request)


def test_each_models_items_go_to_its_own_queues(worker, synth_redis):
    Heartbeat(worker.sessions, "car-worker:1", interval=60, model_name=CAR).beat()
    owner = _owner(worker)
    car = _batch(worker, owner, {"synthesis": {"seeds": [1, 2]}, "model": CAR})
    tiny = _batch(worker, owner, {"synthesis": {"seeds": [3]}})
    car_queue = queue_for("preview", CAR, worker.settings.model)
    assert car_queue == f"preview@{CAR}"
    with worker.sessions() as session:
        car_ids = {i.id for i in session.query(Item).filter(Item.batch_id == car)}
        tiny_ids = {i.id for i in session.query(Item).filter(Item.batch_id == tiny)}
    assert {i for group in queued(synth_redis, car_queue) for i, _ in group} == car_ids
    assert {i for group in queued(synth_redis, "preview") for i, _ in group} == tiny_ids

    # Redis loses everything: the reconciler sends each item to its model's queue again.
    redis.Redis.from_url(synth_redis).flushdb()
    later = utcnow() + timedelta(seconds=worker.settings.message_visibility + 5)
    done = reconcile(worker.sessions, worker.sender, worker.settings, now=later)
    assert done.presumed_lost == 3
    assert {i for group in queued(synth_redis, car_queue) for i, _ in group} == car_ids
    assert {i for group in queued(synth_redis, "preview") for i, _ in group} == tiny_ids

    # A car item delivered to the tiny-random worker by mistake fails with model_mismatch.
    item_id = sorted(car_ids)[0]
    report = pipeline.run_previews(worker, [(item_id, 0)])
    assert report.failed == {item_id: "model_mismatch"}
    with worker.sessions() as session:
        assert session.get(Item, item_id).status == ItemStatus.FAILED.value


def test_finals_of_a_model_go_to_its_final_queue(worker, synth_redis):
    owner = _owner(worker)
    batch_id = _batch(worker, owner, {"synthesis": {"seeds": [4]}})
    for pairs in queued(synth_redis, "preview"):
        pipeline.run_previews(worker, *preview_entries(pairs))
    assert batches_for(worker).finalize_batch(owner, batch_id) == 1
    assert len(queued(synth_redis, "final")) == 1
    assert queued(synth_redis, f"final@{CAR}") == []


def test_a_model_without_boundaries_takes_only_directions(worker, synth_redis):
    from shared.commands.errors import CommandError
    from shared.commands.synthesis import SynthesisError

    Heartbeat(worker.sessions, "car-worker:2", interval=60, model_name=CAR).beat()
    owner = _owner(worker)
    try:
        _batch(worker, owner, {"synthesis": {"seeds": [1]}, "model": CAR,
                               "recipe": {"edits": {"smiling": 0.5}}})
        raise AssertionError("a car batch with a face attribute was accepted")
    except SynthesisError as exc:
        assert exc.field == "edits.31_Smiling"
    car = _batch(worker, owner, {"synthesis": {"seeds": [1]}, "model": CAR})
    with worker.sessions() as session:
        item_id = session.query(Item.id).filter(Item.batch_id == car).scalar()
    try:
        batches_for(worker).edit_item(owner, item_id, {"smiling": 0.5})
        raise AssertionError("a face attribute edit of a car item was accepted")
    except CommandError as exc:
        assert exc.status == 400 and "boundaries" in exc.message
