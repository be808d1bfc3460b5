"""The real stack for browser tests: PostgreSQL (a private database), Redis (a private database
number), a Celery worker process on tiny-random, the web app served over HTTP by werkzeug in a
thread, and headless Debian Chromium driven by Playwright (never a downloaded browser)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.conftest import REPO, redis_db_url

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
OUTPUT = REPO / "tests" / "_output" / "browser"
#: A batch's page (not /batches/new, where an upload starts: the page sends the form itself and
#: goes on to the batch once it is made).
BATCH_PAGE = re.compile(r"/batches/[0-9a-f]{32}(\?.*)?$")
USERNAME, PASSWORD = "carol", "a long portal password"


@pytest.fixture
def output_dir() -> Path:
    OUTPUT.mkdir(parents=True, exist_ok=True)
    return OUTPUT


@pytest.fixture
def stack_env(pg_url, tmp_path) -> Iterator[dict]:
    """Settings for every process of the stack (a fresh migrated database, our Redis db)."""
    from shared.store.migrate import upgrade

    redis_url = redis_db_url("browser")
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    upgrade(pg_url)
    env = {
        "DATABASE_URL": pg_url,
        "REDIS_URL": redis_url,
        "ANYCOST_MODEL": "tiny-random",
        "ANYCOST_WEIGHTS_DIR": str(tmp_path / "weights"),
        "ANYCOST_DEVICE": "cpu",
        "ANYCOST_TORCH_THREADS": "1",  # other test runs share the machine's cores
        "ANYCOST_HEARTBEAT_SECONDS": "2",
        "SECRET_KEY": "browser-test-secret",
    }
    yield env
    client.flushdb()
    client.close()


@pytest.fixture
def worker_process(stack_env, output_dir) -> Iterator[subprocess.Popen]:
    """``celery -A worker.process.celery_app worker`` in its own process group, ready when it has sent
    a heartbeat (its models are loaded by then)."""
    from sqlalchemy import select

    from shared.store.db import make_engine, make_session_factory
    from shared.store.tables import WorkerHeartbeat

    log_path = output_dir / "worker.log"
    log = open(log_path, "w")  # noqa: SIM115  (closed below)
    env = {**os.environ, **stack_env, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "worker.process.celery_app", "worker", "-Q", "preview,final",
         "-c", "1", "-P", "solo", "-n", f"portal-browser-{os.getpid()}@%h", "--without-gossip",
         "--without-mingle", "-l", "info"],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    engine = make_engine(stack_env["DATABASE_URL"])
    sessions = make_session_factory(engine)
    deadline = time.monotonic() + 300
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"the worker exited ({proc.returncode}):\n{log_path.read_text()[-3000:]}")
            with sessions() as db:
                if db.scalars(select(WorkerHeartbeat.name)).first():
                    break
            if time.monotonic() > deadline:
                pytest.fail(f"the worker sent no heartbeat in 300 s:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.5)
        yield proc
    finally:
        engine.dispose()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)  # our own process group only
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        log.close()


@pytest.fixture
def web_server(stack_env) -> Iterator[str]:
    """The web app over real HTTP (werkzeug's threaded server in a thread); yields its base URL."""
    from werkzeug.serving import make_server

    from shared.platform.settings import Settings
    from web import create_app
    from web.auth import create_user
    from web.extensions import services

    settings = Settings.from_env(stack_env)
    app = create_app(settings)
    app.config["VALIDATE_RESPONSES"] = True  # an answer off the OpenAPI document is a 500
    with services(app).sessions.begin() as session:
        create_user(session, USERNAME, PASSWORD)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        services(app).close()


@pytest.fixture
def chromium() -> Iterator:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def signed_in_page(chromium, web_server: str, **context_args):
    """A page of a new browser context, signed in through the login form as the test user, and
    the list its console errors are collected in."""
    context = chromium.new_context(viewport={"width": 1280, "height": 900}, **context_args)
    page = context.new_page()
    page.set_default_timeout(30_000)
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(web_server + "/login")
    page.get_by_label("Username").fill(USERNAME)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/batches")
    return page, errors


def settled(page, timeout_ms: int = 300_000) -> None:
    """Until the item editor waits on nothing it asked for (no move unsent, no request or
    preview on its way) and shows the newest version it asked for."""
    page.wait_for_function(
        """() => {
             const e = document.getElementById("editor").dataset;
             return e.pending === "false" && e.shownVersion === e.requested;
           }""", timeout=timeout_ms)
