"""Warm re-edits (worker.render.warm): an edit's message carries the state its UPDATE returned,
and a worker that stored the item's preview before renders it with no read first, then takes
and completes it in one transaction. In-process, on SQLite with the tiny-random model; the
messages are the real ones the edit command put in a private Redis."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.exc import OperationalError

from shared.commands.batches import Upload
from shared.platform.queue import PREVIEW_QUEUE
from shared.recipe.parse import parse_recipe
from shared.store.tables import Blob, Item, Latent
from tests.conftest import batches_for
from tests.web.web_api_helpers import queued_messages
from tests.worker.conftest import items_of
from worker.render import counters, pipeline, store
from worker.render.images import decode_rgb

pytestmark = pytest.mark.slow  # in-process renders of real photos

RECIPE = {"output": "crop", "edits": {"smiling": 0.5}, "preview": {"channels": 0.5, "resolution": 32},
          "final": {"channels": 1.0, "resolution": 64}}


def _first_preview(rt, owner, photo: bytes, n: int = 1) -> list[str]:
    """``n`` items of one photo, their first previews stored by ``rt``: warm there."""
    batches = batches_for(rt)
    uploads = [Upload(f"p{i}.png", photo, "image/png") for i in range(n)]
    batch_id = batches.create_batch(owner, uploads, parse_recipe(RECIPE, 64))
    ids = [i.id for i in items_of(rt, batch_id)]
    assert pipeline.run_previews(rt, [(i, 0) for i in ids]).completed == ids
    _drain(rt)
    return ids


def _queue(rt) -> str:
    return rt.sender.dispatcher.queue(PREVIEW_QUEUE)


def _drain(rt) -> None:
    import redis

    redis.Redis.from_url(rt.settings.redis_url).delete(_queue(rt))


def _edit(rt, owner, item_id: str, edits: dict, **kwargs) -> list:
    """Edit the item; the message that edit sent, as the task gets it."""
    batches_for(rt).edit_item(owner, item_id, edits, **kwargs)
    (task, entries), = queued_messages(rt.settings.redis_url, _queue(rt))
    _drain(rt)
    assert task.endswith("render_previews") and len(entries) == 1
    return entries[0]


def _run(rt, entry: list) -> pipeline.Report:
    """What the task does with one message's entry."""
    item_id, version, *state = entry
    return pipeline.run_previews(rt, [(item_id, version)], {item_id: state[0]} if state else None)


def _preview(rt, item_id: str) -> np.ndarray:
    with rt.sessions() as session:
        item = session.get(Item, item_id)
        return decode_rgb(rt.blobs.get(session, item.preview_blob_id)[0])


def _stored(path: str) -> float:
    """The worker's ``anycost_previews_stored_total`` of ``path`` (warm or taken)."""
    (metric,) = counters._get().previews.collect()
    return sum(s.value for s in metric.samples
               if s.name.endswith("_total") and s.labels == {"path": path})


def _no_take(monkeypatch) -> None:
    def take(*_args, **_kwargs):
        raise AssertionError("a warm preview must not be taken before its render")

    monkeypatch.setattr(store, "claim_previews", take)


def test_the_edit_message_carries_the_state_its_update_wrote(runtime, owner, photos):
    (item_id,) = _first_preview(runtime, owner, photos[0])
    entry = _edit(runtime, owner, item_id, {"smiling": -0.8}, raw_preview={"resolution": 64})
    assert entry[:2] == [item_id, 1]
    assert entry[2] == {"edits": {"31_Smiling": -0.8}, "face_edits": None,
                        "preview_cost": {"channels": 0.5, "resolution": 64}}


