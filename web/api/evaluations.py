"""Evaluation routes: start a FID, PPL or consistency job of a model, list and poll them (a
user sees only their own; how many may be active is limited, ``shared.commands.evaluations``)."""

from __future__ import annotations

from flask import request, url_for

from shared.catalog.configs import ModelConfig, UnknownConfigError, get_model_config
from shared.commands.evaluations import Evaluations
from web.api.blueprint import bp, current_user
from web.api.serialize import evaluation_dict
from web.errors import ApiError
from web.extensions import db, services


def _model(model_name: str) -> ModelConfig:
    try:
        return get_model_config(model_name)
    except UnknownConfigError as exc:
        raise ApiError(404, "not_found", str(exc)) from None


def evaluations() -> Evaluations:
    svc = services()
    return Evaluations(svc.settings, svc.sessions, svc.dispatcher)


@bp.post("/models/<model_name>/evaluations")
def create_evaluation(model_name: str):
    model = _model(model_name)
    body = request.get_json(silent=True)
    if body is None:
        raise ApiError(400, "invalid_parameter", "the body must be a JSON object", "body")
    owner_id = current_user().id
    evaluation_id = evaluations().create(owner_id, model, body)
    evaluation = evaluations().get(db(), model.name, evaluation_id, owner_id)
    location = url_for("api.get_evaluation", model_name=model.name, evaluation_id=evaluation_id)
    return evaluation_dict(evaluation), 202, {"Location": location}


@bp.get("/models/<model_name>/evaluations")
def list_evaluations(model_name: str):
    model = _model(model_name)
    rows = evaluations().list(db(), model.name, current_user().id)
    return {"model": model.name, "evaluations": [evaluation_dict(e) for e in rows]}


@bp.get("/models/<model_name>/evaluations/<evaluation_id>")
def get_evaluation(model_name: str, evaluation_id: str):
    model = _model(model_name)
    return evaluation_dict(evaluations().get(db(), model.name, evaluation_id, current_user().id))
