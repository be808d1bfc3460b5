"""The direction explorer's renders: one item's first face along one direction, as one strip.

A strip row (``shared.store.tables.DirectionStrip``) names the item, the direction (stored key) and
the values (-1 .. +1). Each frame is the item's stored code with its current edits (the first
face's override when it has one), the explored direction set to the frame's value, rendered at
the strip's (preview) cost in one forward pass; the frames go side by side into one PNG. The row moves queued -> done (with the image) or
failed (with a message) by guarded updates, so a duplicate delivery renders nothing twice.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import torch
from sqlalchemy import update

from shared.recipe.parse import Cost
from shared.store.tables import DirectionStrip, Item, utcnow
from worker.render import counters, stages
from worker.render.edit_inputs import item_edits, item_face_edits, stored_latent, user_directions
from worker.render.images import PNG, encode_png, to_uint8
from worker.render.per_face import edits_per_face
from worker.render.runtime import Runtime

log = logging.getLogger(__name__)


def _finish(rt: Runtime, strip_id: str, image: bytes | None, error: str | None) -> bool:
    """queued -> done/failed, storing the image in the same transaction; False if it lost."""
    with rt.sessions() as session:
        values: dict = {"status": "failed" if image is None else "done", "updated_at": utcnow(),
                        "error_message": error}
        if image is not None:
            blob = rt.blobs.put(session, image, PNG)
            session.flush()
            values["blob_id"] = blob.id
        won = session.execute(
            update(DirectionStrip).where(DirectionStrip.id == strip_id,
                                         DirectionStrip.status == "queued")
            .values(**values).execution_options(synchronize_session=False)
        ).rowcount
        if not won:
            session.rollback()
            return False
        session.commit()
        return True


def _frames(rt: Runtime, strip_id: str) -> np.ndarray:
    """The strip's frames ``[steps, R, R, 3]`` uint8 (first face of the item)."""
    with rt.sessions() as session:
        strip = session.get(DirectionStrip, strip_id)
        item = session.get(Item, strip.item_id)
        latent = stored_latent(rt, item)
        if latent is None:
            raise LookupError(f"the item has no code from model {rt.model_name}")
        first = edits_per_face(item_edits(item, item.batch), item_face_edits(item), 1)[0]
        base = {k: v for k, v in first.items() if k != strip.direction}
        extra = user_directions(rt, session, item.batch.owner_id, [*base, strip.direction])
        key, values, cost = strip.direction, list(strip.values), Cost(**strip.cost)
    face = latent[:1]  # [1, L, S]
    with rt.inference():
        codes = torch.cat([
            stages.edit(rt.bundle, face, {**base, key: float(v)} if v else base, extra)
            for v in values
        ])
        images = stages.render(rt.bundle, codes, cost)
    return to_uint8(images)


def run_strip(rt: Runtime, strip_id: str) -> str:
    """Render one strip; returns its final status (or 'skipped' when it was not queued)."""
    with rt.sessions() as session:
        strip = session.get(DirectionStrip, strip_id)
        if strip is None or strip.status != "queued":
            log.info("strip %s skipped: gone or already rendered", strip_id)
            return "skipped"
        cost = Cost(**strip.cost)
    started = time.perf_counter()
    try:
        frames = _frames(rt, strip_id)
    except Exception as exc:  # one bad strip fails alone, with a message the page can show
        log.warning("strip %s failed: %s", strip_id, exc)
        return "failed" if _finish(rt, strip_id, None, f"{type(exc).__name__}: {exc}") else "skipped"
    counters.observe_render(cost, time.perf_counter() - started, len(frames))
    image = encode_png(np.concatenate(list(frames), axis=1))  # [R, steps * R, 3]
    return "done" if _finish(rt, strip_id, image, None) else "skipped"
