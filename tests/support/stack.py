"""A whole system on one machine, for the integration tests and bench/pipeline.py: real Celery
worker processes (``python -m celery -A worker.process.celery_app worker``), the real web app served over
HTTP from a thread, and a small REST client for the API."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import requests
from PIL import Image

from shared.platform.settings import ENV_VARS, Settings
from tests.support.ports import listen_port

REPO = Path(__file__).resolve().parents[2]


def worker_env(settings: Settings) -> dict[str, str]:
    """The environment a worker on another host would get: database, Redis, model, weights."""
    env = dict(os.environ)
    env.update({
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": settings.redis_url,
        "ANYCOST_MODEL": settings.model,
        "ANYCOST_WORKER_MODEL": settings.worker_model,
        "ANYCOST_WEIGHTS_DIR": settings.weights_dir,
        "ANYCOST_RENDER_BATCH_SIZE": str(settings.render_batch_size),
        "ANYCOST_FINAL_BATCH_SIZE": str(settings.final_batch_size),
        "ANYCOST_RENDER_GATHER": settings.render_gather,
        "ANYCOST_RENDER_GATHER_MS": str(settings.render_gather_ms),
        "ANYCOST_TORCH_THREADS": str(settings.torch_threads),
        "ANYCOST_DEVICE": settings.device,
        "ANYCOST_TASK_SOFT_LIMIT": str(settings.task_soft_time_limit),
        "ANYCOST_TASK_HARD_LIMIT": str(settings.task_hard_time_limit),
        "ANYCOST_PROJECTION_STEPS": str(settings.projection_steps),
        "ANYCOST_PROJECTION_MAX_SECONDS": str(settings.projection_max_seconds),
        "ANYCOST_REALISM": settings.realism,
        "ANYCOST_INCEPTION_PATH": settings.inception_path,
        "ANYCOST_INCEPTION_SHA256": settings.inception_sha256,
        "ANYCOST_LPIPS_VGG_PATH": settings.lpips_vgg_path,
        "ANYCOST_EVAL_DATA_DIR": settings.eval_data_dir,
        "ANYCOST_EVAL_CACHE_DIR": settings.eval_cache_dir,
        "PYTHONUNBUFFERED": "1",
    })
    return env


def settings_env(settings: Settings) -> dict[str, str]:
    """Every setting that differs from its default, as the environment variable it comes from."""
    defaults = Settings()
    env = {}
    by_attr = {spec.attr: spec.env for spec in ENV_VARS}
    for f in fields(Settings):
        if f.name in by_attr and getattr(settings, f.name) != getattr(defaults, f.name):
            value = getattr(settings, f.name)
            if isinstance(value, bool):
                value = "1" if value else "0"
            env[by_attr[f.name]] = str(value)
    return env


def process_env(settings: Settings) -> dict[str, str]:
    """The environment of a process of the stack: exactly ``settings`` (no ANYCOST_* of ours)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANYCOST_")}
    env.update(settings_env(settings))
    env.update({"DATABASE_URL": settings.database_url, "REDIS_URL": settings.redis_url,
                "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(REPO)})
    return env


class WorkerProcess:
    """One ``celery worker`` (prefork, one pool process) in its own process group, so that
    ``stop`` ends it and its pool child together."""

    def __init__(self, settings: Settings, name: str, log_path: Path, queues: str = "preview,final"):
        self.log_path = log_path
        cmd = [
            sys.executable, "-m", "celery", "-A", "worker.process.celery_app", "worker",
            "-Q", queues, "-c", "1", "-P", "prefork", "-n", f"{name}@%h",
            "--loglevel", "INFO", "--without-gossip", "--without-mingle", "--without-heartbeat",
        ]
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            cmd, cwd=REPO, env=worker_env(settings), stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 300) -> None:
        """Until the pool process has loaded its models and beats (the worker logs
        'serving: model' after its first heartbeat)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if "serving: model" in self.log():
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited with {self.proc.returncode}:\n{self.log()[-3000:]}")
            time.sleep(0.2)
        raise TimeoutError(f"worker not ready after {timeout}s:\n{self.log()[-3000:]}")

    def stop(self, timeout: float = 20) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)  # warm shutdown of the worker and its child
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        try:  # the pool child, should it have outlived its parent
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self._log.close()


class WebServer:
    """The Flask app on a real HTTP port (threaded werkzeug server), for as long as needed."""

    def __init__(self, app, host: str = "127.0.0.1"):
        import logging

        from werkzeug.serving import make_server

        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
        self.server = make_server(host, 0, app, threaded=True)
        self.url = f"http://{host}:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(10)


class GunicornServer:
    """The web app as deployed (``gunicorn -c web/gunicorn.conf.py 'web:create_app()'``: gthread
    workers in processes of their own), on a free local port, configured like the workers
    (``env``: more variables, e.g. ``settings_env``, over those)."""

    def __init__(self, settings: Settings, log_path: Path, workers: int = 2, threads: int = 4,
                 env: dict[str, str] | None = None):
        port = listen_port("127.0.0.1")
        self.url = f"http://127.0.0.1:{port}"
        env = {**worker_env(settings), "GUNICORN_BIND": f"127.0.0.1:{port}",
               "GUNICORN_WORKERS": str(workers), "GUNICORN_THREADS": str(threads),
               "SECRET_KEY": "stack-gunicorn", **(env or {})}
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "web/gunicorn.conf.py", "web:create_app()"],
            cwd=REPO, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        _wait_healthy(self.proc, self.url, log_path, "gunicorn")

    def stop(self, timeout: float = 20) -> None:
        _stop_group(self.proc, timeout)
        self._log.close()


class StreamServiceProcess:
    """The stream service (``python -m web.streams``) on a free local port, with exactly
    ``settings`` (``process_env``); ready once its nudge subscription is up."""

    def __init__(self, settings: Settings, log_path: Path):
        port = listen_port("127.0.0.1")
        self.url = f"http://127.0.0.1:{port}"
        env = {**process_env(settings), "ANYCOST_STREAMS_HOST": "127.0.0.1",
               "ANYCOST_STREAMS_PORT": str(port)}
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen([sys.executable, "-m", "web.streams"], cwd=REPO, env=env,
                                     stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        _wait_healthy(self.proc, self.url, log_path, "the stream service",
                      ready=lambda r: r.json()["nudges"] == "subscribed")

    def health(self) -> dict:
        return requests.get(self.url + "/healthz", timeout=10).json()

    def threads(self) -> int:
        return process_status(self.proc.pid)["Threads"]

    def rss_mb(self) -> float:
        return process_status(self.proc.pid)["VmRSS"] / 1024

    def stop(self, timeout: float = 20) -> None:
        _stop_group(self.proc, timeout)
        self._log.close()


def process_status(pid: int) -> dict[str, int]:
    """The numeric fields of /proc/<pid>/status (``Threads``, ``VmRSS`` in kB, ...)."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        first = value.split()[0] if value.split() else ""
        if first.isdigit():
            out[key] = int(first)
    return out


def _wait_healthy(proc: subprocess.Popen, url: str, log_path: Path, name: str,
                  timeout: float = 60, ready: Callable | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode}:\n"
                               f"{log_path.read_text(errors='replace')[-3000:]}")
        try:
            answer = requests.get(url + "/healthz", timeout=1)
            if answer.status_code == 200 and (ready is None or ready(answer)):
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{name} not answering after {timeout}s")


