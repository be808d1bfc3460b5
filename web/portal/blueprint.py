"""The portal blueprint object, its hooks (CSRF, security headers) and page-wide template values
(the signed-in user, the CSRF field, the random-weights banner, the banner of a model that no
worker serves, with the worker's reason and the fix)."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

from flask import Blueprint, jsonify, render_template, request
from sqlalchemy import select

from shared.commands.availability import Outage, outage
from shared.store.tables import WorkerHeartbeat, utcnow
from web.portal.auth import signed_in
from web.portal.costs import format_macs
from web.portal.csrf import check_csrf, csrf_field, csrf_token
from web.portal.present import page_config
from web.portal.services import services

log = logging.getLogger(__name__)
WEB_DIR = Path(__file__).resolve().parent.parent

bp = Blueprint(
    "portal", __name__,
    template_folder=str(WEB_DIR / "templates"),
    static_folder=str(WEB_DIR / "static"),
    static_url_path="/portal/static",
)
bp.before_request(check_csrf)


def random_weights_notice() -> str | None:
    """A plain sentence when renders come (or will come) from random weights, else None."""
    svc = services()
    model = svc.model
    if not model.pretrained:
        return (f"The model \u201c{model.name}\u201d has random weights: pictures are not real "
                "edits of your faces. Install pretrained weights for real results.")
    try:
        since = utcnow() - timedelta(seconds=svc.settings.heartbeat_timeout)
        with svc.sessions() as db:
            names = db.scalars(select(WorkerHeartbeat.model_name).where(
                WorkerHeartbeat.last_seen >= since, WorkerHeartbeat.pretrained.is_(False),
                WorkerHeartbeat.load_error.is_(None))).all()  # a failed worker renders nothing
    except Exception as exc:  # a banner must never break a page
        log.warning("could not read worker heartbeats: %s", exc)
        return None
    if names:
        return (f"A worker is rendering with random weights ({', '.join(sorted(set(names)))}): "
                "pictures are not real edits of your faces.")
    return None


def model_outage(model: str | None = None) -> Outage | None:
    """Why ``model`` (default: the service's) has no live worker, or None when it has one."""
    svc = services()
    try:
        with svc.sessions() as db:
            return outage(db, svc.settings, model or svc.settings.model)
    except Exception as exc:  # a banner must never break a page
        log.warning("could not read worker heartbeats: %s", exc)
        return None


@bp.app_template_filter("log2")
def log2_filter(value) -> int:
    return int(value).bit_length() - 1


@bp.app_template_filter("macs")
def macs_filter(value) -> str:
    return format_macs(value)


@bp.app_template_filter("seconds")
def format_seconds(value) -> str:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return ""
    if value < 0.001:
        return "< 1 ms"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


@bp.context_processor
def page_values() -> dict:
    return {
        "user": signed_in(),
        "csrf_field": csrf_field,
        "csrf_token": csrf_token,
        "model_notice": random_weights_notice(),
        "page_config": page_config(),
        # Pages about another model's batch pass their own (it overrides this one).
        "model_outage": model_outage() if signed_in() else None,
        "model_name": services().model.name,
    }


@bp.after_request
def security_headers(response):
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    if response.mimetype == "text/html":
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; "
            "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'",
        )
    return response


def _wants_json() -> bool:
    return request.is_json


@bp.errorhandler(400)
@bp.errorhandler(404)
@bp.errorhandler(409)
@bp.errorhandler(413)
@bp.errorhandler(429)
def portal_error(error):
    code = getattr(error, "code", 500)
    message = getattr(error, "description", "error")
    if _wants_json():
        return jsonify({"error": {"code": str(code), "message": message}}), code
    return render_template("portal/error.html", code=code, message=message), code
