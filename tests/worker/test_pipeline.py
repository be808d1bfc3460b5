"""The render pipeline in-process, on a real SQLite database with the tiny-random model: the
life of an item, guarded transitions under duplicates and races, per-item failures."""

from __future__ import annotations

import numpy as np
import pytest
from celery.exceptions import SoftTimeLimitExceeded
from sqlalchemy import func, select

from shared.commands.batches import Upload
from shared.items import states
from shared.recipe.parse import parse_recipe
from shared.store.tables import Blob, Latent
from tests.conftest import batches_for
from tests.worker.conftest import items_of
from worker.render import pipeline, stages
from worker.render.images import decode_rgb

pytestmark = pytest.mark.slow  # in-process renders of real photos (make test-fast leaves it out)


RECIPE = {"output": "crop", "edits": {"smiling": 0.5}, "preview": {"channels": 0.5, "resolution": 32},
          "final": {"channels": 1.0, "resolution": 64}}


def _batch(rt, owner, uploads, recipe=RECIPE) -> tuple[str, list[tuple[str, int]]]:
    batch_id = batches_for(rt).create_batch(owner, uploads, parse_recipe(recipe, 64))
    return batch_id, [(i.id, i.edit_version) for i in items_of(rt, batch_id)]


def _blob_count(rt) -> int:
    with rt.sessions() as session:
        return session.scalar(select(func.count()).select_from(Blob))


def _image(rt, blob_id: str) -> np.ndarray:
    with rt.sessions() as session:
        data, content_type = rt.blobs.get(session, blob_id)
    assert content_type == "image/png"
    return decode_rgb(data)


def test_preview_then_final(runtime, owner, photos):
    uploads = [Upload(f"p{i}.png", data, "image/png") for i, data in enumerate(photos)]
    batch_id, pairs = _batch(runtime, owner, uploads)
    report = pipeline.run_previews(runtime, pairs)
    assert sorted(report.completed) == sorted(i for i, _ in pairs) and not report.failed
    for item in items_of(runtime, batch_id):
        # taken together: no take charged (only a take alone is: shared.items.states)
        assert item.status == "preview_ready" and item.attempts == 0
        assert item.model_name == "tiny-random" and item.pretrained is False
        assert {"decode", "faces", "encode", "store_latent", "edit", "render_preview"} <= set(item.timings)
        assert _image(runtime, item.preview_blob_id).shape == (32, 32, 3)
        # edits given: the projection is its own (unedited) picture
        assert item.projected_blob_id not in (None, item.preview_blob_id)
        assert not np.array_equal(_image(runtime, item.projected_blob_id),
                                  _image(runtime, item.preview_blob_id))
    with runtime.sessions() as session:
        latents = session.scalars(select(Latent)).all()
        assert len(latents) == 2 and all(lat.shape == [1, 10, 512] for lat in latents)

    assert batches_for(runtime).finalize_batch(owner, batch_id) == 2
    report = pipeline.run_finals(runtime, [i for i, _ in pairs])
    assert len(report.completed) == 2
    for item in items_of(runtime, batch_id):
        assert item.status == "done" and "render_final" in item.timings and "encode" in item.timings
        assert _image(runtime, item.final_blob_id).shape == (64, 64, 3)


def test_duplicate_delivery_has_one_effect(runtime, owner, photos):
    batch_id, pairs = _batch(runtime, owner, [Upload("a.png", photos[0], "image/png")])
    pipeline.run_previews(runtime, pairs)
    blobs = _blob_count(runtime)
    again = pipeline.run_previews(runtime, pairs)
    assert again.completed == [] and again.skipped == [pairs[0][0]]
    assert _blob_count(runtime) == blobs
    batches_for(runtime).finalize_item(owner, pairs[0][0])
    assert pipeline.run_finals(runtime, [pairs[0][0]]).completed == [pairs[0][0]]
    assert pipeline.run_finals(runtime, [pairs[0][0]]).skipped == [pairs[0][0]]
    assert _blob_count(runtime) == blobs + 1
    (item,) = items_of(runtime, batch_id)
    assert item.attempts == 1  # the final counts afresh (one attempt); duplicates took nothing


def test_stale_version_and_canceled_items_are_skipped(runtime, owner, photos):
    batch_id, pairs = _batch(runtime, owner, [Upload(f"{i}.png", p, "image/png")
                                              for i, p in enumerate(photos)])
    (first, v0), (second, _) = pairs
    batches_for(runtime).edit_item(owner, first, {"young": 0.4})  # v1 is what counts now
    batches_for(runtime).cancel_batch(owner, batch_id)  # cancels both ...
    report = pipeline.run_previews(runtime, [(first, v0), (second, 0)])
    assert report.completed == [] and sorted(report.skipped) == sorted([first, second])
    assert {i.status for i in items_of(runtime, batch_id)} == {"canceled"}


