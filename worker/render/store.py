"""The worker's database side: taking items, storing latents and results, failing items.

Every status change goes through ``shared.items.states`` (guarded UPDATEs), one item at a time, so a
message delivered twice, a stale edit version or a cancel during a render changes nothing. Result
blobs are inserted in the same transaction as the guarded UPDATE that references them and rolled
back when that UPDATE loses, so a duplicate leaves no second preview behind; a preview that
replaces another deletes the old one's blobs in the same transaction.

Every function here is one transaction per item, retried with backoff while the database is
unreachable (``db_retry_seconds``): a blip costs time, not items. When it stays away longer, the
error goes up to the task, which gives the items back (``release``) or leaves the message unacked.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload

from shared.items import states
from shared.items.states import ItemStatus
from shared.platform.nudges import nudge
from shared.recipe.parse import Cost, recipe_from_stored
from shared.store.db import retry_transient
from shared.store.tables import Blob, Item, Latent, utcnow
from worker.render.edit_inputs import (
    face_meta,
    item_edits,
    item_face_edits,
    stored_latent,
    user_directions,
)
from worker.render.images import PNG
from worker.render.job import RenderJob
from worker.render.per_face import face_boxes
from worker.render.runtime import Runtime
from worker.render.warm import latent_digest

log = logging.getLogger(__name__)
T = TypeVar("T")


def _retrying(rt: Runtime, fn: Callable[[], T], what: str) -> T:
    return retry_transient(fn, rt.settings.db_retry_seconds, what)


def claim_previews(rt: Runtime, pairs: list[tuple[str, int]],
                   unheld: bool = False) -> list[RenderJob]:
    """Take each (item_id, edit_version) that is still waiting for exactly that version. An item
    charged ``max_attempts`` takes already fails ``worker_lost`` instead. A take alone is
    charged; a take in a group is not (``charge`` decides, see ``shared.items.states``).
    ``unheld``: items of other messages gathered into this pass, taken only if nobody holds them
    (else left alone); such a take is never alone."""
    alone = len(pairs) == 1 and not unheld
    jobs = (_retrying(rt, lambda i=i, v=v: _claim_preview(rt, i, int(v), alone, unheld),
                      "claim preview") for i, v in pairs)
    return [job for job in jobs if job is not None]


def _retake_mark(rt: Runtime, session, item_id: str, alone: bool,
                 held: tuple[str | None, int] | None = None) -> bool:
    """Whether the item is taken again after a take that died (held by another process when we
    took it) or was marked so by the reaper; a group's such item is marked (``group_lost``) so
    that every later take of it is alone, whichever path sends it. ``held``: the item's
    (worker, group_lost) as this transaction read them already."""
    held_by, group_lost = held if held is not None else session.execute(
        select(Item.worker, Item.group_lost).where(Item.id == item_id)).one()
    retaken = bool(group_lost) or (held_by is not None and held_by != rt.worker_name)
    if retaken and not alone and not group_lost:
        session.execute(update(Item).where(Item.id == item_id)
                        .values(group_lost=Item.group_lost + 1))
    return retaken


def _claim_preview(rt: Runtime, item_id: str, version: int, alone: bool = True,
                   unheld: bool = False) -> RenderJob | None:
    cap = rt.settings.max_attempts
    with rt.sessions.begin() as session:
        # Read once, with its batch and latent, before the take (the editor's loop: one query):
        # the take changes only who holds it and its count of takes, both set below; an edit
        # meanwhile changes its version, and then the take does not happen.
        item = session.get(Item, item_id,
                           options=[joinedload(Item.batch), joinedload(Item.latent)])
        if item is None:
            return None
        # A gathered item is taken only when nobody holds it: never a retake.
        retaken = False if unheld else _retake_mark(rt, session, item_id, alone,
                                                    (item.worker, item.group_lost))
        if not states.start_preview(session, item_id, version, rt.worker_name, cap,
                                    charge=alone, unheld=unheld):
            if unheld:
                return None
            if states.fail_exhausted(session, item_id, ItemStatus.PREVIEWING, cap, version):
                log.warning("preview of %s v%s failed: taken %d times already", item_id,
                            version, cap, extra={"item_id": item_id})
            else:
                log.info("preview of %s v%s skipped: taken, stale, canceled or done", item_id,
                         version)
            return None
        attempts = item.attempts + (1 if alone else 0)  # as start_preview charged it
        batch = item.batch
        job = RenderJob(
            item_id=item_id, batch_id=batch.id, edit_version=version,
            recipe=recipe_from_stored(batch.recipe), edits=item_edits(item, batch),
            face_edits=item_face_edits(item),
            cost=Cost(**item.preview_cost), upload_blob_id=item.upload_blob_id,
            latent=stored_latent(rt, item), needs_projected=item.projected_blob_id is None,
            face_meta=face_meta(rt, item), attempt=attempts,
            synthesis=dict(item.synthesis) if item.synthesis else None,
            model_name=batch.model_name, owner_id=batch.owner_id, retaken=retaken,
            charged=alone,
        )
        job.user_directions = user_directions(rt, session, batch.owner_id, job.edit_keys())
        if attempts <= 1 and not retaken and version == 0 and item.enqueued_at is not None:
            job.add_time("queue_wait", max(0.0, (utcnow() - item.enqueued_at).total_seconds()))
        return job


def _upload_type(session, item: Item) -> str | None:
    """The media type the web side sniffed from the upload's bytes (None: a synthesised item)."""
    if item.upload_blob_id is None:
        return None
    return session.scalar(select(Blob.content_type).where(Blob.id == item.upload_blob_id))


