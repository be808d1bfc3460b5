"""The portal says when nothing renders a batch: a banner with the reason a worker reported and
the fix (instead of "Queued 0%" forever), on every page of a signed-in user, and on the page of a
batch whose model lost its worker. Heartbeat rows written by the worker's own functions."""

from __future__ import annotations

import io

from shared.store.tables import WorkerHeartbeat
from tests.portal.conftest import png_bytes
from tests.portal.test_portal import create_batch
from web.extensions import services
from worker.process.heartbeat import report_load_failure

REASON = "model tiny-random: generator not installed in /srv/weights"
FIX = "run `python -m worker.anycost.weights fetch tiny-random`"


def _worker_fails(app) -> None:
    sessions = services(app).sessions
    with sessions.begin() as session:
        session.query(WorkerHeartbeat).delete()  # the live worker is gone...
    report_load_failure(sessions, "w1@host", model_name="tiny-random", queues="final,preview",
                        reason=REASON, fix=FIX)  # ...and its successor could not load the model


def test_no_banner_while_a_worker_serves_the_model(app, browser):
    browser.sign_in("alice")
    browser.get("/batches/new")
    batch_id = create_batch(browser)
    page = browser.get(f"/batches/{batch_id}").get_data(as_text=True)
    assert 'id="model-outage"' not in page and 'id="batch-stalled"' not in page


def test_a_queued_batch_whose_worker_failed_shows_the_reason_and_the_fix(app, browser):
    browser.sign_in("alice")
    browser.get("/batches/new")
    batch_id = create_batch(browser)
    _worker_fails(app)
    page = browser.get(f"/batches/{batch_id}").get_data(as_text=True)
    assert 'id="model-outage"' in page and 'role="alert"' in page
    assert "Model tiny-random is unavailable" in page
    assert "Its worker w1@host could not load it: " + REASON in page
    assert "Fix:</strong> run `python -m worker.anycost.weights fetch tiny-random`" in page
    assert 'id="batch-stalled"' in page
    listing = browser.get("/batches").get_data(as_text=True)  # every page says it
    assert REASON in listing


def test_a_new_upload_is_refused_with_the_reason(app, browser):
    browser.sign_in("alice")
    _worker_fails(app)
    form = browser.get("/batches/new").get_data(as_text=True)
    assert REASON in form
    refused = browser.post_form("/batches/new", {"files": [(io.BytesIO(png_bytes()), "a.png")]},
                                content_type="multipart/form-data")
    assert refused.status_code == 409
    assert "model tiny-random is unavailable" in refused.get_data(as_text=True)
