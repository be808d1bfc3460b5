"""The API's blueprint and what every route shares: known query parameters and JSON fields
only, a signed-in user on every route but the public descriptions (``PUBLIC_ENDPOINTS``). Route
modules import ``bp`` from here (not from the package, which imports them)."""

from __future__ import annotations

from flask import Blueprint, request

from shared.codes.errors import RequestErrorCode
from shared.store.tables import User
from web import openapi
from web.auth import authenticate
from web.errors import ApiError
from web.params import check_known_query

bp = Blueprint("api", __name__, url_prefix="/api/v1")

# Descriptions of the service that reveal nothing about anyone's data.
PUBLIC_ENDPOINTS = frozenset({"api.openapi_document", "api.list_attributes", "api.current_model"})


@bp.before_request
def _known_query_only() -> None:
    """A misspelt parameter (``per_pag=5``) is an error, not silently the default."""
    if request.url_rule is None or request.method == "OPTIONS":
        return
    method = "GET" if request.method == "HEAD" else request.method
    check_known_query(request.url_rule.rule, method, request.args)


@bp.before_request
def _require_user() -> None:
    if request.method == "OPTIONS" or request.endpoint in PUBLIC_ENDPOINTS:
        return
    authenticate()


@bp.before_request
def _known_fields_only() -> None:
    """A misspelt JSON key (``{"label": ...}`` for ``name``) is an error, as in a recipe, not
    silently ignored. The keys are those of the body's model in ``web.schemas``."""
    if request.url_rule is None or not request.is_json:
        return
    known = openapi.body_fields(request.url_rule.rule, request.method)
    body = request.get_json(silent=True) if known is not None else None
    if not isinstance(body, dict):
        return  # no body, not JSON or not an object: the view says what it wants
    unknown = sorted(set(body) - known)
    if unknown:
        raise ApiError(400, RequestErrorCode.UNKNOWN_FIELD, f"unknown field {unknown[0]!r}; "
                       f"known: {', '.join(sorted(known))}", unknown[0])


def current_user() -> User:
    return authenticate()
