"""Micro-batching across messages (worker.render.gather), in-process on SQLite with the tiny
model: other users' waiting previews and finals join a pass, each item gets its own image and
state, a poisoned item fails alone, turns go round the users, held items are left alone."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from shared.commands.batches import Upload
from shared.items import states
from shared.recipe.parse import parse_recipe
from shared.store.tables import Item, Latent, User
from tests.conftest import batches_for
from tests.worker.conftest import items_of
from tests.worker.test_pipeline import RECIPE, _image
from worker.render import gather, pipeline


def _gathering(rt, mode: str = "on", batch: int = 4, finals: int = 4) -> None:
    rt.settings = dataclasses.replace(rt.settings, render_gather=mode, render_batch_size=batch,
                                      final_batch_size=finals, render_gather_ms=0.0)


def _user(rt, name: str) -> int:
    with rt.sessions.begin() as session:
        user = User(username=name)
        session.add(user)
        session.flush()
        return user.id


def _item_with_latent(rt, owner: int, photo: bytes, recipe: dict = RECIPE) -> str:
    """One photo's batch, previewed without gathering: the item has its latent."""
    batch_id = batches_for(rt).create_batch(owner, [Upload("p.png", photo, "image/png")],
                                            parse_recipe(recipe, 64))
    (item,) = items_of(rt, batch_id)
    assert pipeline.run_previews(rt, [(item.id, 0)]).completed == [item.id]
    return item.id


def _edit(rt, owner: int, item_id: str, edits: dict) -> int:
    return batches_for(rt).edit_item(owner, item_id, edits)


def _item(rt, item_id: str) -> Item:
    with rt.sessions() as session:
        return session.get(Item, item_id)


def _preview(rt, item_id: str) -> np.ndarray:
    return _image(rt, _item(rt, item_id).preview_blob_id)


@pytest.fixture
def two(runtime, owner, photos):
    """Two users' items with latents: (owner, item) of each."""
    other = _user(runtime, "other")
    return (owner, _item_with_latent(runtime, owner, photos[0])), \
        (other, _item_with_latent(runtime, other, photos[1]))


EDITS_A, EDITS_B = {"smiling": 0.7}, {"young": -0.6}


def test_two_users_share_one_pass_and_each_gets_its_own_image(runtime, two):
    (ua, a), (ub, b) = two
    _gathering(runtime, "off")
    alone = {}
    for user, item, edits in ((ua, a, EDITS_A), (ub, b, EDITS_B)):
        version = _edit(runtime, user, item, edits)
        assert pipeline.run_previews(runtime, [(item, version)]).completed == [item]
        alone[item] = _preview(runtime, item)
    # The same two edits in one message, ungathered: a pass of two.
    pairs = [(a, _edit(runtime, ua, a, EDITS_A)), (b, _edit(runtime, ub, b, EDITS_B))]
    assert sorted(pipeline.run_previews(runtime, pairs).completed) == sorted([a, b])
    one_message = {a: _preview(runtime, a), b: _preview(runtime, b)}

    _gathering(runtime, "on")
    va, vb = _edit(runtime, ua, a, EDITS_A), _edit(runtime, ub, b, EDITS_B)
    report = pipeline.run_previews(runtime, [(a, va)])  # b's message is still on its way
    assert sorted(report.completed) == sorted([a, b]) and not report.failed
    # a's own message took it alone (charged, shared.items.states), then gathered b into the
    # pass: a group now, whose takes are not charged, so a's charge is given back.
    for item, version, attempts in ((a, va, 0), (b, vb, 0)):
        row = _item(runtime, item)
        assert (row.status, row.edit_version, row.worker, row.attempts) == \
            ("preview_ready", version, None, attempts)
        gathered = _preview(runtime, item)
        # Bit-exact against the same pass composition without gathering ...
        assert np.array_equal(gathered, one_message[item])
        # ... and against the item alone up to oneDNN's batch-dependent last bits (a batch of
        # one takes another conv path): at most one grey level, on a few pixels.
        diff = np.abs(gathered.astype(int) - alone[item].astype(int))
        assert diff.max() <= 1 and (diff > 0).mean() < 0.01
    # Not each other's picture: the two users' own images differ by more than that tolerance.
    assert np.abs(alone[a].astype(int) - alone[b].astype(int)).max() > 1
    # b's own message arrives afterwards: one effect, nothing rendered again.
    late = pipeline.run_previews(runtime, [(b, vb)])
    assert late.completed == [] and late.skipped == [b]
    assert _item(runtime, b).attempts == 0  # the late message takes nothing, charges nothing


def test_a_poisoned_gathered_item_fails_alone(runtime, two):
    (ua, a), (ub, b) = two
    _gathering(runtime, "on")
    va, vb = _edit(runtime, ua, a, EDITS_A), _edit(runtime, ub, b, EDITS_B)
    with runtime.sessions.begin() as session:  # a damaged latent row: its render fails
        latent = session.get(Latent, b)
        latent.data, latent.shape = latent.data[:2048], [1, 1, 512]
    report = pipeline.run_previews(runtime, [(a, va)])
    assert report.completed == [a] and report.failed == {b: "internal_error"}
    assert _item(runtime, a).status == "preview_ready"
    assert (_item(runtime, b).status, _item(runtime, b).edit_version) == ("failed", vb)