def claim_finals(rt: Runtime, item_ids: list[str], unheld: bool = False) -> list[RenderJob]:
    """Take each item that is (still) finalizing; its latent must exist. An item charged
    ``max_attempts`` takes already fails ``worker_lost`` instead (charges: claim_previews).
    ``unheld``: as :func:`claim_previews`."""
    alone = len(item_ids) == 1 and not unheld
    jobs = (_retrying(rt, lambda i=i: _claim_final(rt, str(i), alone, unheld), "claim final")
            for i in item_ids)
    return [job for job in jobs if job is not None]


def _claim_final(rt: Runtime, item_id: str, alone: bool = True,
                 unheld: bool = False) -> RenderJob | None:
    cap = rt.settings.max_attempts
    with rt.sessions.begin() as session:
        retaken = False if unheld else _retake_mark(rt, session, item_id, alone)
        if not states.start_final(session, item_id, rt.worker_name, cap, charge=alone,
                                  unheld=unheld):
            if unheld:
                return None
            if states.fail_exhausted(session, item_id, ItemStatus.FINALIZING, cap):
                log.warning("final of %s failed: taken %d times already", item_id, cap,
                            extra={"item_id": item_id})
            else:
                log.info("final of %s skipped: not finalizing (done, canceled or edited)",
                         item_id)
            return None
        item = session.get(Item, item_id)
        batch = item.batch
        recipe = recipe_from_stored(batch.recipe)
        job = RenderJob(
            item_id=item_id, batch_id=batch.id, edit_version=item.edit_version,
            recipe=recipe, edits=item_edits(item, batch),
            face_edits=item_face_edits(item),
            cost=Cost(**item.final_cost), upload_blob_id=item.upload_blob_id,
            latent=stored_latent(rt, item), needs_projected=False,
            face_meta=face_meta(rt, item), attempt=item.attempts,
            preview_cost=Cost(**item.preview_cost),
            projection=dict(item.projection) if item.projection else None,
            synthesis=dict(item.synthesis) if item.synthesis else None,
            model_name=batch.model_name, owner_id=batch.owner_id, retaken=retaken,
            charged=alone,
            upload_type=_upload_type(session, item) if recipe.keep_format else None,
        )
        job.user_directions = user_directions(rt, session, batch.owner_id, job.edit_keys())
        return job


def charge(rt: Runtime, job: RenderJob, stage: ItemStatus) -> bool:
    """Charge a take to an item taken uncharged in a group and now rendered alone; False (and
    the item failed ``worker_lost``) when it has no takes left."""
    cap = rt.settings.max_attempts

    def write() -> bool:
        with rt.sessions.begin() as session:
            if states.charge_attempt(session, job.item_id, stage, rt.worker_name, cap):
                return True
            states.fail_exhausted(session, job.item_id, stage, cap)
            return False

    charged = _retrying(rt, write, "charge a take")
    if charged:
        job.attempt += 1
        job.charged = True
    return charged


