"""Evaluations of a model (FID, PPL, consistency): the request, one evaluation, a list."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.commands.evaluations import DATA_NAME, KINDS, EvaluationStatus
from shared.recipe.schema import CHANNEL_RATIOS
from web.schemas.common import DateTime, Failure, Id, ModelRef, Url


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
    error: Failure | None
    worker: str | None
    attempts: int
    created_at: DateTime | None
    started_at: DateTime | None
    finished_at: DateTime | None
    shared: bool = Field(description="the operator shared it with every user "
                         "(`flask --app web evaluations share`); else only its owner reads it")
    url: Url


class EvaluationList(BaseModel):
    model: str
    evaluations: list[Evaluation]
