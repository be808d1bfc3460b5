"""/healthz, /readyz and /metrics of the web app, against real SQLite/PostgreSQL and Redis."""

from __future__ import annotations

import socket

import pytest
from flask import Flask

from shared.platform.settings import Settings
from tests.ops.conftest import make_batch
from tests.support.workers import register_live_worker
from web import ops
from worker.process.heartbeat import report_load_failure


def _app(settings: Settings) -> Flask:
    """The ops blueprint on a bare Flask app (the full app registers the same blueprint)."""
    app = Flask("ops-test")
    app.config.update(TESTING=True)
    ops.init_app(app, settings)

    @app.get("/hello/<name>")
    def hello(name):
        return {"hello": name}

    return app


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens once the socket is closed


def _sample(text: str, name: str, **labels) -> float | None:
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    prefix = f"{name}{{{want}}} " if labels else f"{name} "
    for line in text.splitlines():
        if line.startswith(prefix):
            return float(line.rsplit(" ", 1)[1])
    return None


@pytest.fixture(autouse=True)
def _single_process_metrics(monkeypatch):
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)


def test_healthz(settings):
    response = _app(settings).test_client().get("/healthz")
    assert response.status_code == 200 and response.get_json() == {"status": "ok"}


def test_readyz_ready_with_database_and_redis(settings, sessions):
    register_live_worker(sessions, settings.model)
    response = _app(settings).test_client().get("/readyz")
    body = response.get_json()
    assert response.status_code == 200, body
    assert body["status"] == "ready"
    assert body["checks"]["database"]["ok"] and body["checks"]["redis"]["ok"]
    assert body["checks"]["model"] == {"ok": True, "model": settings.model}


def test_readyz_503_when_no_worker_serves_the_model(settings):
    response = _app(settings).test_client().get("/readyz")
    body = response.get_json()
    assert response.status_code == 503 and body["status"] == "unavailable"
    assert body["checks"]["database"]["ok"] and body["checks"]["redis"]["ok"]
    model = body["checks"]["model"]
    assert model["ok"] is False and model["model"] == settings.model
    assert settings.model in model["error"] and "no worker serving it" in model["reason"]
    assert "celery" in model["fix"]


def test_readyz_503_names_the_reason_a_worker_gave(settings, sessions):
    report_load_failure(sessions, "w@gpu1", model_name=settings.model, queues="final,preview",
                        reason="CUDA error: out of memory", fix="use a bigger GPU")
    model = _app(settings).test_client().get("/readyz").get_json()["checks"]["model"]
    assert model["reason"] == "its worker w@gpu1 could not load it: CUDA error: out of memory"
    assert model["fix"] == "use a bigger GPU"


def test_readyz_503_when_redis_is_down(settings):
    down = Settings(**{**settings.__dict__, "redis_url": f"redis://127.0.0.1:{_closed_port()}/0"})
    response = _app(down).test_client().get("/readyz")
    body = response.get_json()
    assert response.status_code == 503
    assert body["status"] == "unavailable"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["redis"]["ok"] is False and "Connection" in body["checks"]["redis"]["error"]
    assert body["checks"]["redis"]["seconds"] < 3


def test_readyz_503_when_database_is_down(settings):
    bad = Settings(**{**settings.__dict__,
                      "database_url": "postgresql+psycopg://postgres@127.0.0.1:1/none"})
    response = _app(bad).test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["checks"]["database"]["ok"] is False


def test_metrics_counts_requests_latency_and_items(settings, jobs, owner_id):
    make_batch(jobs, owner_id, 3)
    client = _app(settings).test_client()
    before = _sample(client.get("/metrics").get_data(as_text=True), "anycost_http_requests_total",
                     endpoint="hello", method="GET", status="200") or 0.0
    for name in ("a", "b"):
        assert client.get(f"/hello/{name}").status_code == 200
    assert client.get("/no/such/page").status_code == 404

    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain")
    text = response.get_data(as_text=True)
    labels = {"endpoint": "hello", "method": "GET", "status": "200"}
    assert _sample(text, "anycost_http_requests_total", **labels) == before + 2
    assert _sample(text, "anycost_http_request_duration_seconds_count", **labels) == before + 2
    assert _sample(text, "anycost_http_requests_total", endpoint="unmatched", method="GET",
                   status="404") >= 1
    assert _sample(text, "anycost_items", status="queued") == 3
    assert _sample(text, "anycost_items", status="done") == 0
    assert _sample(text, "anycost_queue_depth", queue="preview") == 1  # one message, 3 items
    assert _sample(text, "anycost_queue_depth", queue="final") == 0


def test_full_app_serves_ops_endpoints(settings, sessions):
    from web import create_app

    client = create_app(settings).test_client()
    register_live_worker(sessions, settings.model)
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200
    assert client.get("/api/v1/batches/nope").status_code == 401  # no token
    text = client.get("/metrics").get_data(as_text=True)
    assert _sample(text, "anycost_http_requests_total", endpoint="ops.readyz", method="GET",
                   status="200") >= 1
    assert any(line.startswith("anycost_http_requests_total{endpoint=\"api.")
               and 'status="401"' in line for line in text.splitlines()), text


def test_metrics_are_for_the_deployment_only(settings):
    """No token set: loopback and private clients may scrape, a public address gets 404. With
    ANYCOST_METRICS_TOKEN: only requests carrying it, from anywhere."""
    import dataclasses

    public, private = {"REMOTE_ADDR": "93.184.215.14"}, {"REMOTE_ADDR": "10.1.2.3"}
    client = _app(settings).test_client()
    assert client.get("/metrics").status_code == 200  # 127.0.0.1
    assert client.get("/metrics", environ_base=private).status_code == 200
    assert client.get("/metrics", environ_base=public).status_code == 404
    guarded = _app(dataclasses.replace(settings, metrics_token="s3cret-scrape")).test_client()
    assert guarded.get("/metrics").status_code == 404
    assert guarded.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 404
    ok = guarded.get("/metrics", environ_base=public,
                     headers={"Authorization": "Bearer s3cret-scrape"})
    assert ok.status_code == 200 and "anycost_" in ok.get_data(as_text=True)
