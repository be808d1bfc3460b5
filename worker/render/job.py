"""The render's data: one item taken by this worker for a preview or a final (ids, recipe, edits,
cost) and what the stages make of it (codes, crops, images, timings, quality), until it is stored.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from shared.recipe.parse import Cost, Recipe
from worker.anycost.directions import Direction
from worker.render.per_face import edits_per_face


@dataclass
class RenderJob:
    """One item taken by this worker for a preview or a final, and what the stages made of it."""

    item_id: str
    batch_id: str
    edit_version: int
    recipe: Recipe
    edits: dict[str, float]
    cost: Cost  # the cost this job renders at (preview or final)
    upload_blob_id: str | None  # None: a synthesised item (its code comes from ``synthesis``)
    # Per-face overrides of ``edits`` (item.face_edits): face index as text -> edits
    face_edits: dict[str, dict[str, float]] = field(default_factory=dict)
    synthesis: dict | None = None  # seed spec of a synthesised item (shared.commands.synthesis)
    upload_type: str | None = None  # the upload's media type (finals with recipe keep_format)
    model_name: str | None = None  # the batch's model config
    owner_id: int = 0  # the batch's owner (the fair queue is per user); set by every take
    latent: torch.Tensor | None = None  # [F, L, S] when already stored (re-edit, final)
    # The batch owner's own directions among the edits (stored key 'user:<name>' -> Direction)
    user_directions: dict[str, Direction] = field(default_factory=dict)
    needs_projected: bool = True
    attempt: int = 1  # takes charged to the item (alone), this one included when charged
    # Taken again after a worker died holding it in a group (or marked so by the reaper): it
    # may be the culprit, so it is rendered alone (worker.render.pipeline._isolate_retakes).
    retaken: bool = False
    charged: bool = True  # False: taken in a group, no take charged to it (yet)
    # Rendered before any take (worker.render.warm) from the remembered latent of this digest;
    # stored by one take-and-complete, only if the stored latent is still that one.
    warm_latent_digest: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    # Filled by the stages:
    crops: list = field(default_factory=list)
    face_meta: list = field(default_factory=list)
    images: dict[str, bytes] = field(default_factory=dict)  # "preview"/"projected"/"final" -> bytes
    mimes: dict[str, str] = field(default_factory=dict)  # kind -> media type (PNG when absent)
    photo: object = None  # the decoded upload [H, W, 3] uint8, once read (output "photo")
    preview_cost: Cost | None = None  # finals: the cost of the item's last preview
    targets: object = None  # aligned faces [F, R, R, 3] uint8 for an encoder-less projection
    renders: dict = field(default_factory=dict)  # float renders kept for the quality measures
    projection: dict | None = None  # how this pass projected the face (shared.items.quality)
    realism: dict[str, float | None] = field(default_factory=dict)  # kind -> D logit
    consistency: dict | None = None  # final vs last preview
    error: tuple[str, str] | None = None  # (code, message) once the item has failed
    done: bool = False  # completed or failed: nothing more to do

    @property
    def warm(self) -> bool:
        return self.warm_latent_digest is not None

    def add_time(self, stage: str, seconds: float) -> None:
        self.timings[stage] = round(self.timings.get(stage, 0.0) + seconds, 6)

    def edits_per_face(self, n: int | None = None) -> list[dict[str, float]]:
        """The edits of each face (row of the latent; ``n`` defaults to its row count): the
        face's override where it has one, else the item's edits. Every stage that edits the
        code uses this, so the row-wise rule lives in one place."""
        if n is None:
            n = 0 if self.latent is None else len(self.latent)
        return edits_per_face(self.edits, self.face_edits, n)

    def has_edits(self) -> bool:
        """Whether any face is edited (else the preview is the unedited projection)."""
        return any(self.edits_per_face())

    def edit_keys(self) -> set[str]:
        """Every stored edit key of the item and its faces' overrides."""
        return set(self.edits).union(*(set(e) for e in self.face_edits.values()))
