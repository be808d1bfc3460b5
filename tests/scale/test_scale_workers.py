"""Scale-out with real worker processes: two workers with different node names (two hosts) share
one batch without rendering anything twice; fair queues let another user's single photo past a
big batch; previews go before queued finals. Order and authorship come from the workers' own
JSON log lines (one ``rendered_by`` record per stored result, carrying ``item_id``)."""

from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy import func, select

from shared.store.tables import Blob, Item
from tests.scale.conftest import TINY_RECIPE, second_user
from tests.support.stack import real_photos, settled
from tests.support.workers import register_live_worker

pytestmark = pytest.mark.integration


def _photos(n: int) -> list[tuple[str, bytes, str]]:
    """``n`` uploads cycling over the real photos (distinct names)."""
    base = real_photos()[:2]  # astronaut and Grace Hopper: a face each
    return [(f"{i:03d}-{base[i % 2][0]}", base[i % 2][1], base[i % 2][2]) for i in range(n)]


def _items(stack, batch_id: str) -> list[Item]:
    with stack.services.sessions() as session:
        return list(session.scalars(select(Item).where(Item.batch_id == batch_id)))


@pytest.mark.scale_settings(render_batch_size=1)
def test_two_hosts_share_a_batch_and_render_each_item_once(scale_stack):
    stack = scale_stack
    w1 = stack.start_worker("w1@hostA", wait=False)
    w2 = stack.start_worker("w2@hostB", wait=False)
    w1.wait_ready()
    w2.wait_ready()
    created = stack.api.submit(_photos(8), {**TINY_RECIPE, "auto_finalize": True})
    batch = stack.api.wait(created["id"], settled("done", "failed"), timeout=240)
    assert [i["status"] for i in batch["items"]] == ["done"] * 8

    ids = {i["id"] for i in batch["items"]}
    # JSON logs carry the item id of every stored result, and name the process that rendered it.
    for kind in ("preview", "final"):
        records = w1.stored(kind) + w2.stored(kind)
        per_item = Counter(r["item_id"] for r in records)
        assert set(per_item) == ids and set(per_item.values()) == {1}, per_item  # each once
        assert all(r["batch_id"] == created["id"] for r in records)
    by_w1 = {r["rendered_by"] for r in w1.stored("preview") + w1.stored("final")}
    by_w2 = {r["rendered_by"] for r in w2.stored("preview") + w2.stored("final")}
    assert by_w1 and all(name.startswith("w1@hostA:") for name in by_w1)
    assert by_w2 and all(name.startswith("w2@hostB:") for name in by_w2)
    # Both took part in the previews (8 single-item messages, two idle workers).
    assert w1.stored("preview") and w2.stored("preview")

    items = _items(stack, created["id"])
    assert all(i.attempts == 1 for i in items)  # the final taken once (a final request restarts the count)
    assert len({i.preview_blob_id for i in items}) == 8
    referenced = {b for i in items for b in (i.upload_blob_id, i.preview_blob_id,
                                            i.projected_blob_id, i.final_blob_id)}
    with stack.services.sessions() as session:
        blobs = session.scalar(select(func.count()).select_from(Blob))
    # Nothing rendered twice: no blob outside what the items reference (a lost race would
    # roll its blobs back, a second render would leave one more).
    assert blobs == len(referenced) == 8 * 4


@pytest.mark.scale_settings(render_batch_size=1, batch_queue_cap=4)
def test_a_single_preview_does_not_wait_behind_a_big_batch(scale_stack):
    stack = scale_stack
    worker = stack.start_worker("fair@hostA")
    big = stack.api.submit(_photos(40), TINY_RECIPE)
    # Let user A's batch get going, then user B submits one photo.
    stack.api.wait(big["id"], lambda b: b["counts"].get("preview_ready", 0) >= 1, timeout=120)
    other = second_user(stack, "user-b")
    small = other.submit(_photos(1), TINY_RECIPE)
    other.wait(small["id"], settled("preview_ready"), timeout=120)
    a_items = stack.api.batch(big["id"])["items"]
    stack.services.batches.cancel_batch(stack.user_id, big["id"])  # no need to render the rest

    order = [r["item_id"] for r in worker.stored("preview")]
    b_item = small["items"][0]["id"]
    a_before_b = order.index(b_item)
    # Ahead of B: what A had finished when B arrived (a poll or two) and at most the cap of
    # A's items in the queue, not A's 40.
    cap, per_message = stack.settings.batch_queue_cap, stack.settings.render_batch_size
    assert a_before_b <= cap + per_message + 3, order
    waiting = [i for i in a_items if i["status"] == "queued"]
    assert len(waiting) >= 40 - 2 * (cap + per_message + 3), [i["status"] for i in a_items]


@pytest.mark.scale_settings(render_batch_size=1)
def test_previews_go_before_queued_finals(scale_stack):
    stack = scale_stack
    worker = stack.start_worker("order@hostA")
    first = stack.api.submit(_photos(4), TINY_RECIPE)
    stack.api.wait(first["id"], settled("preview_ready"), timeout=120)
    worker.stop()
    # With no worker running: 4 finals queued for one batch, then a preview for another (its
    # upload is accepted on a live heartbeat: uploads need one since the model-truth change).
    register_live_worker(stack.services.sessions, "tiny-random")
    stack.api.finalize(first["id"])
    second = stack.api.submit(_photos(1), TINY_RECIPE)
    worker = stack.start_worker("order@hostA")
    stack.api.wait(first["id"], settled("done"), timeout=120)
    stack.api.wait(second["id"], settled("preview_ready"), timeout=60)

    records = [r for r in worker.records() if "rendered_by" in r]
    kinds = [(r["kind"], r["item_id"]) for r in records]
    assert kinds[0] == ("preview", second["items"][0]["id"]), kinds
    assert [k for k, _ in kinds[1:]] == ["final"] * 4
