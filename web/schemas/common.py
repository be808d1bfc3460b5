"""Pieces every answer of the API shares: ids, URLs, times, errors, a model reference, costs.

Answer models describe JSON that ``web.api`` builds as plain dicts (``web.api.serialize``); the
OpenAPI components are generated from them and, with ``VALIDATE_RESPONSES`` on (the tests), every
answer is checked against them (``web.response_check``). A field typed ``X`` with the default
``None`` may be absent but is never null; ``X | None`` may be null.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field

from shared.codes.errors import ErrorCode, RequestErrorCode
from shared.recipe.schema import CHANNEL_RATIOS, Cost

ERROR_CODES = tuple(sorted({c.value for c in ErrorCode} | {c.value for c in RequestErrorCode}))

ID_PATTERN = "^[0-9a-f]{32}$"
Id = Annotated[str, Field(pattern=ID_PATTERN)]
Url = Annotated[str, Field(json_schema_extra={"format": "uri"})]
DateTime = Annotated[str, Field(json_schema_extra={"format": "date-time"})]


class ErrorDetail(BaseModel):
    code: Literal[ERROR_CODES]
    message: str
    field: str = Field(None, description="the request field to blame")


class Error(BaseModel):
    """Every 4xx and 5xx of the API (more keys may say more, e.g. ``strip_status``)."""

    error: ErrorDetail


class Failure(BaseModel):
    """Why an item or an evaluation failed: a stable code and its text."""

    code: str
    message: str


class ModelRef(BaseModel):
    name: str
    pretrained: bool | None = Field(description="null: a model no longer in the catalogue")


class DefaultCosts(BaseModel):
    preview: Cost
    final: Cost


class CostMacs(BaseModel):
    """One allowed sub-network: its multiply-accumulates (also relative to the full model) and
    its measured agreement with the full render (null when the model was never measured)."""

    channels: Literal[CHANNEL_RATIOS]
    resolution: int
    macs: int
    relative: float
    psnr: float | None = Field(None, description="dB against the full render box-filtered to "
                               "this resolution; 100 = identical")
    lpips: float | None = Field(None, description="LPIPS (VGG) against the same, when measured")
    untrained: bool | None = Field(None, description="PSNR below ANYCOST_PREVIEW_MIN_PSNR: a "
                                   "preview at this cost may not match the final")