def test_a_warm_re_edit_is_rendered_without_a_take_and_equals_the_cold_one(
        runtime, owner, photos, monkeypatch):
    warm_id, cold_id = _first_preview(runtime, owner, photos[0], n=2)
    runtime.warm_items.forget(cold_id)
    cold_entry = _edit(runtime, owner, cold_id, {"smiling": -0.8, "young": 0.5})
    assert _run(runtime, cold_entry).completed == [cold_id]  # taken: not warm here

    warm_entry = _edit(runtime, owner, warm_id, {"smiling": -0.8, "young": 0.5})
    warm_before, taken_before = _stored("warm"), _stored("taken")
    with monkeypatch.context() as patch:
        _no_take(patch)
        report = _run(runtime, warm_entry)
    assert report.completed == [warm_id] and not report.failed
    assert (_stored("warm"), _stored("taken")) == (warm_before + 1, taken_before)
    warm, cold = items_of(runtime, _batch_of(runtime, warm_id))
    assert warm.status == "preview_ready" and warm.edit_version == 1 and warm.worker is None
    assert warm.attempts == 0 and warm.faces == cold.faces
    assert np.array_equal(_preview(runtime, warm_id), _preview(runtime, cold_id))  # bit-exact


def _batch_of(rt, item_id: str) -> str:
    with rt.sessions() as session:
        return session.get(Item, item_id).batch_id


def test_a_warm_face_edit_renders_the_overrides(runtime, owner, photos, monkeypatch):
    (item_id,) = _first_preview(runtime, owner, photos[0])
    before = _preview(runtime, item_id)
    entry = _edit(runtime, owner, item_id, {"smiling": -1.0}, face=0)
    assert entry[2]["face_edits"] == {"0": {"31_Smiling": -1.0}} and entry[2]["edits"] is None
    _no_take(monkeypatch)
    assert _run(runtime, entry).completed == [item_id]
    assert not np.array_equal(_preview(runtime, item_id), before)


def test_a_warm_preview_of_an_edit_already_superseded_is_dropped(runtime, owner, photos):
    (item_id,) = _first_preview(runtime, owner, photos[0])
    late = _edit(runtime, owner, item_id, {"smiling": -0.8})
    newest = _edit(runtime, owner, item_id, {"smiling": 0.9})
    with runtime.sessions() as session:
        blobs = session.scalar(select(func.count()).select_from(Blob))
    assert _run(runtime, late).skipped == [item_id]
    with runtime.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Blob)) == blobs  # nothing kept
        assert session.get(Item, item_id).status == "previewing"
    assert _run(runtime, newest).completed == [item_id]


def test_a_warm_preview_loses_to_a_worker_holding_the_item(runtime, owner, photos):
    (item_id,) = _first_preview(runtime, owner, photos[0])
    entry = _edit(runtime, owner, item_id, {"smiling": -0.8})
    with runtime.sessions.begin() as session:  # a duplicate of the message, taken elsewhere
        session.execute(update(Item).where(Item.id == item_id).values(worker="other:1"))
    assert _run(runtime, entry).skipped == [item_id]
    with runtime.sessions() as session:
        item = session.get(Item, item_id)
        assert (item.status, item.worker) == ("previewing", "other:1")


def _other_model(latent: Latent) -> None:
    latent.model_name = "another-model"


def _other_code(latent: Latent) -> None:  # a duplicate delivery elsewhere stored its own last
    data = bytearray(latent.data)
    data[:4] = np.float32(0.25).tobytes()
    latent.data = bytes(data)


@pytest.mark.parametrize("change", [_other_model, _other_code])
def test_an_item_unlike_the_warm_entry_is_rendered_cold(runtime, owner, photos, change):
    (item_id,) = _first_preview(runtime, owner, photos[0])
    entry = _edit(runtime, owner, item_id, {"smiling": -0.8})
    with runtime.sessions.begin() as session:
        change(session.get(Latent, item_id))
    warm_before, taken_before = _stored("warm"), _stored("taken")
    report = _run(runtime, entry)
    # Not stored warm: rendered again after a take, from the stored latent (or, made by
    # another model, a new encoding).
    assert report.completed == [item_id]
    assert (_stored("warm"), _stored("taken")) == (warm_before, taken_before + 1)
    with runtime.sessions() as session:
        item = session.get(Item, item_id)
        assert item.status == "preview_ready" and item.attempts == 1
        assert session.get(Latent, item_id).model_name == "tiny-random"


