"""Uploads for a model that no worker serves: 409 ``model_unavailable`` with the reason the
worker gave and the fix, nothing stored and nothing queued; ``GET /api/v1/models`` says the same.
The heartbeat rows come from the worker's own functions (``worker.process.heartbeat``)."""

from __future__ import annotations

from shared.store.tables import Batch, Item, WorkerHeartbeat
from tests.web.web_api_helpers import image_bytes, queued_messages, upload
from web.extensions import services
from worker.process.heartbeat import report_load_failure

MODEL = "anycost-ffhq-config-f"  # tests/web's model


def _no_worker(app) -> None:
    with services(app).sessions.begin() as session:
        session.query(WorkerHeartbeat).delete()


def test_upload_without_a_live_worker_is_409_and_stores_nothing(app, client, alice, redis_url):
    _no_worker(app)
    response = upload(client, alice["headers"], [(image_bytes(), "a.png")])
    assert response.status_code == 409
    error = response.get_json()["error"]
    assert error["code"] == "model_unavailable" and MODEL in error["message"]
    assert "no worker serving it has reported" in error["message"]
    with services(app).sessions() as session:
        assert session.query(Batch).count() == 0 and session.query(Item).count() == 0
    assert queued_messages(redis_url, "preview") == []


def test_the_reason_and_fix_a_worker_reported_reach_the_client(app, client, alice):
    _no_worker(app)
    report_load_failure(services(app).sessions, "worker1@gpu", model_name=MODEL,
                        queues="final,preview", reason="encoder: state_dict has 3 missing keys",
                        fix="import the encoder again")
    response = upload(client, alice["headers"], [(image_bytes(), "a.png")])
    assert response.status_code == 409
    message = response.get_json()["error"]["message"]
    assert message.startswith(f"model {MODEL} is unavailable: its worker worker1@gpu could not "
                              "load it: encoder: state_dict has 3 missing keys. Fix: import the "
                              "encoder again")
    models = client.get("/api/v1/models", headers=alice["headers"]).get_json()
    assert models["models"] == []
    assert [(m["name"], m["worker"], m["fix"]) for m in models["unavailable"]] == [
        (MODEL, "worker1@gpu", "import the encoder again")]


def test_with_a_live_worker_the_models_list_has_no_unavailable_entry(client, alice):
    models = client.get("/api/v1/models", headers=alice["headers"]).get_json()
    assert [m["name"] for m in models["models"]] == [MODEL] and models["unavailable"] == []
