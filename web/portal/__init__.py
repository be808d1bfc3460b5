"""The browser portal: server-rendered pages for signing in, uploading batches, watching them
render, tuning an item's edits on live previews, exploring directions, finalizing and downloading.

``init_portal(app)`` registers the blueprint; ``web.create_app`` calls it.
"""

from __future__ import annotations

import secrets

from flask import Flask

from web.portal import explore, generate, model_page, pages  # noqa: F401  (routes register themselves on the blueprint)
from web.portal.blueprint import bp

__all__ = ["bp", "init_portal"]


def init_portal(app: Flask) -> None:
    """Register the portal on ``app``; makes sure sessions can be signed."""
    if not app.config.get("SECRET_KEY"):
        settings = app.config.get("ANYCOST_SETTINGS")
        key = getattr(settings, "secret_key", "") if settings is not None else ""
        # A random key per process: fine for development, sessions end with the process.
        app.config["SECRET_KEY"] = key or secrets.token_hex(32)
    app.config.setdefault("SESSION_COOKIE_HTTPONLY", True)
    app.config.setdefault("SESSION_COOKIE_SAMESITE", "Lax")
    app.register_blueprint(bp)
