"""The model page: evaluation jobs with their settings (n, cost, data set, Inception hash) and
results per cost, and the form that queues one (a real Redis message on the evaluate queue)."""

from __future__ import annotations

import json

import redis

from shared.catalog.configs import get_model_config
from shared.commands.evaluations import Evaluations
from shared.platform.queue import EVALUATE_QUEUE, EVALUATE_TASK
from shared.store.tables import Evaluation, User
from web.extensions import services

SHA = "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34"


def _evaluations(app) -> Evaluations:
    svc = services(app)
    return Evaluations(svc.settings, svc.sessions, svc.dispatcher)


def _alice(app) -> int:
    with services(app).sessions() as db:
        return db.query(User).filter_by(username="alice").one().id


def test_page_lists_results_with_their_settings(app, browser):
    evaluations = _evaluations(app)
    model = get_model_config("tiny-random")
    fid_id = evaluations.create(_alice(app), model, {"kind": "fid", "n": 64, "data": "faces"})
    assert evaluations.claim(fid_id, "w1:1") is not None
    evaluations.finish(fid_id, {
        "metric": "fid", "n": 64, "seed": 0, "data": {"kind": "folder", "images": 500},
        "inception": {"sha256": SHA, "file": "default_1.pt"},
        "results": [{"channels": 0.5, "resolution": 32, "fid": 12.3456},
                    {"channels": 1.0, "resolution": 64, "fid": 7.25}]})
    ppl_id = evaluations.create(_alice(app), model, {"kind": "ppl", "n": 10})
    evaluations.fail(ppl_id, "lpips_missing", "LPIPS(vgg) needs vgg16-397923af.pth at /x")

    browser.sign_in("alice")
    page = browser.get("/models/tiny-random")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    section = html[html.index(f'id="evaluation-{fid_id}"'):]
    for text in ("FID", "64", "faces (500 images)", SHA[:16], "every cost", "12.346", "7.25",
                 "32 px", "w1:1"):
        assert text in section, text
    assert "lpips_missing: LPIPS(vgg) needs vgg16-397923af.pth" in html
    assert 'href="/models/tiny-random"' in html  # the navigation links the page


def test_form_queues_an_evaluation_and_rejects_bad_input(app, browser):
    browser.sign_in("alice")
    browser.get("/models/tiny-random")
    broker = redis.Redis.from_url(services(app).settings.redis_url)
    r = browser.post_form("/models/tiny-random/evaluations",
                          {"kind": "consistency", "n": "16", "channels": "0.5", "resolution": ""})
    assert r.status_code == 302
    with services(app).sessions() as db:
        row = db.query(Evaluation).one()
        assert (row.kind, row.status, row.params["n"], row.params["channels"]) == (
            "consistency", "queued", 16, 0.5)
    message = json.loads(broker.lpop(EVALUATE_QUEUE))
    assert message["headers"]["task"] == EVALUATE_TASK
    assert row.id in message["headers"]["argsrepr"]
    bad = browser.post_form("/models/tiny-random/evaluations", {"kind": "ppl", "n": "0"})
    assert bad.status_code == 400 and "n: must be an integer" in bad.get_data(as_text=True)
    assert browser.get("/models/no-such-model").status_code == 404
    broker.close()
