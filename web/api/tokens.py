"""The caller's credentials: API tokens (list, create, optionally expiring, revoke; a token made
with a token never outlives it, ``web.auth.issue_token``/``revoke_token``), the password
(a change ends every other session) and the secret that signs their webhooks. New tokens and
secrets are shown once, in the answer that makes them; only hashes (tokens) are kept."""

from __future__ import annotations

import flask_login
from flask import request, session
from sqlalchemy import select

from shared.items.webhooks import new_secret
from shared.store.tables import ApiToken, User
from web.api.blueprint import bp, current_user
from web.api.params import id_segment
from web.api.serialize import iso
from web.auth import (
    SESSION_EPOCH_KEY,
    SESSION_USER_KEY,
    check_password,
    hash_token,
    issue_token,
    revoke_token,
    set_password,
    token_is_live,
)
from web.errors import ApiError
from web.extensions import db, services
from web.ratelimit import rate_limits
from web.schemas.service import (
    MAX_EXPIRES_DAYS,
    MAX_PASSWORD_CHARS,
    MAX_TOKEN_NAME_CHARS,
    MIN_PASSWORD_CHARS,
)


def token_dict(row: ApiToken, current_hash: str | None = None) -> dict:
    return {
        "id": row.id, "name": row.name, "prefix": row.prefix,
        "created_at": iso(row.created_at), "last_used_at": iso(row.last_used_at),
        "expires_at": iso(row.expires_at), "live": token_is_live(row),
        "current": current_hash is not None and row.token_hash == current_hash,
    }


def _current_token_hash() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    return hash_token(value.strip()) if scheme.lower() == "bearer" and value.strip() else None


@bp.get("/tokens")
def list_tokens():
    rows = db().scalars(select(ApiToken).where(
        ApiToken.user_id == current_user().id, ApiToken.revoked_at.is_(None),
    ).order_by(ApiToken.id)).all()
    current = _current_token_hash()
    return {"tokens": [token_dict(row, current) for row in rows]}


def _token_request() -> tuple[str | None, int | None]:
    body = request.get_json(silent=True) if request.content_length else {}
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_body", 'send JSON {"name": ..., "expires_days": N}')
    name = body.get("name")
    if name is not None and (not isinstance(name, str)
                             or not 1 <= len(name.strip()) <= MAX_TOKEN_NAME_CHARS):
        raise ApiError(400, "invalid_parameter", f"name is 1 to {MAX_TOKEN_NAME_CHARS} characters",
                       "name")
    days = body.get("expires_days")
    if days is not None and (isinstance(days, bool) or not isinstance(days, int)
                             or not 1 <= days <= MAX_EXPIRES_DAYS):
        raise ApiError(400, "invalid_parameter",
                       f"expires_days is an integer from 1 to {MAX_EXPIRES_DAYS}", "expires_days")
    return (name.strip() if name else None), days


@bp.post("/tokens")
def create_api_token():
    name, days = _token_request()
    user = current_user()
    current = _current_token_hash() if flask_login.current_user.via == "token" else None
    with services().sessions.begin() as session:
        # Made with a token: a child that expires no later and is revoked with it.
        parent = session.scalar(select(ApiToken).where(ApiToken.token_hash == current)) \
            if current else None
        token, row = issue_token(session, session.get(User, user.id), name, days, parent)
        body = {**token_dict(row), "token": token}
    return body, 201


@bp.delete("/tokens/<token_id>")
def revoke_api_token(token_id: str):
    # A plain segment (not <int:>) so the OpenAPI path is the Flask rule.
    number = id_segment(token_id)
    if number is None:
        raise ApiError(404, "not_found", "no such token")
    with services().sessions.begin() as session:
        if not revoke_token(session, current_user().id, number):
            raise ApiError(404, "not_found", "no such token")
    return "", 204


@bp.post("/webhooks/secret")
def rotate_webhook_secret():
    """A new signing secret; the old one stops signing at once."""
    secret = new_secret()
    with services().sessions.begin() as session:
        session.get(User, current_user().id).webhook_secret = secret
    return {"secret": secret}, 201


@bp.post("/me/password")
def change_password():
    """A new portal password. Every session signed before ends, except this request's own."""
    body = request.get_json(silent=True)
    current, new = (body.get("current_password"), body.get("new_password")) \
        if isinstance(body, dict) else (None, None)
    if not isinstance(current, str) or not isinstance(new, str):
        raise ApiError(400, "invalid_body",
                       'send JSON {"current_password": ..., "new_password": ...}')
    if not MIN_PASSWORD_CHARS <= len(new) <= MAX_PASSWORD_CHARS:
        raise ApiError(400, "invalid_parameter", f"the new password is {MIN_PASSWORD_CHARS} to "
                       f"{MAX_PASSWORD_CHARS} characters", "new_password")
    limits = rate_limits()
    if limits is not None:
        limits.check_auth_failures()
    user_id = current_user().id
    with services().sessions.begin() as db_session:
        user = db_session.get(User, user_id)
        if not check_password(user, current):
            if limits is not None:
                limits.record_auth_failure()
            raise ApiError(403, "wrong_password", "the current password is not right",
                           "current_password")
        set_password(db_session, user, new)
        db_session.refresh(user)
        epoch = user.session_epoch
    if session.get(SESSION_USER_KEY) == user_id and not request.headers.get("Authorization"):
        session[SESSION_EPOCH_KEY] = epoch  # the browser that changed it stays signed in
    return "", 204