@pytest.mark.parametrize("state", [
    {"edits": {"user:mine": 0.5}, "face_edits": None,  # a saved direction: read by the take
     "preview_cost": {"channels": 0.5, "resolution": 32}},
    {"edits": "smile please", "face_edits": None, "preview_cost": {"channels": 0.5}},
    ["not", "a", "map"],
])
def test_states_the_warm_path_does_not_render_are_taken_cold(runtime, owner, photos, state):
    (item_id,) = _first_preview(runtime, owner, photos[0])
    entry = _edit(runtime, owner, item_id, {"smiling": -0.8})
    report = _run(runtime, [entry[0], entry[1], state])
    # The take reads the item's own state (smiling -0.8): rendered, charged like any take alone.
    assert report.completed == [item_id]
    with runtime.sessions() as session:
        assert session.get(Item, item_id).attempts == 1


def test_an_item_not_warm_here_is_taken(runtime, owner, photos):
    (item_id,) = _first_preview(runtime, owner, photos[0])
    runtime.warm_items.forget(item_id)  # another worker process stored its preview
    entry = _edit(runtime, owner, item_id, {"smiling": -0.8})
    assert _run(runtime, entry).completed == [item_id]
    with runtime.sessions() as session:
        assert session.get(Item, item_id).attempts == 1


def test_a_warm_pass_that_dies_leaves_its_item_to_be_sent_again(runtime, owner, photos,
                                                                monkeypatch):
    (item_id,) = _first_preview(runtime, owner, photos[0])
    entry = _edit(runtime, owner, item_id, {"smiling": -0.8})

    def database_gone(*_args, **_kwargs):  # what the store raises once its retries run out
        raise OperationalError("UPDATE items", {}, Exception("server closed the connection"))

    monkeypatch.setattr(store, "complete_preview", database_gone)
    with pytest.raises(OperationalError):
        _run(runtime, entry)
    with runtime.sessions() as session:
        item = session.get(Item, item_id)
    # Never taken, so not released; unsent, so the reconciler sends it again at once.
    assert (item.status, item.worker, item.enqueued_at) == ("previewing", None, None)


def test_a_warm_pass_gathers_other_users_waiting_previews(runtime, owner, photos):
    """With micro-batching on (worker.render.gather), a warm re-edit's pass takes other users'
    waiting previews of the same cost too: each gets the image it gets alone, the warm one
    stored by its take-and-complete, the gathered one by its take."""
    import dataclasses

    from shared.store.tables import User

    with runtime.sessions.begin() as session:
        other = User(username="other")
        session.add(other)
        session.flush()
        other_id = other.id
    (mine,) = _first_preview(runtime, owner, photos[0])
    (theirs,) = _first_preview(runtime, other_id, photos[1])
    alone = {}
    for user, item_id, edits in ((owner, mine, {"smiling": 0.7}), (other_id, theirs, {"young": -0.6})):
        assert _run(runtime, _edit(runtime, user, item_id, edits)).completed == [item_id]
        alone[item_id] = _preview(runtime, item_id)

    runtime.settings = dataclasses.replace(runtime.settings, render_gather="on",
                                           render_gather_ms=0.0)
    _edit(runtime, other_id, theirs, {"young": -0.6})  # waiting: sent, nobody holds it
    entry = _edit(runtime, owner, mine, {"smiling": 0.7})
    warm_before, taken_before = _stored("warm"), _stored("taken")
    report = _run(runtime, entry)
    assert sorted(report.completed) == sorted([mine, theirs]) and not report.failed
    assert (_stored("warm"), _stored("taken")) == (warm_before + 1, taken_before + 1)
    for item_id in (mine, theirs):
        assert np.array_equal(_preview(runtime, item_id), alone[item_id])
    with runtime.sessions() as session:
        assert {session.get(Item, i).status for i in (mine, theirs)} == {"preview_ready"}
        assert session.get(Item, theirs).worker is None
