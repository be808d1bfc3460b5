"""The trained generator is a released-layout file: it loads strictly with ``load_generator``,
installs with ``python -m worker.anycost.weights import`` and the service renders with it."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from shared.recipe.parse import default_costs
from tests.train.conftest import REPO, torchrun, train_env
from worker.anycost import tiny
from worker.anycost.bundle import load_bundle
from worker.anycost.checkpoints import load_generator
from worker.render.stages import render

pytestmark = pytest.mark.slow  # a torchrun training run (make test-fast leaves it out)


def test_trained_generator_loads_installs_and_renders(tmp_path, data_dir):
    teacher = tiny.build_tiny_random(tmp_path / "teacher", kinds=["generator"])["generator"]
    out = tmp_path / "run"
    result = torchrun(1, ["channels", "--teacher", str(teacher), "--data", str(data_dir),
                          "--out", str(out), "--name", "mine", "--batch", "2", "--steps", "2",
                          "--workers", "0", "--log-every", "1"])
    assert "step 2/2" in result.stdout and "img/s" in result.stdout and "eta" in result.stdout
    path = out / "generator_mine.pt"
    g = load_generator(path)  # strict
    assert g.resolution == 64
    trained = torch.load(path, weights_only=True)["g_ema"]
    assert any(not torch.equal(trained[k], v)
               for k, v in torch.load(teacher, weights_only=True)["g_ema"].items())

    weights = tmp_path / "weights"
    cli = subprocess.run([sys.executable, "-m", "worker.anycost.weights", "--dir", str(weights),
                          "import", tiny.CONFIG_NAME, str(path)], cwd=REPO, env=train_env(),
                         capture_output=True, text=True, timeout=120)
    assert cli.returncode == 0, cli.stderr
    bundle = load_bundle(tiny.CONFIG_NAME, weights)
    for k, v in bundle.generator.state_dict().items():
        assert torch.equal(v, trained[k]), k
    wplus = bundle.generator.broadcast(bundle.generator.mean_latent(64))
    for cost in default_costs(bundle.resolution):
        image = render(bundle, wplus, cost)
        assert image.shape == (1, 3, cost.resolution, cost.resolution)
        assert torch.isfinite(image).all()
