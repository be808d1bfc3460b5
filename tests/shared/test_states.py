"""The item state machine: guarded transitions, one effect per duplicate, derived batch state."""

import pytest

from shared.items import states
from shared.items.states import ItemStatus as S
from shared.store.db import make_engine, make_session_factory
from shared.store.tables import Batch, Blob, Item, User


@pytest.fixture
def sessions(migrated):
    engine = make_engine(migrated)
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture
def item_id(sessions):
    with sessions.begin() as s:
        user = User(username="ada")
        s.add(user)
        s.flush()
        blob = Blob(id="b" * 32, content_type="image/png", size=1, sha256="0" * 64, data=b"x")
        s.add(blob)
        batch = Batch(id="a" * 32, owner_id=user.id, recipe={}, model_name="tiny-random")
        s.add(batch)
        s.flush()
        s.add(Item(id="i" * 32, batch_id=batch.id, position=0, filename="a.png",
                   upload_blob_id=blob.id, preview_cost={}, final_cost={}, timings={}))
    return "i" * 32


def status(sessions, item_id):
    with sessions() as s:
        return s.get(Item, item_id).status


def test_happy_path(sessions, item_id):
    with sessions.begin() as s:
        assert states.start_preview(s, item_id, 0, "w1")
        assert states.complete_preview(s, item_id, 0)
        assert states.request_final(s, item_id)
        assert states.start_final(s, item_id, "w1")
        assert states.complete_final(s, item_id)
    assert status(sessions, item_id) == S.DONE


def test_duplicate_completion_has_one_effect(sessions, item_id):
    with sessions.begin() as s:
        assert states.start_preview(s, item_id, 0, "w1")
        assert states.start_preview(s, item_id, 0, "w2")  # redelivery while running: re-entrant
        assert states.complete_preview(s, item_id, 0)
        assert not states.complete_preview(s, item_id, 0)  # the second delivery loses
        assert not states.start_preview(s, item_id, 0, "w3")  # and cannot start again
    with sessions() as s:
        assert s.get(Item, item_id).attempts == 2


def test_stale_preview_is_dropped(sessions, item_id):
    with sessions.begin() as s:
        states.start_preview(s, item_id, 0, "w1")
        assert states.request_edit(s, item_id, {"31_Smiling": 0.5}).version == 1
        assert not states.complete_preview(s, item_id, 0)  # rendered for the old edits
        assert states.complete_preview(s, item_id, 1)
    assert status(sessions, item_id) == S.PREVIEW_READY


def test_cancel_and_retry(sessions, item_id):
    with sessions.begin() as s:
        assert states.fail(s, item_id, "corrupt_image", "broken")
        assert not states.cancel(s, item_id)  # failed is final until retried
        assert states.retry(s, item_id)
        assert states.cancel(s, item_id)
        assert not states.start_preview(s, item_id, 2, "w1")
    assert status(sessions, item_id) == S.CANCELED


def test_illegal_transition_is_a_programming_error(sessions, item_id):
    with sessions.begin() as s, pytest.raises(states.TransitionError):
        states.transition(s, item_id, S.DONE, expected={S.QUEUED})


def test_batch_status_and_progress():
    assert states.batch_status(["queued", "queued"]) == "queued"
    assert states.batch_status(["queued", "preview_ready"]) == "running"
    assert states.batch_status(["preview_ready", "failed"]) == "preview_ready"
    assert states.batch_status(["done", "failed"]) == "done"
    assert states.batch_status(["canceled"]) == "canceled"
    assert states.batch_progress(["done", "queued"]) == 0.5
    assert states.status_counts(["done", "done"])["done"] == 2