def refund(rt: Runtime, jobs: list[RenderJob], stage: ItemStatus) -> None:
    """The message's own items taken alone (charged) into a pass that gathered others: their
    take becomes a group's, which is not charged (``states.refund_attempt``)."""
    for job in [j for j in jobs if j.charged]:
        def write(job=job) -> bool:
            with rt.sessions.begin() as session:
                return states.refund_attempt(session, job.item_id, stage, rt.worker_name)

        if _retrying(rt, write, "refund a take"):
            job.attempt -= 1
            job.charged = False


def release(rt: Runtime, item_ids: list[str], seconds: float | None = None) -> int:
    """Give back the items of a task that died: whatever this worker still holds goes back to
    be sent again. Raises when the database stays away for ``seconds``."""
    def give_back() -> int:
        with rt.sessions.begin() as session:
            return sum(states.release(session, str(i), rt.worker_name) for i in item_ids)

    return retry_transient(give_back, min(5.0, rt.settings.db_retry_seconds) if seconds is None
                           else seconds, "release items")


def unsend(rt: Runtime, item_ids: list[str]) -> None:
    """Warm items of a task that died (never taken, so ``release`` does not see them): unsent,
    so the reconciler sends them again now rather than after ``message_visibility``. Best
    effort: when this fails too, that later resend is what remains."""
    if not item_ids:
        return
    try:
        with rt.sessions.begin() as session:
            states.mark_unsent(session, item_ids)
    except Exception as exc:
        log.warning("warm items %s not unsent: %s", item_ids, exc)


def read_upload(rt: Runtime, job: RenderJob) -> bytes:
    def read() -> bytes:
        with rt.sessions() as session:
            return rt.blobs.get(session, job.upload_blob_id)[0]

    return _retrying(rt, read, "read upload")


def store_latent(rt: Runtime, job: RenderJob, data: bytes, shape: list[int], encode_seconds: float) -> None:
    """Keep the item's W+ code (re-edits and finals start from it). A concurrent duplicate that
    stored it first wins; the codes are the same."""
    _retrying(rt, lambda: _store_latent(rt, job, data, shape, encode_seconds), "store latent")


def _store_latent(rt: Runtime, job: RenderJob, data: bytes, shape: list[int],
                  encode_seconds: float) -> None:
    try:
        with rt.sessions.begin() as session:
            latent = session.get(Latent, job.item_id)
            if latent is None:
                latent = Latent(item_id=job.item_id)
                session.add(latent)
            latent.shape = shape
            latent.data = data
            latent.model_name = rt.model_name
            latent.meta = {"faces": job.face_meta}
            latent.encode_seconds = encode_seconds
            latent.created_at = utcnow()
    except IntegrityError:
        log.info("latent of %s was stored by another delivery (or its batch was deleted)",
                 job.item_id)


def record_refine(rt: Runtime, job: RenderJob, info: dict) -> None:
    """Note the last refinement (loss, errors before/after) in the latent's meta. The stored code
    stays the encoder's: re-edits and previews start from it, finals refine again."""
    def record() -> None:
        with rt.sessions.begin() as session:
            latent = session.get(Latent, job.item_id)
            if latent is not None:
                latent.meta = {**(latent.meta or {}), "refine": info}

    _retrying(rt, record, "record refine")


def _merged_timings(session, item_id: str, new: dict[str, float]) -> dict[str, float]:
    old = session.execute(select(Item.timings).where(Item.id == item_id)).scalar_one_or_none()
    return {**(old or {}), **new}


class NotAsRemembered(Exception):
    """A warm preview's item is not as this process remembers it (no projection stored, a
    latent of another model or with other bytes): nothing was stored; render it cold."""


def complete_preview(rt: Runtime, job: RenderJob) -> bool | None:
    """Store the preview (and the projection, and where the latent's faces are: ``item.faces``)
    and move the item to preview_ready, deleting the blobs of the preview this one replaces.
    Returns None when the guarded update lost (stale or canceled; nothing kept), else whether
    the recipe's auto-finalize queued a final. A warm job (``worker.render.warm``, never taken)
    is taken and completed in this one transaction, only while nobody holds the item; it raises
    ``NotAsRemembered`` when the item differs from what its render assumed."""
    finalize = _retrying(rt, lambda: _complete_preview(rt, job), "store preview")
    if finalize is not None:
        nudge(rt.settings.redis_url, job.batch_id)  # the editor's event stream reads it now
    return finalize