def _stop_group(proc: subprocess.Popen, timeout: float) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


class ApiClient:
    """The REST API v1 over HTTP, with polling helpers."""

    def __init__(self, base_url: str, token: str):
        self.base = base_url.rstrip("/") + "/api/v1"
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {token}"

    def _check(self, response: requests.Response, *expected: int) -> requests.Response:
        if response.status_code not in expected:
            raise AssertionError(f"{response.request.method} {response.url}: "
                                 f"{response.status_code} {response.text[:500]}")
        return response

    def submit(self, files: list[tuple[str, bytes, str]], recipe: dict | str) -> dict:
        import json

        recipe_text = recipe if isinstance(recipe, str) else json.dumps(recipe)
        parts = [("files", (name, data, ctype)) for name, data, ctype in files]
        r = self.http.post(f"{self.base}/batches", files=parts, data={"recipe": recipe_text})
        return self._check(r, 201).json()

    def batch(self, batch_id: str) -> dict:
        return self._check(self.http.get(f"{self.base}/batches/{batch_id}"), 200).json()

    def finalize(self, batch_id: str) -> dict:
        return self._check(self.http.post(f"{self.base}/batches/{batch_id}/finalize"), 202).json()

    def edit(self, item_id: str, edits: dict, preview: dict | None = None) -> dict:
        body = {"edits": edits, **({"preview": preview} if preview else {})}
        r = self.http.patch(f"{self.base}/items/{item_id}/edits", json=body)
        return self._check(r, 202).json()

    def edit_and_poll(self, item_id: str, edits: dict, preview: dict | None = None,
                      every: float = 0.02) -> dict:
        """An API client without an event stream: PATCH the edits, then read the item every
        ``every`` seconds until that version's preview is ready. Returns the item."""
        version = self.edit(item_id, edits, preview)["edit_version"]
        while True:
            item = self._check(self.http.get(f"{self.base}/items/{item_id}"), 200).json()
            if item["status"] == "preview_ready" and item["edit_version"] >= version:
                return item
            if item["status"] == "failed":
                raise RuntimeError(f"the item failed: {item['error']}")
            time.sleep(every)

    def image(self, url: str) -> tuple[bytes, str]:
        r = self._check(self.http.get(url), 200)
        return r.content, r.headers["Content-Type"]

    def wait(self, batch_id: str, done: Callable[[dict], bool], timeout: float = 180,
             poll: float = 0.1) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            batch = self.batch(batch_id)
            if done(batch):
                return batch
            if time.monotonic() > deadline:
                raise TimeoutError(f"batch {batch_id} still {batch['counts']} after {timeout}s")
            time.sleep(poll)


