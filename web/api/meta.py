"""Descriptions of the service: attributes, the current model and its costs, the OpenAPI
document, and who the caller is."""

from __future__ import annotations

from functools import lru_cache

from flask import jsonify, request

from shared.catalog.configs import ModelConfig
from shared.catalog.edit_names import generator_entries
from shared.catalog.preview_costs import cost_figures
from shared.codes.attributes import ALIASES, ATTRIBUTES, EDIT_RANGE, bare_name
from shared.recipe.parse import CHANNEL_RATIOS, allowed_resolutions, model_default_costs
from web import openapi
from web.api.blueprint import bp, current_user
from web.extensions import services


@bp.get("/attributes")
def list_attributes():
    """The built-in attributes, and the model's own directions (SeFa, PCA) with their W+ slots.
    A user's own directions are listed by ``GET /api/v1/directions``."""
    by_key: dict[str, list[str]] = {}
    for alias, key in ALIASES.items():
        by_key.setdefault(key, []).append(alias)
    return {
        "attributes": [
            {"key": key, "name": bare_name(key), "aliases": by_key.get(key, [])}
            for key in ATTRIBUTES
        ],
        "aliases": dict(ALIASES),
        "range": list(EDIT_RANGE),
        "directions": generator_entries(services().settings),
    }


@lru_cache(maxsize=8)
def _cost_table(config: ModelConfig) -> tuple[dict, ...]:
    """MACs of every allowed (channels, resolution) sub-network, relative to the full model."""
    try:
        from shared.catalog.costs import generator_macs
    except ImportError:  # the cost model is optional for the API
        return ()

    def macs(channels: float, resolution: int) -> int:
        return generator_macs(
            config.resolution, channels, target_resolution=resolution,
            channel_multiplier=config.channel_multiplier, channel_max=config.channel_max,
            style_dim=config.style_dim,
        )

    try:
        full = macs(1.0, config.resolution)
        return tuple(
            {"channels": c, "resolution": r, "macs": (m := macs(c, r)), "relative": round(m / full, 4)}
            for c in CHANNEL_RATIOS for r in allowed_resolutions(config.resolution)
        )
    except ValueError:  # a config the cost model cannot describe
        return ()


def measured_costs(config: ModelConfig, settings) -> list[dict]:
    """Every allowed cost with its MACs and its measured figures (``psnr``, ``lpips``,
    ``untrained``; see ``shared.catalog.preview_costs``)."""
    bar = settings.preview_min_psnr
    return [{**entry, **cost_figures(config, settings.weights_dir, bar,
                                     (entry["channels"], entry["resolution"]))}
            for entry in _cost_table(config)]


@bp.get("/models/current")
def current_model():
    svc = services()
    config = svc.model
    preview, final = model_default_costs(config, svc.settings.weights_dir,
                                         svc.settings.preview_min_psnr)
    return {
        "name": config.name,
        "resolution": config.resolution,
        "pretrained": config.pretrained,
        "description": config.description,
        "edits_available": "boundary" in config.kinds,
        "channel_ratios": list(CHANNEL_RATIOS),
        "resolutions": allowed_resolutions(config.resolution),
        "default_costs": {"preview": preview.as_dict(), "final": final.as_dict()},
        "preview_min_psnr": svc.settings.preview_min_psnr,
        "costs": measured_costs(config, svc.settings),
    }


@bp.get("/openapi.json")
def openapi_document():
    return jsonify(openapi.document(server_url=request.host_url.rstrip("/")))


@bp.get("/me")
def whoami():
    user = current_user()
    return {"id": user.id, "username": user.username}
