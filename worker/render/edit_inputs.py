"""What a render reads from an item's rows: its edits (the batch's recipe unless the item has
its own), per-face overrides, the owner's saved directions it names, and the stored latent with
its faces' alignments, when this worker's model made it."""

from __future__ import annotations

import logging

import torch
from sqlalchemy import select

from shared.catalog.directions import USER_PREFIX
from shared.store.tables import Batch, Item, Latent, UserDirection
from worker.anycost.directions import Direction
from worker.render.runtime import Runtime
from worker.render.stages import latent_from_bytes

log = logging.getLogger(__name__)


def item_edits(item: Item, batch: Batch) -> dict[str, float]:
    if item.edits is not None:
        return dict(item.edits)
    return dict(batch.recipe.get("edits") or {})


def item_face_edits(item: Item) -> dict[str, dict[str, float]]:
    """The item's per-face overrides (face index as text -> edits); {} when it has none."""
    return {str(k): dict(v) for k, v in (item.face_edits or {}).items() if v is not None}


def user_directions(rt: Runtime, session, owner_id: int, keys) -> dict[str, Direction]:
    """The owner's directions named by ``keys`` ('user:<name>') for this worker's model. One
    deleted meanwhile is left out: the edit then fails that item with the name in the message."""
    names = [k[len(USER_PREFIX):] for k in keys if k.startswith(USER_PREFIX)]
    if not names:
        return {}
    rows = session.scalars(select(UserDirection).where(
        UserDirection.owner_id == owner_id, UserDirection.model_name == rt.model_name,
        UserDirection.name.in_(names))).all()
    out = {}
    for row in rows:
        if row.vector is not None:
            try:
                out[USER_PREFIX + row.name] = Direction.make(row.vector, row.slots, row.gain)
            except (TypeError, ValueError) as exc:  # left out: the edit names it in the error
                log.warning("direction %s is unusable: %s", row.name, exc)
        elif row.source and rt.bundle.directions is not None:
            try:  # a saved generator direction: its vector is in the installed directions file
                vector = rt.bundle.directions.direction(row.source)
            except KeyError:
                log.warning("direction %s: %s is not installed", row.name, row.source)
                continue
            out[USER_PREFIX + row.name] = Direction.make(vector, row.slots, row.gain)
    return out


def stored_latent(rt: Runtime, item: Item) -> torch.Tensor | None:
    latent = _reusable_latent(rt, item)
    if latent is None:
        return None  # none yet, or encoded by another model: encode again
    return latent_from_bytes(latent.data, latent.shape, rt.device)


def face_meta(rt: Runtime, item: Item) -> list:
    """The stored faces' metadata (alignment transforms) of a latent this worker can reuse."""
    latent = _reusable_latent(rt, item)
    return [] if latent is None else list((latent.meta or {}).get("faces") or [])


def _reusable_latent(rt: Runtime, item: Item) -> Latent | None:
    """The item's stored latent when this worker's model made it."""
    latent = item.latent
    return latent if latent is not None and latent.model_name == rt.model_name else None
