"""Synthesis batches (``POST /api/v1/batches`` with a JSON body: seeds or a count, truncation,
style mixing, a model) and the model configs this deployment serves (``GET /api/v1/models``).

The checks live in ``shared.commands.synthesis``; this module turns a request into them and answers.
"""

from __future__ import annotations

import logging

from flask import request

from shared.catalog.configs import ModelConfig, UnknownConfigError, get_model_config
from shared.catalog.directions import generator_directions
from shared.codes.errors import RequestErrorCode
from shared.commands.availability import live_models, outage, outages
from shared.commands.synthesis import create_synthesis_batch, parse_request
from shared.items.webhooks import WebhookUrlError, check_destination, check_url
from shared.recipe.batch_names import NAME_FIELD, parse_batch_name
from shared.recipe.parse import model_default_costs
from shared.store.tables import User
from web import idempotency
from web.api.blueprint import bp
from web.api.meta import measured_costs
from web.api.serialize import created_dict
from web.errors import ApiError
from web.extensions import db, services

log = logging.getLogger(__name__)
WEBHOOK_FIELD = "webhook_url"


def _webhook(body: dict, user: User) -> str | None:
    url = body.pop(WEBHOOK_FIELD, None)
    if url is None:
        return None
    if not isinstance(url, str):
        raise ApiError(400, RequestErrorCode.INVALID_WEBHOOK_URL, "must be a string", WEBHOOK_FIELD)
    try:
        check_url(url)
        check_destination(url, services().settings.webhook_allow_private, unresolvable_ok=True)
    except WebhookUrlError as exc:
        raise ApiError(400, RequestErrorCode.INVALID_WEBHOOK_URL, str(exc), WEBHOOK_FIELD) from None
    if not user.webhook_secret:
        raise ApiError(409, RequestErrorCode.WEBHOOK_SECRET_MISSING,
                       "make a webhook secret first (POST /api/v1/webhooks/secret)", WEBHOOK_FIELD)
    return url


def submit_synthesis(user: User):
    """A batch of new images from seeds: 201 with the items and the seeds they carry."""
    svc = services()
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ApiError(400, RequestErrorCode.INVALID_JSON, "the body must be a JSON object", "body")
    key = idempotency.key_from(request)
    webhook_url = _webhook(body, user)
    name = parse_batch_name(body.pop(NAME_FIELD, None))  # 400 invalid_name (web.errors)
    parsed = parse_request(body, svc.settings, db(), user.id)
    asked = {"synthesis": body, "name": name} if name else {"synthesis": body}
    return idempotency.create_once(
        user.id, key, idempotency.fingerprint(asked, webhook_url, []),
        lambda: create_synthesis_batch(svc.batches, user.id, parsed, webhook_url, name), _created)


def _created(batch) -> dict:
    out = created_dict(batch)
    seeds = {i.id: (i.synthesis or {}).get("seed") for i in batch.items}
    for item in out["items"]:
        item["seed"] = seeds.get(item["id"])
    out["model"] = batch.model_name
    out["seeds"] = [item["seed"] for item in out["items"]]
    return out


def model_entry(config: ModelConfig, settings) -> dict:
    """What a client needs to choose a config: resolution, costs (measured ones: each with its
    PSNR against the full render, those below the bar marked untrained), installed files, edits."""
    weights_dir, default = settings.weights_dir, settings.model
    preview, final = model_default_costs(config, weights_dir, settings.preview_min_psnr)
    directions = [d["key"] for d in generator_directions(weights_dir, config.name)]
    files = {kind: _installed(weights_dir, config, kind)
             for kind in ("encoder", "boundary", "discriminator")}
    return {
        "name": config.name,
        "default": config.name == default,
        "resolution": config.resolution,
        "pretrained": config.pretrained,
        "description": config.description,
        "files": {**files, "directions": bool(directions)},
        "directions": directions,
        "photos": config.name == default,  # uploads go to the default config (face aligned)
        "default_costs": {"preview": preview.as_dict(), "final": final.as_dict()},
        "preview_min_psnr": settings.preview_min_psnr,
        "costs": measured_costs(config, settings),
    }


def _installed(weights_dir: str, config: ModelConfig, kind: str) -> bool:
    from pathlib import Path

    try:
        return (Path(weights_dir) / config.filename(kind)).is_file()
    except (KeyError, ValueError):  # a kind this config never has
        return False


@bp.get("/models")
def list_models():
    """The configs that have a live worker now (a batch may name any of them), and those that
    have none with the reason (the default config always, when it has none)."""
    settings = services().settings
    names = sorted(live_models(db(), settings))
    out = []
    for name in names:
        try:
            config = get_model_config(name, settings.weights_dir)
        except UnknownConfigError:  # a worker of a config this web process does not know
            log.warning("a worker serves %s, which is not in this catalogue", name)
            continue
        out.append(model_entry(config, settings))
    down = outages(db(), settings)
    if settings.model not in names and all(o.model != settings.model for o in down):
        down.insert(0, outage(db(), settings, settings.model))
    return {"models": out, "default": settings.model, "unavailable": [o.as_dict() for o in down]}
