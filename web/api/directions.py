"""Direction routes: a user's own directions (learn from examples, save a generator direction
under a name, list, delete) and the explorer's strips (previews of one item along a direction).

The generator's own directions (``sefa_NN``, ``pca_NN``) are listed publicly by
``GET /api/v1/attributes`` (``web.api.meta``); everything here is per user.
"""

from __future__ import annotations

from flask import Response, request, url_for

from shared.catalog.configs import UnknownConfigError, get_model_config
from shared.catalog.directions import generator_directions
from shared.commands.user_directions import describe_strip
from web.api.blueprint import bp, current_user
from web.errors import ApiError
from web.extensions import db, services


def _body() -> dict:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_body", "send a JSON object")
    return body


def _model(raw, field: str, code: str) -> str | None:
    """A model config's name as asked for (``?model=`` or the body's ``model``), checked
    against the catalogue; None when not given (the service's model)."""
    if raw is None:
        return None
    if not isinstance(raw, str) or not raw:
        raise ApiError(400, code, "model must be a model config's name (GET /api/v1/models)",
                       field)
    try:
        return get_model_config(raw, services().settings.weights_dir).name
    except UnknownConfigError as exc:
        raise ApiError(400, code, str(exc), field) from None


@bp.get("/directions")
def list_directions():
    """The directions of ``?model=`` (default: the service's model): its generator's and the
    caller's own for it."""
    svc = services()
    model = _model(request.args.get("model"), "model", "invalid_parameter") or svc.model.name
    return {
        "model": model,
        "generator": generator_directions(svc.settings.weights_dir, model),
        "user": svc.directions.listing(current_user().id, model),
    }


@bp.post("/directions")
def create_direction():
    """``{"name", "positive": [item ids], "negative": [item ids]}`` learns a direction of the
    examples' model; ``{"name", "source": "sefa_03"}`` keeps a generator direction under a name.
    ``model`` (optional): the model it is for (learning: must be the examples'; saving: whose
    generator direction, default the service's)."""
    svc = services()
    user = current_user()
    body = _body()
    model = _model(body.get("model"), "model", "invalid_body")
    if "source" in body:
        created = svc.directions.save(user.id, body.get("name"), body["source"], model)
    elif "positive" in body or "negative" in body:
        created = svc.directions.learn(user.id, body.get("name"), body.get("positive"),
                                       body.get("negative"), model)
    else:
        raise ApiError(400, "invalid_body", 'send {"name", "positive", "negative"} to learn a '
                       'direction or {"name", "source"} to save a generator direction')
    return created, 201


@bp.delete("/directions/<name>")
def delete_direction(name: str):
    """Delete one of the caller's directions of ``?model=`` (default: the service's model)."""
    model = _model(request.args.get("model"), "model", "invalid_parameter")
    services().directions.delete(current_user().id, name, model)
    return Response(status=204)


def _strip_dict(strip) -> dict:
    out = describe_strip(strip)
    out["url"] = url_for("api.get_strip", strip_id=strip.id, _external=True)
    out["image_url"] = (url_for("api.strip_image", strip_id=strip.id, _external=True)
                        if strip.status == "done" else None)
    return out


@bp.post("/items/<item_id>/strips")
def create_strip(item_id: str):
    """``{"direction": name, "steps": 7}`` -> previews at values -1 .. +1, rendered by a worker."""
    svc = services()
    body = _body()
    created = svc.directions.request_strip(current_user().id, item_id, body.get("direction"),
                                           body.get("steps"))
    strip = svc.directions.get_strip(db(), current_user().id, created["id"])
    return _strip_dict(strip), 202, {"Location": url_for("api.get_strip", strip_id=strip.id)}


@bp.get("/strips/<strip_id>")
def get_strip(strip_id: str):
    return _strip_dict(services().directions.get_strip(db(), current_user().id, strip_id))


@bp.get("/strips/<strip_id>/image")
def strip_image(strip_id: str):
    svc = services()
    session = db()
    strip = svc.directions.get_strip(session, current_user().id, strip_id)
    if strip.blob_id is None:
        raise ApiError(404, "not_ready", f"the strip is {strip.status}", strip_status=strip.status)
    data, content_type = svc.blobs.get(session, strip.blob_id)
    response = Response(data, mimetype=content_type if content_type == "image/png"
                        else "application/octet-stream")
    response.set_etag(strip.blob_id)
    response.headers["Cache-Control"] = "private, max-age=3600"  # a strip never changes
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
