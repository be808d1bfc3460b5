"""The stack tells the truth about its model: a real Celery worker configured with a model whose
files are missing says why in the database and stops; the web side then answers /readyz 503
naming the model and the reason, refuses uploads and seeds with 409 ``model_unavailable``, lists
the reason in ``GET /api/v1/models`` and shows it, with the fix, on the portal (where the batch
page used to say "Queued 0%" forever)."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from PIL import Image

from shared.platform.settings import Settings
from shared.store.tables import WorkerHeartbeat
from tests.conftest import redis_db_url
from tests.portal.conftest import Browser
from tests.support.stack import WorkerProcess

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MODEL = "stylegan2-ffhq-config-f"  # NVIDIA's FFHQ network: a generator nobody imported here
PASSWORD = "truth-password"


@dataclass
class BrokenStack:
    app: object
    client: object
    headers: dict
    worker: WorkerProcess


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 64), (180, 140, 120)).save(out, format="PNG")
    return out.getvalue()


def _wait_exit(worker: WorkerProcess, timeout: float = 180) -> int:
    deadline = time.monotonic() + timeout
    while worker.proc.poll() is None:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the worker still runs after {timeout}s:\n{worker.log()[-3000:]}")
        time.sleep(0.3)
    return worker.proc.returncode


@pytest.fixture(scope="module")
def broken(tmp_path_factory) -> Iterator[BrokenStack]:
    import redis

    from shared.store.migrate import upgrade
    from web import create_app
    from web.auth import create_token, create_user
    from web.extensions import services

    tmp = tmp_path_factory.mktemp("truth")
    (tmp / "weights").mkdir()
    settings = Settings(database_url=f"sqlite:///{tmp / 'anycost.db'}",
                        redis_url=redis_db_url("truth"), model=MODEL,
                        weights_dir=str(tmp / "weights"), torch_threads=1)
    upgrade(settings.database_url)
    worker = WorkerProcess(settings, "truth", tmp / "worker.log")
    try:
        _wait_exit(worker)
    finally:
        worker.stop()
    app = create_app(settings)
    app.config["VALIDATE_RESPONSES"] = True
    with services(app).sessions.begin() as session:
        user = create_user(session, "truth", PASSWORD)
        token = create_token(session, user)
    yield BrokenStack(app, app.test_client(), {"Authorization": f"Bearer {token}"}, worker)
    services(app).close()
    client = redis.Redis.from_url(settings.redis_url)
    client.flushdb()
    client.close()


def test_the_worker_reports_why_in_its_row_and_stops(broken):
    from web.extensions import services

    log = broken.worker.log()
    assert "could not load its models; the worker stops" in log
    assert "serving: model" not in log
    with services(broken.app).sessions() as session:
        (row,) = session.query(WorkerHeartbeat).all()
    assert row.name.startswith("truth@") and ":" not in row.name  # the node, not its process
    assert row.model_name == MODEL and set(row.queues.split(",")) == {"preview", "final"}
    assert "generator not installed" in row.load_error
    assert "import-nvidia" in row.load_fix and "stylegan2-ffhq-1024x1024.pkl" in row.load_fix


def test_readyz_is_503_naming_the_model_and_the_reason(broken):
    response = broken.client.get("/readyz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"]["ok"] and body["checks"]["redis"]["ok"]
    model = body["checks"]["model"]
    assert model["ok"] is False and model["model"] == MODEL
    assert MODEL in model["error"] and "generator not installed" in model["reason"]
    assert "import-nvidia" in model["fix"]


def test_uploads_and_seeds_get_409_model_unavailable_and_nothing_is_stored(broken):
    from shared.store.tables import Batch
    from web.extensions import services

    upload = broken.client.post(
        "/api/v1/batches", headers=broken.headers,
        data={"files": [(io.BytesIO(_png()), "face.png")], "recipe": "{}"},
        content_type="multipart/form-data")
    assert upload.status_code == 409, upload.get_data(as_text=True)
    error = upload.get_json()["error"]
    assert error["code"] == "model_unavailable"
    assert MODEL in error["message"] and "generator not installed" in error["message"]
    assert "import-nvidia" in error["message"]
    seeds = broken.client.post("/api/v1/batches", headers=broken.headers,
                               json={"synthesis": {"seeds": [1, 2]}})
    assert seeds.status_code == 409 and seeds.get_json()["error"]["code"] == "model_unavailable"
    with services(broken.app).sessions() as session:
        assert session.query(Batch).count() == 0


def test_the_models_list_shows_the_reason(broken):
    response = broken.client.get("/api/v1/models", headers=broken.headers)
    assert response.status_code == 200
    body = response.get_json()
    assert body["models"] == [] and body["default"] == MODEL
    (down,) = body["unavailable"]
    assert down["name"] == MODEL and down["worker"].startswith("truth@")
    assert "generator not installed" in down["reason"] and "import-nvidia" in down["fix"]
    assert down["reported_at"]


def test_the_portal_shows_the_reason_and_the_fix_and_refuses_the_upload(broken):
    browser = Browser(broken.app.test_client())
    assert browser.sign_in("truth", PASSWORD).status_code == 302
    page = browser.get("/batches/new").get_data(as_text=True)
    assert 'id="model-outage"' in page
    assert f"Model {MODEL} is unavailable" in page and "generator not installed" in page
    assert "import-nvidia" in page and "stylegan2-ffhq-1024x1024.pkl" in page
    refused = browser.post_form("/batches/new", {"recipe": "{}",
                                                 "files": [(io.BytesIO(_png()), "face.png")]},
                                content_type="multipart/form-data")
    assert refused.status_code == 409
    assert "generator not installed" in refused.get_data(as_text=True)
