"""Evaluation jobs through the real system: HTTP POST -> Redis -> a Celery worker process on the
``evaluate`` queue -> SQL -> HTTP GET. Missing Inception/LPIPS files fail their job with a stable
code; the worker goes on with the next job."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from shared.platform.settings import Settings
from tests.conftest import redis_db_url
from tests.support.stack import Stack, running_stack

pytestmark = pytest.mark.integration
MODEL = "tiny-random"


@pytest.fixture(scope="module")
def stack(tiny_weights_dir, tmp_path_factory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("eval-stack")
    settings = Settings(
        database_url=f"sqlite:///{root / 'anycost.db'}", redis_url=redis_db_url("evaluate"),
        model=MODEL, weights_dir=tiny_weights_dir, render_batch_size=4, torch_threads=1,
        inception_path=str(root / "no-inception.pt"), inception_sha256="0" * 64,
        lpips_vgg_path=str(root / "no-vgg16.pth"), eval_cache_dir=str(root / "cache"),
        eval_data_dir=str(root / "data"), eval_user_active=3,  # three at once below
    )
    with running_stack(settings, "eval-worker", root / "worker.log", "evaluator",
                       queues="evaluate") as stack:
        yield stack
    assert stack.worker.proc.poll() is not None


def _post(stack: Stack, body: dict, model: str = MODEL):
    api = stack.api
    return api.http.post(f"{api.base}/models/{model}/evaluations", json=body)


def _wait(stack: Stack, url: str, timeout: float = 180) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        body = stack.api.http.get(url).json()
        if body["status"] in ("done", "failed"):
            return body
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} still {body['status']}:\n{stack.worker.log()[-3000:]}")
        time.sleep(0.2)


def test_jobs_run_on_a_real_worker_and_missing_files_fail_cleanly(stack):
    started = {}
    for kind, body in (("fid", {"kind": "fid", "n": 2}), ("ppl", {"kind": "ppl", "n": 2}),
                       ("consistency", {"kind": "consistency", "n": 3, "seed": 5})):
        r = _post(stack, body)
        assert r.status_code == 202, r.text
        assert r.json()["status"] == "queued" and r.headers["Location"].endswith(r.json()["id"])
        started[kind] = r.json()

    fid = _wait(stack, started["fid"]["url"])
    assert fid["status"] == "failed" and fid["result"] is None
    assert fid["error"]["code"] == "inception_missing"
    assert "no-inception.pt" in fid["error"]["message"]
    ppl = _wait(stack, started["ppl"]["url"])
    assert ppl["status"] == "failed" and ppl["error"]["code"] == "lpips_missing"
    assert "no-vgg16.pth" in ppl["error"]["message"]

    done = _wait(stack, started["consistency"]["url"])  # the worker survived both failures
    assert done["status"] == "done" and done["error"] is None, done
    assert done["params"] == {"n": 3, "channels": None, "resolution": None, "seed": 5, "data": None}
    result = done["result"]
    assert result["metric"] == "consistency" and result["model"] == MODEL and result["n"] == 3
    assert done["worker"].startswith("eval-worker@") and done["attempts"] == 1
    rows = {(r["channels"], r["resolution"]): r for r in result["results"]}
    assert len(rows) == 8
    assert rows[(1.0, 64)]["mse"] == 0.0 and rows[(1.0, 64)]["psnr"] is None
    assert all(r["lpips"] is None for r in rows.values())  # no LPIPS files on this worker
    assert all(r["mse"] > 0 for key, r in rows.items() if key != (1.0, 64))

    listed = stack.api.http.get(f"{stack.api.base}/models/{MODEL}/evaluations").json()
    assert [e["id"] for e in listed["evaluations"]] == [  # newest first
        started[k]["id"] for k in ("consistency", "ppl", "fid")]
    assert [e["status"] for e in listed["evaluations"]] == ["done", "failed", "failed"]


@pytest.mark.parametrize("body, field", [
    ({"kind": "bogus", "n": 2}, "kind"),
    ({"kind": "fid", "n": 1}, "n"),
    ({"kind": "fid", "n": "10"}, "n"),
    ({"kind": "consistency", "n": 2, "channels": 0.3}, "channels"),
    ({"kind": "consistency", "n": 2, "resolution": 48}, "resolution"),
    ({"kind": "ppl", "n": 2, "data": "ffhq"}, "data"),
    ({"kind": "fid", "n": 2, "data": "../etc"}, "data"),
    ({"kind": "fid", "n": 2, "extra": 1}, "extra"),
])
def test_bad_requests_are_4xx_and_queue_nothing(stack, body, field):
    r = _post(stack, body)
    assert r.status_code == 400, r.text
    # An unknown key has its own code (every JSON body refuses them); a bad value is invalid.
    expected = "unknown_field" if field == "extra" else "invalid_parameter"
    assert r.json()["error"]["code"] == expected
    assert field in r.json()["error"]["message"].split(";")[0]


def test_unknown_model_and_evaluation_are_404(stack):
    assert _post(stack, {"kind": "fid", "n": 2}, model="no-such-model").status_code == 404
    api = stack.api
    assert api.http.get(f"{api.base}/models/{MODEL}/evaluations/{'0' * 32}").status_code == 404
    assert api.http.post(f"{api.base}/models/{MODEL}/evaluations", data="x").status_code == 400
