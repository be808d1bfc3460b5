"""Warm re-edits: the preview of an edit to an item this process rendered before, rendered
before it is taken.

A re-edit's message carries the state its edit wrote (``states.NewPreview.render_state``: the
edits, the per-face overrides, the preview cost), and this process keeps what does not change
between edits of an item it stored a preview for: its batch, recipe and owner, the upload, and
the stored latent with its faces' alignments (``WarmItems``). With both, the preview needs no
read before the render: it goes to the preview lane as soon as it is encoded, and one
transaction afterwards takes and completes it together (``store.complete_preview``: only
while the item is still at that version and nobody holds it).

What the take gave the cold path, and why a warm preview does not need it:
- *the state to render*: the message's, exactly what the edit's UPDATE returned; a later edit
  changes the version, and the guarded completion then drops this one.
- *a charged attempt*: the cache lives in this process only, so after a crash (the one thing a
  charge guards against) the redelivered message finds no warm entry and is taken as before.
- *who holds it*: nobody, until the completion; a duplicate of the message taken meanwhile by a
  worker makes the completion lose, and its own result is stored instead.
Edits that name a user's saved directions are rendered cold (their vectors are read in the
take). A completion that finds the item unlike the entry (no projection stored, a latent of
another model, or other bytes: a duplicate delivery elsewhere stored its own encoding last) is
not stored; the caller renders the item again, cold.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass

import torch

from shared.catalog.directions import USER_PREFIX
from shared.recipe.parse import Cost, Recipe
from worker.render import stages
from worker.render.job import RenderJob

log = logging.getLogger(__name__)

#: Items kept per process: an entry is a few small objects and the latent (~36 kB a face).
MAX_ITEMS = 512


@dataclass(frozen=True)
class WarmItem:
    """What a preview of the item needs besides its edits and cost, as of its last stored
    preview in this process."""

    batch_id: str
    owner_id: int
    model_name: str | None
    recipe: Recipe
    upload_blob_id: str | None
    synthesis: dict | None
    latent: torch.Tensor  # [F, L, S], never written in place (edits make new tensors)
    latent_digest: str  # of its bytes as stored (the completion compares the stored ones)
    face_meta: tuple

    @classmethod
    def of(cls, job: RenderJob) -> WarmItem:
        latent = job.latent.detach().float().contiguous()
        return cls(job.batch_id, job.owner_id, job.model_name, job.recipe, job.upload_blob_id,
                   job.synthesis, latent, latent_digest(stages.latent_to_bytes(latent)[0]),
                   tuple(job.face_meta))


def latent_digest(data: bytes) -> str:
    """What identifies a latent's stored bytes (``latents.data``)."""
    return hashlib.sha256(data).hexdigest()


class WarmItems:
    """This process's warm items, least recently used out first beyond ``max_items``."""

    def __init__(self, max_items: int = MAX_ITEMS):
        self.max_items = max_items
        self._entries: OrderedDict[str, WarmItem] = OrderedDict()
        self._lock = threading.Lock()

    def remember(self, job: RenderJob) -> None:
        """After ``job``'s preview is stored: its item's next edit may render warm."""
        if job.latent is None or job.user_directions:
            return
        with self._lock:
            self._entries[job.item_id] = WarmItem.of(job)
            self._entries.move_to_end(job.item_id)
            while len(self._entries) > self.max_items:
                self._entries.popitem(last=False)

    def forget(self, item_id: str) -> None:
        with self._lock:
            self._entries.pop(item_id, None)

    def jobs(self, pairs: list[tuple[str, int]], render_states: Mapping[str, object]
             ) -> list[RenderJob]:
        """The jobs, not taken, of a message's (item_id, edit_version) pairs that are warm here
        and whose message carried their edit's state (``render_states``: item id -> state)."""
        found = (self.job(str(i), int(v), render_states[str(i)])
                 for i, v in pairs if str(i) in render_states)
        return [job for job in found if job is not None]

    def job(self, item_id: str, version: int, state) -> RenderJob | None:
        """The preview job of ``item_id`` at ``version`` with the message's ``state``; None
        (render it cold) when the item is not warm here or the state is not one this path
        renders (user directions, or anything malformed: the take reads the item's own)."""
        with self._lock:
            entry = self._entries.get(item_id)
            if entry is not None:
                self._entries.move_to_end(item_id)
        if entry is None or not isinstance(state, Mapping):
            return None
        try:
            edits = _edits(state.get("edits"), entry.recipe.edits)
            face_edits = {str(k): _edits(v, {}) for k, v in (state.get("face_edits") or {}).items()
                          if v is not None}
            raw_cost = state["preview_cost"]
            cost = Cost(channels=float(raw_cost["channels"]),
                        resolution=int(raw_cost["resolution"]))
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            log.warning("preview of %s v%d: unusable state in its message (%s); taken cold",
                        item_id, version, exc)
            return None
        keys = set(edits).union(*(set(e) for e in face_edits.values()))
        if any(k.startswith(USER_PREFIX) for k in keys):
            return None
        return RenderJob(
            item_id=item_id, batch_id=entry.batch_id, edit_version=version, recipe=entry.recipe,
            edits=edits, face_edits=face_edits, cost=cost, upload_blob_id=entry.upload_blob_id,
            synthesis=entry.synthesis, model_name=entry.model_name, owner_id=entry.owner_id,
            latent=entry.latent, needs_projected=False, face_meta=list(entry.face_meta),
            attempt=0, charged=False, warm_latent_digest=entry.latent_digest,
        )


def _edits(raw, default: Mapping) -> dict[str, float]:
    """Edits as the take would read them from the item (the batch's ``default`` when None)."""
    if raw is None:
        return dict(default)
    if not isinstance(raw, Mapping) or not all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in raw.values()):
        raise TypeError("edits must map names to numbers")
    return {str(k): v for k, v in raw.items()}
