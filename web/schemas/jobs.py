"""Evaluations of a model, synthesis batches (new images from seeds) and the served models."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.commands.evaluations import DATA_NAME, KINDS, EvaluationStatus
from shared.commands.synthesis import MAX_SEED
from shared.recipe.batch_names import MAX_NAME_CHARS
from shared.recipe.schema import CHANNEL_RATIOS, Recipe
from web.schemas.batches import BatchCreated, ItemRef
from web.schemas.common import CostMacs, DateTime, DefaultCosts, Id, JobError, ModelRef, Url

Seed = Annotated[int, Field(ge=0, le=MAX_SEED, description="NVIDIA's convention: "
                            "z = numpy.random.RandomState(seed).randn(1, 512)")]


class EvaluationRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal[KINDS]
    n: int = Field(ge=1, description="samples per cost (FID: at least 2; at most "
                                     "ANYCOST_EVAL_MAX_N)")
    channels: Literal[CHANNEL_RATIOS] = Field(None, description="only this channel ratio "
                                              "(default: every one; PPL: 1.0)")
    resolution: int = Field(None, description="only this resolution (default: every one; "
                                              "PPL: full)")
    seed: int = Field(0, ge=0)
    data: str = Field(None, pattern=DATA_NAME.pattern, description="FID only: a data set "
                      "folder under ANYCOST_EVAL_DATA_DIR on the workers (default: the full "
                      "model's own samples)")


class EvaluationResult(BaseModel):
    """metric, n, seed, settings used (data set, Inception sha256, LPIPS net ...) and
    ``results``: one entry per cost."""

    results: list[dict] = None


class Evaluation(BaseModel):
    id: Id
    model: ModelRef
    kind: Literal[KINDS]
    status: EvaluationStatus
    params: dict = Field(description="the request, defaults filled in")
    result: EvaluationResult | None
    error: JobError | None
    worker: str | None
    attempts: int
    created_at: DateTime | None
    started_at: DateTime | None
    finished_at: DateTime | None
    url: Url


class EvaluationList(BaseModel):
    model: str
    evaluations: list[Evaluation]


class Seeds(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seeds: list[Seed] = Field(min_length=1, description="at most ANYCOST_MAX_SEEDS")


class SeedCount(BaseModel):
    model_config = ConfigDict(extra="forbid")

    count: int = Field(ge=1, description="the service picks this many seeds (reported)")


class Mix(BaseModel):
    """Style mixing: W+ slots from from_slot on come from seed."""

    model_config = ConfigDict(extra="forbid")

    seed: Seed
    from_slot: int = Field(None, ge=0)


class SynthesisRequest(BaseModel):
    """New images from seeds (no photos): one item per seed; previews, edits, finals and the
    zip as for photos. The same request gives the same images."""

    model_config = ConfigDict(extra="forbid")

    synthesis: Seeds | SeedCount
    truncation: float = Field(0.7, ge=0, le=2, description="psi: w_avg + psi * (w - w_avg); "
                                                           "0 gives w_avg")
    mix: Mix = None
    model: str = Field(None, description="a config with a live worker (GET /api/v1/models); "
                                         "default: the service's ANYCOST_MODEL")
    recipe: Recipe = Field(None, description="as for photos; output is always crop")
    webhook_url: Url = None
    name: str = Field(None, max_length=MAX_NAME_CHARS,
                      description="the batch's name, as for photos (blank: none)")


class SynthesisItemRef(ItemRef):
    seed: Seed


class SynthesisCreated(BatchCreated):
    model: str
    seeds: list[Seed]
    items: list[SynthesisItemRef]


class ModelFiles(BaseModel):
    """Which files this config has installed."""

    encoder: bool
    boundary: bool
    discriminator: bool
    directions: bool


class ServedModel(BaseModel):
    name: str
    default: bool
    resolution: int
    pretrained: bool
    description: str
    files: ModelFiles
    directions: list[str]
    photos: bool = Field(description="photo uploads go to this config")
    default_costs: DefaultCosts
    costs: list[CostMacs]


class ServedModels(BaseModel):
    models: list[ServedModel]
    default: str
