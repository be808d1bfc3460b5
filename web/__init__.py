"""The Flask web app: REST API v1 (``web.api``), the HTML portal, ops endpoints, CLI commands.

    flask --app web run              # development server
    flask --app web init-db          # migrations
    flask --app web create-user NAME # prints an API token as the last line

Never imports torch or ``worker``: the web process only writes SQL and sends queue messages.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import timedelta

from flask import Flask, request
from flask.sessions import SecureCookieSessionInterface
from werkzeug.middleware.proxy_fix import ProxyFix

from shared.platform.settings import Settings, get_settings

MB = 1024 * 1024


class SessionCookies(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, with ``Secure`` whenever the request came over HTTPS
    (directly, or through a proxy trusted by ``ANYCOST_PROXY_HOPS``), or always by setting."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(app.config["SESSION_COOKIE_SECURE"]) or request.is_secure


def _settings_from(test_config: Settings | Mapping | None) -> tuple[Settings, dict]:
    """Settings plus extra Flask config. A mapping's lowercase keys override settings fields,
    its UPPERCASE keys are Flask config (e.g. ``TESTING``)."""
    if test_config is None:
        return get_settings(), {}
    if isinstance(test_config, Settings):
        return test_config, {}
    overrides = {k: v for k, v in test_config.items() if not k.isupper()}
    flask_config = {k: v for k, v in test_config.items() if k.isupper()}
    return Settings.from_env(**overrides), flask_config


def session_config(settings: Settings) -> dict:
    """The session cookie's Flask config: the app's, and the stream service's, which reads the
    portal's cookie the way Flask does (``web.streams.auth``)."""
    return {"SESSION_COOKIE_HTTPONLY": True, "SESSION_COOKIE_SAMESITE": "Lax",
            "SESSION_COOKIE_SECURE": settings.secure_cookies,
            "PERMANENT_SESSION_LIFETIME": timedelta(hours=settings.session_hours)}


def create_app(test_config: Settings | Mapping | None = None) -> Flask:
    """Build the app. ``test_config``: None (settings from the environment, read once), a
    ``Settings``, or a mapping of settings overrides and Flask config keys."""
    from web import api, auth, cli, errors, extensions, ratelimit, response_check, safe_input

    settings, flask_config = _settings_from(test_config)
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=settings.secret_key or secrets.token_hex(32),  # dev: sessions per process
        MAX_CONTENT_LENGTH=settings.max_upload_mb * MB,
        # Each uploaded file is one form part; leave room for the recipe and a few more fields.
        MAX_FORM_PARTS=settings.max_files_per_batch + 16,
        ANYCOST_SETTINGS=settings,  # read by web.ops
        **session_config(settings),
    )
    app.config.update(flask_config)
    app.session_interface = SessionCookies()
    if settings.public_url:  # absolute URLs name this origin, never the Host header
        from web.public_origin import PublicOrigin

        app.wsgi_app = PublicOrigin(app.wsgi_app, settings.public_url)
    if settings.proxy_hops:
        hops = settings.proxy_hops
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)
    app.json.sort_keys = False  # keep the contract's field order in responses

    extensions.init_app(app, settings)
    auth.init_app(app)
    errors.register_error_handlers(app)
    response_check.init_app(app)  # VALIDATE_RESPONSES: answers checked against the document
    safe_input.init_app(app)
    app.register_blueprint(api.bp)
    cli.register_cli(app)

    # --- other blueprints -----------------------------------------------------------------
    # Ops endpoints (healthz, readyz, metrics): web/ops.py.
    from web import ops

    app.register_blueprint(ops.bp)
    # Portal (HTML pages): a client of the same commands as the API.
    from web.portal import init_portal

    init_portal(app)
    # --- end of other blueprints ----------------------------------------------------------
    ratelimit.init_app(app, settings)  # after the blueprints: limits wrap their views
    return app
