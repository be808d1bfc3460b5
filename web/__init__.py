"""The Flask web app: REST API v1 (``web.api``), the HTML portal, ops endpoints, CLI commands.

    flask --app web run              # development server
    flask --app web init-db          # migrations
    flask --app web create-user NAME # prints an API token as the last line

Never imports torch or ``worker``: the web process only writes SQL and sends queue messages.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping

from flask import Flask

from shared.settings import Settings, get_settings

MB = 1024 * 1024


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


def create_app(test_config: Settings | Mapping | None = None) -> Flask:
    """Build the app. ``test_config``: None (settings from the environment, read once), a
    ``Settings``, or a mapping of settings overrides and Flask config keys."""
    from web import api, cli, errors, extensions

    settings, flask_config = _settings_from(test_config)
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=settings.secret_key or secrets.token_hex(32),  # dev: sessions per process
        MAX_CONTENT_LENGTH=settings.max_upload_mb * MB,
        # Each uploaded file is one form part; leave room for the recipe and a few more fields.
        MAX_FORM_PARTS=settings.max_files_per_batch + 16,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        ANYCOST_SETTINGS=settings,  # read by web.ops
    )
    app.config.update(flask_config)
    app.json.sort_keys = False  # keep the contract's field order in responses

    extensions.init_app(app, settings)
    errors.register_error_handlers(app)
    app.register_blueprint(api.bp)
    cli.register_cli(app)

    # --- other blueprints -----------------------------------------------------------------
    # Ops endpoints (healthz, readyz, metrics): web/ops.py.
    from web import ops

    app.register_blueprint(ops.bp)
    # Portal (HTML pages): helper E registers its blueprint here.
    from web.portal import init_portal

    init_portal(app)
    # --- end of other blueprints ----------------------------------------------------------
    return app