def test_turns_go_round_the_users_oldest_first(runtime, owner, photos):
    other = _user(runtime, "other")
    mine = [_item_with_latent(runtime, owner, photos[0]) for _ in range(3)]
    theirs = _item_with_latent(runtime, other, photos[1])
    _gathering(runtime, "on", batch=3)
    versions = {i: _edit(runtime, owner, i, EDITS_A) for i in mine}  # sent first
    versions[theirs] = _edit(runtime, other, theirs, EDITS_B)  # sent last
    report = pipeline.run_previews(runtime, [(mine[0], versions[mine[0]])])
    # owner already has a turn in the pass: the other user's edit goes in before owner's
    # second, then owner's oldest waiting one; owner's newest waits for its own message.
    assert report.completed == [mine[0], theirs, mine[1]]
    assert _item(runtime, mine[2]).status == "previewing"
    assert _item(runtime, mine[2]).worker is None
    assert pipeline.run_previews(runtime, [(mine[2], versions[mine[2]])]).completed == [mine[2]]


def test_held_stale_other_cost_and_cpu_auto_items_are_left_alone(runtime, two, photos):
    (ua, a), (ub, b) = two
    uc = _user(runtime, "third")
    c = _item_with_latent(runtime, uc, photos[0])
    _gathering(runtime, "on")
    va, vb = _edit(runtime, ua, a, EDITS_A), _edit(runtime, ub, b, EDITS_B)
    batches_for(runtime).edit_item(uc, c, EDITS_A, {"channels": 1.0, "resolution": 64})
    with runtime.sessions.begin() as session:  # another worker took b meanwhile
        assert states.start_preview(session, b, vb, "other-worker:1")
    report = pipeline.run_previews(runtime, [(a, va)])
    assert report.completed == [a]  # not b (held), not c (another cost)
    assert _item(runtime, b).worker == "other-worker:1" and _item(runtime, c).worker is None
    _gathering(runtime, "auto")  # this runtime is on a CPU: auto does not gather
    assert not gather.enabled(runtime)
    assert pipeline.run_previews(runtime, [(c, _item(runtime, c).edit_version)]).completed == [c]


def test_finals_are_gathered_with_their_own_limit(runtime, two, photos):
    (ua, a), (ub, b) = two
    uc = _user(runtime, "third")
    c = _item_with_latent(runtime, uc, photos[0])
    _gathering(runtime, "on", batch=4, finals=2)
    for user, item in ((ua, a), (ub, b), (uc, c)):
        batches_for(runtime).finalize_item(user, item)
    report = pipeline.run_finals(runtime, [a])
    assert report.completed == [a, b]  # final_batch_size 2: c waits for its own message
    assert _item(runtime, b).status == "done" and _item(runtime, c).status == "finalizing"
    assert pipeline.run_finals(runtime, [b]).skipped == [b]
    assert pipeline.run_finals(runtime, [c]).completed == [c]


def test_finals_that_refine_are_not_gathered(runtime, two, photos):
    """Refining is per item and slow: gathered, it would only push a task to its time limit."""
    (ua, a), (ub, b) = two
    uc = _user(runtime, "third")
    c = _item_with_latent(runtime, uc, photos[0], {**RECIPE, "refine_steps": 1})
    _gathering(runtime, "on")
    for user, item in ((ua, a), (uc, c), (ub, b)):
        batches_for(runtime).finalize_item(user, item)
    assert pipeline.run_finals(runtime, [a]).completed == [a, b]  # not c, which refines
    assert _item(runtime, c).status == "finalizing"
    assert pipeline.run_finals(runtime, [c]).completed == [c]  # alone: nothing joins it
    assert _item(runtime, c).status == "done"


def test_a_pass_that_dies_gives_the_gathered_items_back(runtime, two, monkeypatch):
    """The database goes away mid-pass (not the items' fault): the task dies and gives back its
    own message's items (worker.process.tasks); the pass gives back what it gathered, unsent,
    so the reconciler sends it again. Nothing is lost, nothing stays held."""
    from sqlalchemy.exc import OperationalError

    from worker.process import tasks
    from worker.render import runtime as runtime_module
    from worker.render import stages

    (ua, a), (ub, b) = two
    _gathering(runtime, "on")
    va, vb = _edit(runtime, ua, a, EDITS_A), _edit(runtime, ub, b, EDITS_B)

    def database_gone(*_args, **_kwargs):
        raise OperationalError("SELECT 1", {}, Exception("server closed the connection"))

    monkeypatch.setattr(stages, "render", database_gone)
    monkeypatch.setattr(runtime_module, "_current", runtime)
    with pytest.raises(OperationalError):
        tasks.render_previews([[a, va]])
    for item, version in ((a, va), (b, vb)):
        row = _item(runtime, item)
        assert (row.status, row.worker, row.enqueued_at, row.edit_version) == \
            ("queued", None, None, version)