def _complete_preview(rt: Runtime, job: RenderJob) -> bool | None:
    with rt.sessions() as session:
        # What this preview replaces and the timings it adds to, in one read; for a warm
        # preview the stored latent too, to check that it is the one the render assumed.
        query = select(Item.preview_blob_id, Item.projected_blob_id, Item.timings)
        if job.warm:
            query = query.add_columns(Latent.model_name, Latent.data).outerjoin(
                Latent, Latent.item_id == Item.id)
        old = session.execute(query.where(Item.id == job.item_id)).one_or_none()
        if job.warm and old is not None and not _as_remembered(rt, job, old):
            raise NotAsRemembered(f"item {job.item_id} has no projection, or another latent")
        preview = rt.blobs.put(session, job.images["preview"], job.mimes.get("preview", PNG),
                               batch_id=job.batch_id)
        values = {"preview_blob_id": preview.id}
        projected = job.images.get("projected")
        if projected is job.images["preview"]:  # no edits: one picture, one blob
            values["projected_blob_id"] = preview.id
        elif projected is not None:
            values["projected_blob_id"] = rt.blobs.put(session, projected, PNG,
                                                       batch_id=job.batch_id).id
        session.flush()  # the blob rows exist before the item references them
        if job.projection is not None:  # a fresh projection (first preview, other model)
            values["projection"] = job.projection
        faces = face_boxes(job.face_meta)  # where the latent's faces are, for the editor
        if faces is not None:
            values["faces"] = faces
        ok = old is not None and states.complete_preview(
            session, job.item_id, job.edit_version, unheld=job.warm,
            timings={**(old.timings or {}), **job.timings},
            model_name=rt.model_name, pretrained=rt.pretrained,
            preview_realism=job.realism.get("preview"), **values,
        )
        if not ok:
            session.rollback()  # the blobs go too
            log.info("preview of %s v%s dropped: edited, canceled, deleted or held meanwhile",
                     job.item_id, job.edit_version)
            return None
        kept = {values["preview_blob_id"], values.get("projected_blob_id", old.projected_blob_id)}
        rt.blobs.delete(session, {old.preview_blob_id, old.projected_blob_id} - kept)
        finalize = bool(job.recipe.auto_finalize and states.request_final(session, job.item_id))
        session.commit()
        return finalize


def _as_remembered(rt: Runtime, job: RenderJob, row) -> bool:
    """Whether a warm job's item is as its render assumed: a projection stored, and the stored
    latent this model's and byte for byte the one rendered."""
    return (row.projected_blob_id is not None and row.model_name == rt.model_name
            and row.data is not None and latent_digest(row.data) == job.warm_latent_digest)


def complete_final(rt: Runtime, job: RenderJob) -> bool:
    done = _retrying(rt, lambda: _complete_final(rt, job), "store final")
    if done:
        nudge(rt.settings.redis_url, job.batch_id)
    return done


def _complete_final(rt: Runtime, job: RenderJob) -> bool:
    with rt.sessions() as session:
        final = rt.blobs.put(session, job.images["final"], job.mimes.get("final", PNG),
                             batch_id=job.batch_id)
        session.flush()
        ok = states.complete_final(
            session, job.item_id, final_blob_id=final.id,
            timings=_merged_timings(session, job.item_id, job.timings),
            model_name=rt.model_name, pretrained=rt.pretrained,
            final_realism=job.realism.get("final"), consistency=job.consistency,
            projection=job.projection,
        )
        if not ok:
            session.rollback()
            log.info("final of %s dropped: edited, canceled or deleted meanwhile", job.item_id)
            return False
        session.commit()
        return True


def fail(rt: Runtime, job: RenderJob, code: str, message: str, stage: ItemStatus) -> bool:
    """Fail one item that this job holds in ``stage`` (previewing for this edit version, or
    finalizing); an item that moved on meanwhile is left alone."""
    where = {"edit_version": job.edit_version} if stage == ItemStatus.PREVIEWING else None

    def write() -> bool:
        with rt.sessions.begin() as session:
            return states.transition(
                session, job.item_id, ItemStatus.FAILED, expected={stage}, where=where,
                error_code=code, error_message=message[:2000], worker=None,
                timings=_merged_timings(session, job.item_id, job.timings),
            )

    failed = _retrying(rt, write, "fail item")
    if failed:
        nudge(rt.settings.redis_url, job.batch_id)
    return failed
