"""Answers about the service and the caller: tokens, attributes, models, directions, strips."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.catalog.directions import MIN_EXAMPLES, NAME_PATTERN, SIDECAR_METHODS
from shared.commands.user_directions import (
    DEFAULT_STRIP_STEPS,
    DIRECTION_METHODS,
    STRIP_STATUSES,
    STRIP_STEPS,
)
from shared.recipe.schema import CHANNEL_RATIOS, Cost
from web.schemas.common import CostMacs, DateTime, DefaultCosts, Id, Url

DirectionName = Annotated[str, Field(pattern=NAME_PATTERN.pattern)]
MAX_TOKEN_NAME_CHARS = 80
MAX_EXPIRES_DAYS = 3650
MIN_PASSWORD_CHARS = 8
MAX_PASSWORD_CHARS = 1024


class Token(BaseModel):
    id: int
    name: str | None
    prefix: str
    created_at: DateTime
    last_used_at: DateTime | None
    expires_at: DateTime | None
    live: bool = Field(description="neither expired nor revoked")
    current: bool = Field(description="the token of this request")
    token: str = Field(None, description="the token itself: only when created")


class TokenList(BaseModel):
    tokens: list[Token]


class TokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(None, min_length=1, max_length=MAX_TOKEN_NAME_CHARS)
    expires_days: int = Field(None, ge=1, le=MAX_EXPIRES_DAYS)


class WebhookSecret(BaseModel):
    secret: str


class PasswordChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    current_password: str
    new_password: str = Field(min_length=MIN_PASSWORD_CHARS, max_length=MAX_PASSWORD_CHARS)


class Me(BaseModel):
    id: int
    username: str


class GeneratorDirection(BaseModel):
    """A direction computed from the generator when its weights were installed; an edit moves
    w[:, slots] += value * gain * direction."""

    key: str = Field(pattern="^((sefa|pca)_[0-9]{2}|(interfacegan|ganspace)_[a-z][a-z_]*)$")
    method: Literal[SIDECAR_METHODS]
    index: int = None
    label: str = Field(None, description="slider label, e.g. 'smile (InterFaceGAN)'")
    slots: list[int]
    gain: float
    sigma: float = None
    eigenvalue: float = None
    variance: float = None
    strength: float = Field(None, description="GANSpace: the published edit's strength "
                            "(std units); value 1 moves the coordinate by it")


class Attribute(BaseModel):
    key: str
    name: str
    aliases: list[str]


class Attributes(BaseModel):
    attributes: list[Attribute]
    aliases: dict[str, str]
    range: list[float]
    directions: list[GeneratorDirection]


class CurrentModel(BaseModel):
    name: str
    resolution: int
    pretrained: bool
    description: str
    edits_available: bool
    channel_ratios: list[Literal[CHANNEL_RATIOS]]
    resolutions: list[int]
    default_costs: DefaultCosts
    preview_min_psnr: float
    costs: list[CostMacs]


class UserDirection(BaseModel):
    """A user's own direction; use it in edits as name or key."""

    key: str = Field(description="user:<name>")
    name: DirectionName
    model: str = Field(description="the model config it edits (a slider of that model's items)")
    method: Literal[DIRECTION_METHODS]
    source: str | None
    slots: list[int]
    gain: float
    accuracy: float = None
    margin: float = None
    positive: list[Id] = None
    negative: list[Id] = None
    created_at: DateTime


class Directions(BaseModel):
    model: str
    generator: list[GeneratorDirection]
    user: list[UserDirection]


class LearnDirection(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    positive: list[Id] = Field(min_length=MIN_EXAMPLES, description="items that have the attribute "
                                                         "(previewed: codes stored)")
    negative: list[Id] = Field(min_length=MIN_EXAMPLES, description="items that lack it")
    model: str = Field(None, description="the examples' model (optional: it is theirs; all "
                       "examples must be items of one model)")


class SaveDirection(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    source: str = Field(description="a generator direction, e.g. sefa_03")
    model: str = Field(None, description="the model whose generator direction it is "
                       "(default: the service's)")


class StripRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    direction: str = Field(description="any edit name")
    steps: int = Field(DEFAULT_STRIP_STEPS, ge=STRIP_STEPS[0], le=STRIP_STEPS[1])


class Strip(BaseModel):
    """Previews of one item along one direction, frames side by side."""

    id: Id
    item_id: Id
    direction: str
    values: list[float]
    cost: Cost
    status: Literal[STRIP_STATUSES]
    error: str | None
    url: Url
    image_url: Url | None
