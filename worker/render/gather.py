"""Micro-batching across messages: a worker's pass takes, besides its own message's items, the
previews (finals) of the same model and cost that other messages, of any user, are waiting
with, up to ``render_batch_size`` (``final_batch_size``) items, waiting at most
``render_gather_ms`` for more to arrive.

The database is the truth and a message only wakes a worker up: an item is gathered by the
same guarded take as from its own message, but only while nobody holds it (sent, unheld); its
own message, delivered later, finds it taken or done and is skipped, as any duplicate is. Only
items with a stored latent of this model are gathered (re-edits, finals): a photo still to
decode never joins, nor delays, a pass. Candidates are the oldest sent first, one per user in
turn, so one user's many edits never fill a pass while another user's edit waits.

``ANYCOST_RENDER_GATHER``: ``auto`` gathers on a CUDA worker only (on a CPU a wider pass costs
about as much per image and the wait is pure latency: see the note of issue 21), ``on``, ``off``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from sqlalchemy import or_, select

from shared.items.states import ItemStatus
from shared.store.tables import Batch, Item, Latent
from worker.render import store
from worker.render.job import RenderJob
from worker.render.runtime import Runtime

log = logging.getLogger(__name__)

POLL_SECONDS = 0.001  # between looks for more items while the gather window is open
SCAN = 256  # oldest waiting items looked at per look
PREVIEW_WORK = (ItemStatus.QUEUED.value, ItemStatus.PREVIEWING.value)


def enabled(rt: Runtime) -> bool:
    mode = rt.settings.render_gather
    return rt.device.type == "cuda" if mode == "auto" else mode == "on"


def previews(rt: Runtime, jobs: list[RenderJob]) -> list[RenderJob]:
    """Other messages' previews taken into this pass (already claimed, as ``RenderJob``s)."""
    limit = rt.settings.render_batch_size
    if not _may_gather(rt, jobs, limit) or any(j.latent is None for j in jobs):
        return []
    costs = {(j.cost.channels, j.cost.resolution) for j in jobs}

    turns = _owners(rt, jobs)

    def find(exclude: set[str], room: int) -> list[tuple[str, int]]:
        rows = _waiting(rt, Item.status.in_(PREVIEW_WORK), Item.preview_cost)
        return _pick(rows, costs, exclude, room, turns)

    return _gather(rt, jobs, limit, find, lambda pairs: store.claim_previews(rt, pairs, unheld=True))


def finals(rt: Runtime, jobs: list[RenderJob]) -> list[RenderJob]:
    """Other messages' finals taken into this pass."""
    limit = rt.settings.final_batch_size
    # Refining optimises each item on its own (seconds a step on a CPU): gathered, it would
    # only lengthen this task towards its time limit, for a render that is a small part of it.
    if not _may_gather(rt, jobs, limit) or any(j.recipe.refine_steps > 0 for j in jobs):
        return []
    costs = {(j.cost.channels, j.cost.resolution) for j in jobs}

    turns = _owners(rt, jobs)

    def find(exclude: set[str], room: int) -> list[tuple[str, int]]:
        rows = _waiting(rt, Item.status == ItemStatus.FINALIZING.value, Item.final_cost)
        rows = [r for r in rows if not int((r.recipe or {}).get("refine_steps") or 0)]
        return _pick(rows, costs, exclude, room, turns)

    return _gather(rt, jobs, limit, find,
                   lambda pairs: store.claim_finals(rt, [i for i, _ in pairs], unheld=True))


def _may_gather(rt: Runtime, jobs: list[RenderJob], limit: int) -> bool:
    """Room in the pass, and no retake in it: a group taken again after its worker died is
    rendered alone (pipeline._isolate_retakes), never with others' items."""
    return enabled(rt) and 0 < len(jobs) < limit and all(j.attempt <= 1 for j in jobs)


def _gather(rt: Runtime, jobs: list[RenderJob], limit: int,
            find: Callable[[set[str], int], list[tuple[str, int]]],
            claim: Callable[[list[tuple[str, int]]], list[RenderJob]]) -> list[RenderJob]:
    deadline = time.monotonic() + rt.settings.render_gather_ms / 1000
    taken: list[RenderJob] = []
    while True:
        room = limit - len(jobs) - len(taken)
        if room <= 0:
            break
        found = find({j.item_id for j in jobs + taken}, room)
        if found:
            taken += claim(found)
        left = deadline - time.monotonic()
        if left <= 0:
            break
        time.sleep(min(left, POLL_SECONDS))
    if taken:
        log.info("gathered %d items of other messages into this pass", len(taken),
                 extra={"item_ids": [j.item_id for j in taken]})
    return taken


def _waiting(rt: Runtime, status_clause, cost_column) -> list[tuple]:
    """(id, edit_version, cost, owner, batch recipe) of sent, unheld, never taken items (a retake is not
    gathered: it may be what killed a worker) with a latent of this worker's model, oldest
    sent first."""
    if rt.model_name == rt.settings.model:  # the default config's queue carries model NULL too
        model = or_(Batch.model_name.is_(None), Batch.model_name == rt.model_name)
    else:
        model = Batch.model_name == rt.model_name
    with rt.sessions() as session:
        return list(session.execute(
            select(Item.id, Item.edit_version, cost_column, Batch.owner_id, Batch.recipe)
            .join(Batch, Batch.id == Item.batch_id).join(Latent, Latent.item_id == Item.id)
            .where(status_clause, Item.worker.is_(None), Item.enqueued_at.is_not(None),
                   Item.attempts == 0, Latent.model_name == rt.model_name, model)
            .order_by(Item.enqueued_at, Item.id).limit(SCAN)).all())


def _owners(rt: Runtime, jobs: list[RenderJob]) -> dict[int, int]:
    """Items each user already has in the pass (their turns taken)."""
    batch_ids = [j.batch_id for j in jobs]
    with rt.sessions() as session:
        owners = dict(session.execute(
            select(Batch.id, Batch.owner_id).where(Batch.id.in_(set(batch_ids)))).all())
    turns: dict[int, int] = {}
    for batch_id in batch_ids:
        turns[owners[batch_id]] = turns.get(owners[batch_id], 0) + 1
    return turns


def _pick(rows: list[tuple], costs: set[tuple[float, int]], exclude: set[str],
          room: int, turns: dict[int, int]) -> list[tuple[str, int]]:
    """Up to ``room`` items of one of ``costs``: round robin over users, counting the items
    each already has in the pass (``turns``), each user's oldest first."""
    turn = dict(turns)
    ranked = []
    for index, (item_id, version, cost, owner, _recipe) in enumerate(rows):
        if item_id in exclude or not cost:
            continue
        if (float(cost["channels"]), int(cost["resolution"])) not in costs:
            continue
        turn[owner] = turn.get(owner, 0) + 1
        ranked.append((turn[owner], index, item_id, version))
    return [(item_id, version) for _, _, item_id, version in sorted(ranked)[:room]]


def give_back(rt: Runtime, jobs: list[RenderJob]) -> None:
    """A pass that died: the gathered items go back to be sent again (their own messages may
    already have been skipped)."""
    if not jobs:
        return
    try:
        store.release(rt, [j.item_id for j in jobs])
    except Exception as exc:  # the reaper frees what a worker held too long
        log.warning("gathered items not given back: %s", exc)
