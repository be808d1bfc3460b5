"""The model configs a deployment serves (GET /api/v1/models)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from web.schemas.common import CostMacs, DefaultCosts


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
    preview_min_psnr: float = Field(description="the bar (dB) a default preview meets")
    costs: list[CostMacs]


class UnavailableModel(BaseModel):
    """A model some worker reported but none serves now, with why and what to do."""

    name: str
    reason: str = Field(description="e.g. the loading error of its last worker")
    fix: str = Field(description="what an operator runs to make it servable")
    worker: str | None = Field(description="the worker whose report this is")
    reported_at: str | None = Field(description="when that worker last reported (UTC, ISO 8601)")


class ServedModels(BaseModel):
    models: list[ServedModel]
    default: str
    unavailable: list[UnavailableModel] = Field(
        description="models with no live worker (the default among them when it has none): "
                    "batches for them get 409 model_unavailable")