def test_edit_reuses_the_latent_and_drops_stale_results(runtime, owner, photos):
    batch_id, pairs = _batch(runtime, owner, [Upload("a.png", photos[0], "image/png")])
    pipeline.run_previews(runtime, pairs)
    (before,) = items_of(runtime, batch_id)
    old_preview = _image(runtime, before.preview_blob_id)
    version = batches_for(runtime).edit_item(owner, before.id, {"smiling": -0.8, "young": 0.5})
    assert version == 1
    # The old message (v0) arrives late: nothing happens.
    assert pipeline.run_previews(runtime, pairs).skipped == [before.id]
    report = pipeline.run_previews(runtime, [(before.id, version)])
    assert report.completed == [before.id]
    (after,) = items_of(runtime, batch_id)
    assert after.status == "preview_ready" and after.edit_version == 1
    assert after.preview_blob_id != before.preview_blob_id
    assert after.projected_blob_id == before.projected_blob_id  # same latent, same projection
    assert after.timings["encode"] == before.timings["encode"]  # not encoded again
    assert not np.array_equal(_image(runtime, after.preview_blob_id), old_preview)
    with runtime.sessions() as session:  # the superseded preview's bytes are gone
        assert session.get(Blob, before.preview_blob_id) is None
        assert session.get(Blob, before.projected_blob_id) is not None


def test_a_bad_item_fails_alone(runtime, owner, photos):
    uploads = [Upload("a.png", photos[0], "image/png"), Upload("b.png", b"hello, not a photo", "image/png"),
               Upload("c.png", photos[1][: len(photos[1]) // 3], "image/png")]
    batch_id, pairs = _batch(runtime, owner, uploads)
    report = pipeline.run_previews(runtime, pairs)
    good, text, truncated = items_of(runtime, batch_id)
    assert good.status == "preview_ready"
    assert (text.status, text.error_code) == ("failed", "unsupported_format")
    assert (truncated.status, truncated.error_code) == ("failed", "corrupt_image")
    assert text.error_message and report.failed == {text.id: "unsupported_format",
                                                   truncated.id: "corrupt_image"}


def test_unexpected_error_is_internal_error_and_siblings_render(runtime, owner, photos):
    batch_id, pairs = _batch(runtime, owner, [Upload(f"{i}.png", p, "image/png")
                                              for i, p in enumerate(photos)])
    pipeline.run_previews(runtime, pairs)
    batches_for(runtime).finalize_batch(owner, batch_id)
    with runtime.sessions.begin() as session:  # a damaged latent row: the batched pass fails
        latent = session.get(Latent, pairs[0][0])
        latent.data, latent.shape = latent.data[:2048], [1, 1, 512]
    report = pipeline.run_finals(runtime, [i for i, _ in pairs])
    assert report.failed == {pairs[0][0]: "internal_error"} and report.completed == [pairs[1][0]]
    broken, fine = items_of(runtime, batch_id)
    assert broken.status == "failed" and "wplus" in broken.error_message
    assert fine.status == "done"


def test_soft_time_limit_fails_unfinished_items_with_timeout(runtime, owner, photos, monkeypatch):
    batch_id, pairs = _batch(runtime, owner, [Upload("a.png", photos[0], "image/png")])

    def out_of_time(*_args, **_kwargs):  # what Celery raises in the task at the soft limit
        raise SoftTimeLimitExceeded()

    monkeypatch.setattr(stages, "render", out_of_time)
    report = pipeline.run_previews(runtime, pairs)
    (item,) = items_of(runtime, batch_id)
    assert report.failed == {item.id: "timeout"}
    assert item.status == "failed" and item.error_code == "timeout"


def test_auto_finalize_queues_the_final(runtime, owner, photos):
    batch_id, pairs = _batch(runtime, owner, [Upload("a.png", photos[0], "image/png")],
                             {**RECIPE, "auto_finalize": True})
    report = pipeline.run_previews(runtime, pairs)
    assert report.finals_queued == [pairs[0][0]]
    (item,) = items_of(runtime, batch_id)
    assert item.status == states.ItemStatus.FINALIZING
    assert pipeline.run_finals(runtime, [item.id]).completed == [item.id]


@pytest.mark.parametrize("cap", [1])
def test_finished_previews_release_the_rest_of_a_big_batch(runtime, owner, photos, cap):
    import dataclasses

    runtime.sender.settings = dataclasses.replace(runtime.sender.settings, batch_queue_cap=cap)
    batches = batches_for(runtime)  # its own Sender: the same cap for the upload's release
    batches.sender.settings = runtime.sender.settings
    batch_id = batches.create_batch(owner, [Upload(f"{i}.png", photos[0], "image/png")
                                            for i in range(2)], parse_recipe(RECIPE, 64))
    first, second = items_of(runtime, batch_id)
    assert first.enqueued_at is not None and second.enqueued_at is None
    pipeline.run_previews(runtime, [(first.id, 0)])
    assert items_of(runtime, batch_id)[1].enqueued_at is not None  # sent once the first finished
