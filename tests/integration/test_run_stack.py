"""``make run`` (``.ci/run-stack.sh``) for real: with no real weights installed it serves
tiny-random and its banner gives the route to real faces that works today; it runs every part the
service advertises (a render worker, an evaluate worker on its own queue, the reaper, the webhook
delivery process, the web server), and an evaluation queued over the API is taken and done."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import redis_db_url

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
RUNNING = "Anycost batch editor is running"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _session_cmdlines(sid: int) -> list[str]:
    """Command lines of the processes in session ``sid`` (the script and all it started)."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.getsid(int(entry.name)) != sid:
                continue
            out.append((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode())
        except (OSError, ProcessLookupError):
            continue
    return out


class RunStack:
    """``bash .ci/run-stack.sh`` in a session of its own, its output collected by a thread."""

    def __init__(self, env: dict):
        self.proc = subprocess.Popen(["bash", ".ci/run-stack.sh"], cwd=REPO, env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for raw in self.proc.stdout:
            self.lines.append(raw.decode(errors="replace").rstrip("\n"))

    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"no {text!r} from make run:\n{self.output()[-4000:]}")
            time.sleep(0.5)

    def stop(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)  # the script's trap stops what it started
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        except ProcessLookupError:
            pass
        try:  # whatever outlived the trap
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _wait_for_line(path, text: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while text not in path.read_text():
        if time.monotonic() > deadline:
            raise AssertionError(f"no {text!r} in {path.name} within {timeout:.0f}s:\n"
                                 f"{path.read_text()[-4000:]}")
        time.sleep(0.5)


def test_make_run_serves_tiny_random_says_the_route_and_runs_every_process(tiny_weights_dir,
                                                                         tmp_path):
    import redis

    port = _free_port()
    logs = tmp_path / "logs"
    env = {key: os.environ[key] for key in ("PATH", "HOME", "LANG") if key in os.environ}
    env.update({
        "PY": sys.executable, "PYTHONUNBUFFERED": "1", "PORT": str(port),
        "REDIS_URL": redis_db_url("truth"), "DATABASE_URL": f"sqlite:///{tmp_path / 'run.db'}",
        "ANYCOST_WEIGHTS_DIR": tiny_weights_dir, "ANYCOST_TORCH_THREADS": "1",
        "RUN_STACK_LOG_DIR": str(logs), "RUN_STACK_LOAD_WAIT": "300",
        "ANYCOST_LPIPS_VGG_PATH": str(tmp_path / "no-vgg16.pth"),  # consistency without LPIPS
    })
    broker = redis.Redis.from_url(env["REDIS_URL"])
    broker.flushdb()
    stack = RunStack(env)
    try:
        stack.wait_for(RUNNING, timeout=420)
        out = stack.output()
        # No real weights here: tiny-random, and the route that works today.
        assert "NO PRETRAINED WEIGHTS INSTALLED" in out and "(model: tiny-random)" in out
        assert "api.ngc.nvidia.com" in out and "import-nvidia stylegan2-ffhq-1024x1024.pkl" in out
        assert "import-e4e e4e_ffhq_encode.pt" in out and "encoder4editing" in out
        assert "fetch anycost-ffhq-config-f" not in out  # the files it would fetch are gone
        assert "DOES NOT SERVE ITS MODEL" not in out

        base = f"http://127.0.0.1:{port}"
        ready = requests.get(f"{base}/readyz", timeout=10)
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"]["model"] == {"ok": True, "model": "tiny-random"}

        commands = _session_cmdlines(stack.proc.pid)
        def running(*words: str) -> bool:
            return any(all(w in c for w in words) for c in commands)
        assert running("celery", "-Q preview,final", "-c 1"), commands
        assert running("celery", "-Q evaluate", "-c 1"), commands
        assert running("worker.process.reaper"), commands
        assert running("flask", "webhooks deliver"), commands
        assert running("flask", "run", str(port)), commands
        # RUNNING waits for the render worker alone: the evaluate worker may still be loading.
        _wait_for_line(logs / "evaluate.log", "serving: model tiny-random on evaluate", 120)
        assert "serving: model tiny-random on final,preview" in (logs / "worker.log").read_text()

        # An evaluation queued over the API is taken by the evaluate worker, and finishes.
        token = next(line.split()[-1] for line in stack.lines if "API token:" in line)
        http = requests.Session()
        http.headers["Authorization"] = f"Bearer {token}"
        posted = http.post(f"{base}/api/v1/models/tiny-random/evaluations",
                           json={"kind": "consistency", "n": 2, "seed": 3}, timeout=10)
        assert posted.status_code == 202, posted.text
        deadline = time.monotonic() + 180
        while (body := http.get(posted.json()["url"], timeout=10).json())["status"] not in (
                "done", "failed"):
            assert time.monotonic() < deadline, f"evaluation still {body['status']}"
            time.sleep(0.5)
        assert body["status"] == "done", body
        assert body["worker"].startswith("evaluate1@")
    finally:
        stack.stop()
        broker.flushdb()
        broker.close()
