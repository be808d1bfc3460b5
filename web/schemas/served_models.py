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


class ServedModels(BaseModel):
    models: list[ServedModel]
    default: str
