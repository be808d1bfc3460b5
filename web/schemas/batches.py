"""Answers about batches and items (``web.api.serialize``), the rename and the edits requests."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field
from typing_extensions import TypeAliasType

from shared.codes.item_status import BATCH_STATUSES, ItemStatus
from shared.items.quality import PROJECTION_METHODS
from shared.recipe.batch_names import MAX_NAME_CHARS
from shared.recipe.schema import Cost, Edits, Recipe
from web.schemas.common import DateTime, Failure, Id, ModelRef, Url

BatchStatus = Literal[BATCH_STATUSES]
Counts = TypeAliasType("Counts", dict[str, int])
Fraction = Annotated[float, Field(ge=0, le=1)]


class ItemRef(BaseModel):
    id: Id
    filename: str
    status: ItemStatus


class Realism(BaseModel):
    """The discriminator's verdict on the rendered face(s): its logit (the mean over the item's
    faces) and sigmoid(logit) as a 0..1 score."""

    logit: float
    score: Fraction


class ItemRealism(BaseModel):
    """null inside when the model has no discriminator or the image is not rendered yet."""

    preview: Realism | None
    final: Realism | None


class Projection(BaseModel):
    """How the face was projected into W+: the encoder alone, the encoder then refine_steps of
    optimisation (finals), or, for configs without an encoder (projection_steps steps),
    NVIDIA's projector on one W code (w_projector, optionally followed by W+ steps) or a free
    W+ fit from w_avg (optimisation). error: MSE in [-1, 1] units against the aligned face at
    resolution, rendered as previews and finals are."""

    method: Literal[PROJECTION_METHODS]
    error: float = Field(ge=0)
    resolution: int = None
    error_start: float = Field(None, description="optimisation (either method): MSE at w_avg, before the first step")
    steps: int = Field(None, description="optimisation steps")
    distance: str = Field(None, description="w_projector: its distance (lpips_vgg or the "
                          "mse+l1_down4 fallback)")
    final_distance: float = Field(None, description="w_projector: that distance at the last step")
    error_before_refine: float = None
    refine_steps: int = None


class Consistency(BaseModel):
    """How close the final came to the item's last preview, compared at the preview's
    resolution: PSNR (dB, 100 = identical) and LPIPS (null when the LPIPS weights are not
    installed on the worker)."""

    psnr: float
    lpips: float | None = None
    resolution: int = None


class Face(BaseModel):
    """A face found in the photo: its box as fractions of the decoded photo's width and
    height."""

    box: Annotated[list[Fraction], Field(min_length=4, max_length=4,
                                         description="[x0, y0, x1, y1]")]


class Item(BaseModel):
    id: Id
    batch_id: Id
    position: int
    filename: str
    status: ItemStatus
    error: Failure | None
    original_url: Url | None
    projected_url: Url | None
    preview_url: Url | None
    final_url: Url | None
    edits: Edits
    edit_version: int
    attempts: int
    timings: dict[str, float]
    preview_cost: Cost
    preview_untrained: bool = Field(description="the preview cost was measured below "
                                    "ANYCOST_PREVIEW_MIN_PSNR: the preview may not match the final")
    final_cost: Cost
    model: ModelRef
    realism: ItemRealism
    projection: Projection | None
    consistency: Consistency | None
    seed: int | None = Field(description="a synthesised item's seed")
    synthesis: dict | None = Field(description="a synthesised item's spec: seed, truncation, "
                                               "mix_seed, mix_from_slot")
    faces: list[Face] | None = Field(description="the faces found in the photo, in latent "
                                                 "order; null until the first preview pass")
    face_edits: dict[str, Edits] = Field(description='per-face overrides of edits: "<face '
                                                     'index>" -> edits')
    created_at: DateTime
    updated_at: DateTime


class Batch(BaseModel):
    id: Id
    name: str | None = Field(description="the owner's label")
    status: BatchStatus
    progress: Fraction
    counts: Counts
    created_at: DateTime
    canceled_at: DateTime | None
    recipe: Recipe
    model: ModelRef
    download_url: Url
    items: list[Item]


class BatchSummary(BaseModel):
    id: Id
    name: str | None
    status: BatchStatus
    progress: Fraction
    counts: Counts
    item_count: int
    created_at: DateTime
    model: ModelRef
    url: Url


class BatchPage(BaseModel):
    batches: list[BatchSummary]
    page: int
    per_page: int
    total: int
    pages: int


class RefusedFile(BaseModel):
    """A photo an upload with ``partial=true`` left out, and why (the error it would have been)."""

    field: str = Field(description="the form field, files[<position>]")
    filename: str | None
    code: str
    message: str


class BatchCreated(BaseModel):
    """The answer to an upload: the batch and its items' first state."""

    id: Id
    name: str | None
    status: BatchStatus
    url: Url
    items: list[ItemRef]
    refused: list[RefusedFile] = Field(None, description="with partial=true only: the files "
                                       "left out of the batch")


class Accepted(BaseModel):
    """Work was queued: how many finals, or the item's new status and edit version."""

    id: Id
    status: ItemStatus = None
    queued: int = None
    edit_version: int = None


class Canceled(BaseModel):
    id: Id
    canceled: int = Field(description="how many items were canceled")


class BatchRename(BaseModel):
    """``PATCH /api/v1/batches/<id>``: the new name; null or blank clears it."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(max_length=MAX_NAME_CHARS, description="one line, no control "
                             "characters, stripped; null or blank: no name")


class EditsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    edits: Edits | None = Field(description="the item's new edits; with face: that face's "
                                "override ({} or null removes it)")
    preview: Cost = None
    face: int | None = Field(None, ge=0, description=(
        "with it, the edits become this face's override (its index in the item's faces) and "
        "the item's edits stay; without it (or null), the item's edits change and the overrides "
        "stay. 400 invalid_face for an index out of range, 409 not_ready before the first "
        "preview has found the faces"))
