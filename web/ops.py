"""Operations endpoints of the web app: ``/healthz`` (the process answers), ``/readyz`` (the
database and Redis answer, within short timeouts, and a worker serves the default model: else
503 naming the model, the reason and the fix) and ``/metrics`` (Prometheus text).

Registering ``bp`` also instruments every request of the app: a counter and a latency histogram
labelled by endpoint, method and status. Under gunicorn with several workers set
``PROMETHEUS_MULTIPROC_DIR`` (an empty directory, before start) so a scrape sums all of them;
``web/gunicorn.conf.py`` does this for the compose deployment.

Settings come from ``app.config["ANYCOST_SETTINGS"]`` when the app factory put them there, else
from the environment (``shared.platform.settings.get_settings``).
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import time
from dataclasses import dataclass
from typing import Any

import redis
from flask import Blueprint, Flask, Response, current_app, g, jsonify, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from shared.commands.availability import outage
from shared.items.metrics import ItemStatusCollector, QueueDepthCollector
from shared.platform.settings import Settings, get_settings
from shared.store.db import make_engine

bp = Blueprint("ops", __name__)

PROBE_TIMEOUT_S = 2.0

# Module-level so the multiprocess value files are keyed by one name in every gunicorn worker.
WEB_REGISTRY = CollectorRegistry()
REQUESTS = Counter(
    "anycost_http_requests", "HTTP requests answered by the web app.",
    ["endpoint", "method", "status"], registry=WEB_REGISTRY,
)
LATENCY = Histogram(
    "anycost_http_request_duration_seconds", "Time to answer an HTTP request.",
    ["endpoint", "method", "status"], registry=WEB_REGISTRY,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)


@dataclass
class _OpsState:
    settings: Settings
    engine: Engine  # separate from the app's pool: NullPool, short connect timeout
    items: ItemStatusCollector
    queues: QueueDepthCollector


def _state() -> _OpsState:
    app = current_app
    state = app.extensions.get("anycost_ops")
    if state is None:
        settings = app.config.get("ANYCOST_SETTINGS") or get_settings()
        engine_kwargs: dict[str, Any] = {"poolclass": NullPool}
        if not settings.is_sqlite:
            engine_kwargs["connect_args"] = {"connect_timeout": int(PROBE_TIMEOUT_S)}
        engine = make_engine(settings.database_url, **engine_kwargs)
        state = _OpsState(settings, engine, ItemStatusCollector(engine),
                          QueueDepthCollector(settings.redis_url))
        app.extensions["anycost_ops"] = state
    return state


# --- request instrumentation ------------------------------------------------------------------

@bp.before_app_request
def _start_timer() -> None:
    g._ops_started = time.perf_counter()


@bp.after_app_request
def _observe(response: Response) -> Response:
    started = g.pop("_ops_started", None)
    if started is not None and request.endpoint != "ops.metrics":
        # The endpoint name, not the path: paths carry ids and would explode the label set.
        labels = (request.endpoint or "unmatched", request.method, str(response.status_code))
        REQUESTS.labels(*labels).inc()
        LATENCY.labels(*labels).observe(time.perf_counter() - started)
    return response


# --- probes -----------------------------------------------------------------------------------

def check_database(engine: Engine) -> None:
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            # Never let a stuck database hold a probe longer than the orchestrator waits.
            conn.execute(text(f"SET statement_timeout = {int(PROBE_TIMEOUT_S * 1000)}"))
        conn.execute(text("SELECT 1"))


def check_redis(url: str) -> None:
    client = redis.Redis.from_url(
        url, socket_connect_timeout=PROBE_TIMEOUT_S, socket_timeout=PROBE_TIMEOUT_S
    )
    try:
        client.ping()
    finally:
        client.close()


@bp.get("/healthz")
def healthz():
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz():
    state = _state()
    checks: dict[str, dict[str, Any]] = {}
    for name, probe in (
        ("database", lambda: check_database(state.engine)),
        ("redis", lambda: check_redis(state.settings.redis_url)),
    ):
        started = time.perf_counter()
        try:
            probe()
            checks[name] = {"ok": True}
        except Exception as exc:  # any failure means "not ready"; the reason goes in the body
            checks[name] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
        checks[name]["seconds"] = round(time.perf_counter() - started, 4)
    if checks["database"]["ok"]:
        checks["model"] = check_model(state)
    ready = all(c["ok"] for c in checks.values())
    return jsonify(status="ready" if ready else "unavailable", checks=checks), 200 if ready else 503


def check_model(state: _OpsState) -> dict[str, Any]:
    """Whether a worker serves the default model now; if not, the model, why and the fix (a web
    process that answers while nothing renders uploads is not ready to take them)."""
    model = state.settings.model
    try:
        with Session(state.engine) as session:
            found = outage(session, state.settings, model)
    except Exception as exc:  # noqa: BLE001 - a probe reports, never raises
        return {"ok": False, "model": model, "error": f"{type(exc).__name__}: {exc}"[:300]}
    if found is None:
        return {"ok": True, "model": model}
    return {"ok": False, "model": model, "error": found.message(), "reason": found.reason,
            "fix": found.fix}


# --- metrics ----------------------------------------------------------------------------------

class _Forward:
    """Collects another registry's metrics into the scrape registry (single-process mode)."""

    def __init__(self, registry: CollectorRegistry):
        self.registry = registry

    def collect(self):
        yield from self.registry.collect()


def scrape_registry(state: _OpsState) -> CollectorRegistry:
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_Forward(WEB_REGISTRY))
    registry.register(state.items)
    registry.register(state.queues)
    return registry


def metrics_allowed(settings: Settings) -> bool:
    """With ``ANYCOST_METRICS_TOKEN``: the request carries it as a bearer token. Without: the
    client (``remote_addr``, the real client's behind ``ANYCOST_PROXY_HOPS`` proxies) is on a
    loopback or private address, i.e. inside the deployment's own network."""
    if settings.metrics_token:
        sent = request.headers.get("Authorization", "").partition(" ")[2].strip()
        return hmac.compare_digest(sent.encode(), settings.metrics_token.encode())
    try:
        client = ipaddress.ip_address(request.remote_addr or "")
    except ValueError:
        return False
    return client.is_loopback or client.is_private


@bp.get("/metrics")
def metrics():
    if not metrics_allowed(_state().settings):
        return Response("404 Not Found\n", status=404, mimetype="text/plain")
    body = generate_latest(scrape_registry(_state()))
    return Response(body, content_type=CONTENT_TYPE_LATEST)


def init_app(app: Flask, settings: Settings | None = None) -> None:
    """Optional: register the blueprint with explicit settings (otherwise read lazily)."""
    if settings is not None:
        app.config["ANYCOST_SETTINGS"] = settings
    app.register_blueprint(bp)
