"""The worker's Celery app, runtime helpers and image conversions (no worker process here)."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from shared.platform.queue import FINAL_TASK, PREVIEW_TASK
from shared.platform.settings import Settings, get_settings, set_settings
from worker.render import images
from worker.render.runtime import WorkerStartupError, resolve_device, resolve_precision


@pytest.fixture
def app():
    from worker.process.celery_app import create_worker_app

    previous = get_settings()
    settings = Settings(redis_url="redis://127.0.0.1:6379/12", worker_startup_timeout=321,
                        task_soft_time_limit=100, task_hard_time_limit=130)
    yield create_worker_app(settings)
    set_settings(previous)


def test_app_is_configured_for_long_renders(app):
    conf = app.conf
    assert conf.task_acks_late and conf.task_reject_on_worker_lost
    assert conf.worker_prefetch_multiplier == 1 and conf.task_serializer == "json"
    assert (conf.task_soft_time_limit, conf.task_time_limit) == (100, 130)
    assert conf.broker_transport_options["visibility_timeout"] > conf.task_time_limit
    assert conf.worker_proc_alive_timeout == 321  # model loading after fork is allowed time
    assert conf.result_backend is None and conf.task_ignore_result


def test_tasks_have_their_shared_names(app):
    assert app.tasks[PREVIEW_TASK].name == PREVIEW_TASK
    assert app.tasks[FINAL_TASK].name == FINAL_TASK
    assert app.amqp.router.route({}, PREVIEW_TASK)["queue"].name == "preview"
    assert app.amqp.router.route({}, FINAL_TASK)["queue"].name == "final"


def test_module_app_is_built_lazily_from_the_environment(monkeypatch):
    import worker.process.celery_app as module

    previous = get_settings()
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/12")
    monkeypatch.setenv("ANYCOST_WORKER_STARTUP_TIMEOUT", "77")
    monkeypatch.setattr(module, "_app", None)
    set_settings(None)
    try:
        assert module.app is module.app
        assert module.app.conf.worker_proc_alive_timeout == 77
        assert module.app.conf.broker_url == "redis://127.0.0.1:6379/12"
    finally:
        set_settings(previous)


def test_device_and_precision():
    assert resolve_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    if not torch.cuda.is_available():
        with pytest.raises(WorkerStartupError):
            resolve_device("cuda:0")
    assert resolve_precision("fp16", torch.device("cpu")) == torch.float32  # CPU renders fp32
    assert resolve_precision("bf16", torch.device("cuda")) == torch.bfloat16


def test_tensor_png_round_trip():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, size=(2, 16, 24, 3), dtype=np.uint8)
    x = images.from_uint8(rgb)
    assert x.shape == (2, 3, 16, 24) and x.min() >= -1 and x.max() <= 1
    back = images.to_uint8(x)
    assert np.array_equal(back, rgb)
    assert np.array_equal(images.decode_rgb(images.encode_png(back[0])), rgb[0])
    jpeg = images.decode_rgb(images.encode_jpeg(back[1], quality=95))
    assert jpeg.shape == rgb[1].shape
    # out-of-range renders are clamped, not wrapped
    assert images.to_uint8(torch.full((1, 3, 2, 2), 3.0)).min() == 255


def test_center_square():
    rgb = np.zeros((40, 100, 3), np.uint8)
    rgb[:, 30:70] = 200  # the centred 40x40 square
    out = images.center_square(rgb, 20)
    assert out.shape == (20, 20, 3) and out.min() == 200


@pytest.mark.slow  # a fresh interpreter importing torch: seconds
@pytest.mark.parametrize("given, expected", [(None, "PASSIVE"), ("ACTIVE", "ACTIVE")])
def test_worker_processes_let_idle_openmp_threads_sleep_unless_told(given, expected):
    """A worker process (the Celery app's import, as ``celery -A`` does) has OMP_WAIT_POLICY
    set before torch loads libgomp, which reads it once; an operator's own value wins."""
    import subprocess
    import sys

    from tests.conftest import REPO

    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if given:
        env["OMP_WAIT_POLICY"] = given
    probe = ("import sys, worker; before = 'torch' in sys.modules; "
             "import os, worker.process.celery_app; "
             "print(os.environ['OMP_WAIT_POLICY'], before)")
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [expected, "False"]
