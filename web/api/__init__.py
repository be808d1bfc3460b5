"""REST API v1 (``/api/v1``): the contract of DESIGN.md, extended.

Routes live in ``batches``, ``items`` and ``meta``; ``web/openapi.py`` describes every one of them.
Every route needs a token except the public descriptions (``PUBLIC_ENDPOINTS``).
"""

from __future__ import annotations

from flask import Blueprint, request

from shared.models import User
from web.auth import authenticate
from web.extensions import db

bp = Blueprint("api", __name__, url_prefix="/api/v1")

# Descriptions of the service that reveal nothing about anyone's data.
PUBLIC_ENDPOINTS = frozenset({"api.openapi_document", "api.list_attributes", "api.current_model"})


@bp.before_request
def _require_user() -> None:
    if request.method == "OPTIONS" or request.endpoint in PUBLIC_ENDPOINTS:
        return
    authenticate(db())


def current_user() -> User:
    return authenticate(db())


# Route modules register themselves on ``bp`` when imported.
from web.api import batches, events, items, meta, tokens  # noqa: E402, F401