def settled(*statuses: str) -> Callable[[dict], bool]:
    """A predicate: every item of the batch is in one of ``statuses``."""
    return lambda batch: all(item["status"] in statuses for item in batch["items"])


def real_photos() -> list[tuple[str, bytes, str]]:
    """Public-domain photos: skimage's astronaut (Eileen Collins, PNG), matplotlib's
    grace_hopper.jpg (JPEG, the file itself) and skimage's camera (greyscale PNG)."""
    import matplotlib.cbook
    import skimage.data

    def png(rgb: np.ndarray) -> bytes:
        out = io.BytesIO()
        Image.fromarray(rgb).save(out, format="PNG")
        return out.getvalue()

    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as f:
        hopper = f.read()
    return [
        ("astronaut.png", png(skimage.data.astronaut()), "image/png"),
        ("grace_hopper.jpg", hopper, "image/jpeg"),
        ("camera.png", png(skimage.data.camera()), "image/png"),
    ]


@dataclass
class Stack:
    settings: Settings
    api: ApiClient
    app: object  # the Flask app (its services: sessions, jobs, dispatcher, blobs)
    worker: WorkerProcess
    user_id: int

    @property
    def services(self):
        from web.extensions import services

        return services(self.app)


@contextmanager
def running_stack(settings: Settings, worker_name: str, log_path: Path,
                  username: str, queues: str = "preview,final") -> Iterator[Stack]:
    """Migrations, a flushed Redis database, one real worker process, the web app on a real port
    and a user with a token; everything stopped (and Redis flushed) afterwards."""
    import redis

    from shared.store.migrate import upgrade
    from web import create_app
    from web.auth import create_token, create_user
    from web.extensions import services

    upgrade(settings.database_url)
    broker = redis.Redis.from_url(settings.redis_url)
    broker.flushdb()
    worker = WorkerProcess(settings, worker_name, log_path, queues=queues)
    app = create_app(settings)
    app.config["VALIDATE_RESPONSES"] = True  # an answer off the document is a 500 (and logged)
    server = WebServer(app)
    try:
        with services(app).sessions.begin() as session:
            user = create_user(session, username)
            token = create_token(session, user)
            user_id = user.id
        worker.wait_ready()
        yield Stack(settings, ApiClient(server.url, token), app, worker, user_id)
    finally:
        server.stop()
        worker.stop()
        services(app).close()
        broker.flushdb()
        broker.close()
