"""The recipe's JSON shape as Pydantic models: Cost, Edits and Recipe.

``shared.recipe.parse.parse_recipe`` validates a request's recipe through ``Recipe`` (types, enums,
ranges, unknown fields) and then does what needs the model or the catalogue in code (allowed
resolutions, edit names). The OpenAPI components of the same names are generated from these
models (``web.openapi_components``), so the document and the checks cannot drift apart.

A field typed ``X`` with the default ``None`` may be left out but is never null (the default is
the model's own cost, filled in by ``parse_recipe``); ``X | None`` may also be null.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, TypeAdapter
from pydantic_core import PydanticCustomError
from typing_extensions import TypeAliasType

from shared.catalog.costs import CHANNEL_RATIOS

__all__ = ["CHANNEL_RATIOS", "FACE_MODES", "MAX_REFINE_STEPS", "OUTPUTS", "Cost", "Edits", "Recipe"]

OUTPUTS = ("photo", "crop")
FACE_MODES = ("largest", "all")
MAX_REFINE_STEPS = 200


def _not_bool(value):
    """``True == 1.0``: without this a boolean would pass as channel ratio 1.0."""
    if isinstance(value, bool):
        raise PydanticCustomError("literal_error", "a boolean is not a channel ratio")
    return value


ChannelRatio = Annotated[Literal[CHANNEL_RATIOS], BeforeValidator(_not_bool)]
EditValue = Annotated[float, Field(ge=-1, le=1, allow_inf_nan=False)]
Edits = TypeAliasType("Edits", Annotated[dict[str, EditValue], Field(
    description="attribute (alias, CelebA name or boundary key), generator direction "
                "(sefa_NN, pca_NN) or one of my directions (name or user:name) -> value in [-1, 1]",
)])

EDITS = TypeAdapter(Edits, config=ConfigDict(strict=True))


class Cost(BaseModel):
    """A sub-network: channel ratio and output resolution. In a recipe a missing field is the
    model's default; in answers both are there."""

    model_config = ConfigDict(extra="forbid", strict=True)

    channels: ChannelRatio = None
    resolution: int = Field(None, description="a power of two from 128 (or half a small "
                                              "model's size) up to the model's own")


class Recipe(BaseModel):
    """What to do to every photo of a batch (every field optional)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    edits: Edits | None = None
    preview: Cost | None = None
    final: Cost | None = None
    auto_finalize: bool = False
    output: Literal[OUTPUTS] = "photo"
    faces: Literal[FACE_MODES] = "largest"
    refine_steps: int = Field(0, ge=0, le=MAX_REFINE_STEPS, description="optimisation steps "
                              "on W+ for finals; 0 = the encoder alone")
    keep_format: bool = Field(False, description="finals of photos written in the upload's "
                              "own format")


RECIPE_FIELDS = frozenset(Recipe.model_fields)
