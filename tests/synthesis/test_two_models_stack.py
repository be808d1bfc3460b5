"""Two real Celery workers serving two configs (tiny-random, the deployment's default, and the
imported NVIDIA reference pickle, 64 px with a discriminator) on one Redis and one PostgreSQL
database: each synthesis batch goes only to its model's worker, and GET /api/v1/models lists
both with their files."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest
import requests

from shared.platform.settings import Settings
from tests.conftest import private_pg_database, redis_db_url
from tests.support.stack import WorkerProcess, running_stack, settled
from tests.synthesis.conftest import NV

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _post(stack, body: dict) -> requests.Response:
    return stack.api.http.post(f"{stack.api.base}/batches", json=body)


def test_batches_go_only_to_their_models_worker(nv_weights, tmp_path):
    with private_pg_database("anycost_synth") as database:
        settings = Settings(database_url=database, redis_url=redis_db_url("synthesis_stack"),
                            model="tiny-random", weights_dir=nv_weights, render_batch_size=4,
                            torch_threads=1, heartbeat_seconds=2)
        with running_stack(settings, "synth-tiny", tmp_path / "tiny.log", "synth") as stack:
            nv = WorkerProcess(replace(settings, worker_model=NV), "synth-nv", tmp_path / "nv.log")
            try:
                nv.wait_ready()
                deadline = time.monotonic() + 60
                while True:
                    models = stack.api.http.get(f"{stack.api.base}/models").json()["models"]
                    if {m["name"] for m in models} == {"tiny-random", NV}:
                        break
                    assert time.monotonic() < deadline, models
                    time.sleep(0.3)
                by_name = {m["name"]: m for m in models}
                assert by_name["tiny-random"]["default"] and not by_name[NV]["default"]
                assert by_name[NV]["files"]["discriminator"] and not by_name[NV]["files"]["encoder"]
                assert by_name[NV]["photos"] is False and by_name[NV]["resolution"] == 64

                made = {}
                for model in ("tiny-random", NV, "tiny-random", NV):
                    r = _post(stack, {"synthesis": {"seeds": [11, 12]}, "model": model})
                    assert r.status_code == 201, r.text
                    made.setdefault(model, []).append(r.json()["id"])
                for model, ids in made.items():
                    for batch_id in ids:
                        batch = stack.api.wait(batch_id, settled("preview_ready", "failed"))
                        assert batch["model"]["name"] == model
                        for item in batch["items"]:
                            assert item["status"] == "preview_ready", item["error"]
                            assert item["model"]["name"] == model  # the model that rendered it
                            if model == NV:  # the imported config has a discriminator
                                assert item["realism"]["preview"] is not None
                items = {i: m for m, ids in made.items() for b in ids
                         for i in (x["id"] for x in stack.api.batch(b)["items"])}
                tiny_log, nv_log = stack.worker.log(), nv.log()
                for item_id, model in items.items():
                    mine, other = (tiny_log, nv_log) if model == "tiny-random" else (nv_log, tiny_log)
                    assert item_id in mine and item_id not in other, (item_id, model)
                assert "preview@" + NV in nv_log and "preview@" not in tiny_log
                # finals too go to the model's own final queue
                nv_batch = made[NV][0]
                stack.api.finalize(nv_batch)
                done = stack.api.wait(nv_batch, settled("done", "failed"))
                assert [i["status"] for i in done["items"]] == ["done", "done"]
            finally:
                nv.stop()
