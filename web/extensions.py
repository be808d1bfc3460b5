"""What the web app binds to itself (``app.extensions["anycost"]``): settings, the database engine
and session factory, the blob store, the queue dispatcher, ``Batches`` and ``UserDirections``.

One ``Services`` per app, built by ``init_app``, so two apps in one process (tests) never share an
engine. Request code reaches them through ``services()`` and a per-request session ``db()``.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass

from flask import Flask, current_app, g
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from shared.catalog.configs import ModelConfig, get_model_config
from shared.commands.batches import Batches
from shared.commands.user_directions import UserDirections
from shared.platform.queue import Dispatcher
from shared.platform.settings import Settings
from shared.store.blobs import BlobStore, make_blob_store
from shared.store.db import make_engine, make_session_factory

EXTENSION_KEY = "anycost"
log = logging.getLogger(__name__)


@dataclass
class Services:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    blobs: BlobStore
    dispatcher: Dispatcher
    batches: Batches
    model: ModelConfig  # the configured model (catalogue entry), for resolutions and costs
    directions: UserDirections  # users' own directions and the explorer's strips

    def close(self) -> None:
        """Release pooled connections (tests that create many apps call this)."""
        self.engine.dispose()


def init_app(app: Flask, settings: Settings) -> Services:
    # Fail at start-up, not on the first upload, when the configured model is unknown.
    model = get_model_config(settings.model, settings.weights_dir)
    engine = make_engine(settings.database_url)
    sessions = make_session_factory(engine)
    blobs = make_blob_store(settings)
    dispatcher = Dispatcher(settings)
    svc = Services(
        settings=settings, engine=engine, sessions=sessions, blobs=blobs, dispatcher=dispatcher,
        batches=Batches(settings, sessions, blobs, dispatcher), model=model,
        directions=UserDirections(settings, sessions, dispatcher),
    )
    app.extensions[EXTENSION_KEY] = svc
    app.teardown_appcontext(_close_request_session)
    return svc


def services(app: Flask | None = None) -> Services:
    return (app or current_app).extensions[EXTENSION_KEY]


def db() -> Session:
    """The request's read session, opened on first use and closed when the request ends."""
    if "anycost_db" not in g:
        g.anycost_db = services().sessions()
    return g.anycost_db


def _close_request_session(_exc: BaseException | None) -> None:
    """Close the request's session. The answer is made by now: a connection the database
    dropped since the last query (closing rolls back on it, which fails) must not turn it into
    the server's HTML 500; the pool discards that connection."""
    session = g.pop("anycost_db", None)
    if session is not None:
        try:
            session.close()
        except Exception as exc:
            log.warning("closing the request's database session failed: %s",
                        str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            with contextlib.suppress(Exception):
                session.invalidate()
