"""Synthesis batches: new images from seeds (the request and the created batch)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from shared.commands.synthesis import MAX_SEED
from shared.recipe.batch_names import MAX_NAME_CHARS
from shared.recipe.schema import Recipe
from web.schemas.batches import BatchCreated, ItemRef
from web.schemas.common import Url

Seed = Annotated[int, Field(ge=0, le=MAX_SEED, description="NVIDIA's convention: "
                            "z = numpy.random.RandomState(seed).randn(1, 512)")]


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
