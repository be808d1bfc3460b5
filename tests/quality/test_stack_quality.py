"""End to end on real processes: NVIDIA's StyleGAN2-ADA reference pickle (64 px, random weights,
with its discriminator, no encoder) imported with the real CLI into a temporary weights directory
under a config name of our own; HTTP upload of real photos (astronaut, Grace Hopper) -> Redis ->
a Celery worker process -> PostgreSQL. Every face is projected from w_avg by NVIDIA-style W
projection (the default without an encoder),
previews and finals carry the discriminator's realism, finals their consistency with the
preview, and the batch sorts by realism."""

from __future__ import annotations

import io
import subprocess
import sys
from collections.abc import Iterator

import numpy as np
import pytest
import torch
from PIL import Image

from shared.platform.settings import Settings
from tests.conftest import REPO, private_pg_database, redis_db_url
from tests.support.stack import Stack, real_photos, running_stack, settled

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CONFIG = "ada-ref64"
STEPS = 4
RECIPE = {"output": "crop", "preview": {"channels": 0.5, "resolution": 32},
          "final": {"channels": 1.0, "resolution": 64}}


@pytest.fixture(scope="module")
def ada_weights(tmp_path_factory, reference_dir) -> str:
    """The reference pickle imported with the real CLI into a fresh weights directory."""
    pickle = reference_dir / "nvidia-ada-res64" / "network.pkl"
    directory = tmp_path_factory.mktemp("weights-ada")
    done = subprocess.run(
        [sys.executable, "-m", "worker.anycost.weights", "--dir", str(directory),
         "import-nvidia", str(pickle), "--config", CONFIG],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert (directory / f"discriminator_{CONFIG}.pt").exists()
    return str(directory)


@pytest.fixture(scope="module")
def stack(ada_weights, tmp_path_factory) -> Iterator[Stack]:
    with private_pg_database("anycost_quality") as database:
        settings = Settings(
            database_url=database, redis_url=redis_db_url("quality_stack"), model=CONFIG,
            weights_dir=ada_weights, render_batch_size=4, torch_threads=1,
            projection_steps=STEPS,
        )
        logs = tmp_path_factory.mktemp("quality-logs")
        with running_stack(settings, "quality", logs / "worker.log", "quality") as stack:
            yield stack
        assert stack.worker.proc.poll() is not None


def _image(api, url: str) -> torch.Tensor:
    from worker.render.images import from_uint8

    data, content_type = api.image(url)
    assert content_type == "image/png"
    return from_uint8(np.asarray(Image.open(io.BytesIO(data)).convert("RGB")))


def test_imported_model_projects_photos_and_scores_realism(stack, ada_weights):
    from worker.anycost.checkpoints import load_discriminator
    from worker.render import quality

    api = stack.api
    photos = [p for p in real_photos() if p[0] in ("astronaut.png", "grace_hopper.jpg")]
    created = api.submit(photos, RECIPE)
    batch = api.wait(created["id"], settled("preview_ready", "failed"), timeout=300)
    d = load_discriminator(f"{ada_weights}/discriminator_{CONFIG}.pt", "cpu")
    for item in batch["items"]:
        assert item["status"] == "preview_ready", item["error"]
        p = item["projection"]
        assert p["method"] == "w_projector" and p["steps"] == STEPS  # NVIDIA's projector: the default
        assert p["resolution"] == 64 and p["error"] < p["error_start"]
        assert item["timings"]["project_per_step"] > 0
        preview = item["realism"]["preview"]
        assert 0.0 <= preview["score"] <= 1.0 and item["realism"]["final"] is None
        # The worker's logit is the imported discriminator's on the stored 32 px preview.
        logit = quality.realism_logits(d, _image(api, item["preview_url"]))[0]
        assert logit == pytest.approx(preview["logit"], abs=0.05)

    assert api.finalize(created["id"])
    batch = api.wait(created["id"], settled("done", "failed"), timeout=300)
    for item in batch["items"]:
        assert item["status"] == "done", item["error"]
        assert 0.0 <= item["realism"]["final"]["score"] <= 1.0
        assert item["consistency"]["resolution"] == 32 and item["consistency"]["psnr"] > 5
        assert _image(api, item["final_url"]).shape == (1, 3, 64, 64)

    ranked = api.http.get(f"{api.base}/batches/{created['id']}", params={"sort": "realism"})
    scores = [i["realism"]["final"]["logit"] for i in ranked.json()["items"]]
    assert scores == sorted(scores, reverse=True) and len(scores) == 2
