"""The worker's side of the preview lane (shared.platform.preview_lane): every preview goes
there before its SQL transaction, with exactly the bytes then stored; a late render of an older
edit never replaces a newer one; and with Redis away the previews are stored as before."""

from __future__ import annotations

import dataclasses

import pytest

from shared.commands.batches import Upload
from shared.platform import preview_lane
from shared.recipe.parse import parse_recipe
from shared.store.tables import Item
from tests.conftest import batches_for
from tests.worker.conftest import items_of
from worker.render import pipeline

pytestmark = pytest.mark.slow  # in-process renders of a real photo

RECIPE = {"output": "photo", "edits": {"smiling": 0.5},
          "preview": {"channels": 0.5, "resolution": 32}}


def _one_item(rt, owner, photo) -> tuple[str, str]:
    batch_id = batches_for(rt).create_batch(owner, [Upload("a.png", photo, "image/png")],
                                            parse_recipe(RECIPE, 64))
    (item,) = items_of(rt, batch_id)
    return batch_id, item.id


def _stored_preview(rt, item_id: str) -> tuple[int, bytes, str]:
    with rt.sessions() as session:
        item = session.get(Item, item_id)
        data, media_type = rt.blobs.get(session, item.preview_blob_id)
    return item.edit_version, data, media_type


def test_the_lane_holds_the_stored_preview_and_never_an_older_one(runtime, owner, photos):
    batch_id, item_id = _one_item(runtime, owner, photos[0])
    pipeline.run_previews(runtime, [(item_id, 0)])
    version, data, media_type = _stored_preview(runtime, item_id)
    lane = preview_lane.newest(runtime.settings.redis_url, item_id, 0)
    assert (lane.version, lane.data, lane.media_type) == (0, data, media_type)
    assert media_type == "image/jpeg"

    jobs = batches_for(runtime)
    v1 = jobs.edit_item(owner, item_id, {"smiling": -0.8})
    v2 = jobs.edit_item(owner, item_id, {"smiling": 0.8})
    assert pipeline.run_previews(runtime, [(item_id, v2)]).completed == [item_id]
    newest = preview_lane.newest(runtime.settings.redis_url, item_id, v2)
    assert newest.version == v2 and newest.data == _stored_preview(runtime, item_id)[1]
    assert newest.data != data
    # v1's message, delivered late, is skipped before any render: the lane keeps v2.
    assert pipeline.run_previews(runtime, [(item_id, v1)]).skipped == [item_id]
    assert preview_lane.newest(runtime.settings.redis_url, item_id, 0).version == v2


def test_redis_away_costs_the_lane_not_the_preview(runtime, owner, photos):
    batch_id, item_id = _one_item(runtime, owner, photos[0])
    runtime.settings = dataclasses.replace(runtime.settings, redis_url="redis://127.0.0.1:9/0")
    report = pipeline.run_previews(runtime, [(item_id, 0)])
    assert report.completed == [item_id] and not report.failed
    (item,) = items_of(runtime, batch_id)
    assert item.status == "preview_ready" and item.preview_blob_id is not None


def test_a_preview_is_in_the_lane_before_its_realism_is_scored(runtime, owner, photos, monkeypatch):
    from worker.render import assess

    batch_id, item_id = _one_item(runtime, owner, photos[0])
    seen = []
    real_score = assess.score

    def score(rt, job, kind, images):
        seen.append(preview_lane.newest(rt.settings.redis_url, job.item_id, job.edit_version))
        return real_score(rt, job, kind, images)

    monkeypatch.setattr(assess, "score", score)
    assert pipeline.run_previews(runtime, [(item_id, 0)]).completed == [item_id]
    (entry,) = seen
    assert entry is not None and entry.data == _stored_preview(runtime, item_id)[1]
