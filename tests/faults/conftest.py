"""The fault-injection stack: real processes an operator would run, and the means to break them.

Its own redis-server (appendonly, so it can be killed and restarted from its AOF, flushed, or
stopped with SIGSTOP), a private PostgreSQL database (made to refuse connections with
``ALLOW_CONNECTIONS false`` and its backends terminated), real Celery worker processes, the
reaper as its own process (``python -m worker.process.reaper``), the web app on a real HTTP port.
Timeouts are short (heartbeat 1 s, silence 4 s, visibility 20 s) so that recovery takes seconds.

Every HTTP answer is recorded with its time, so a test can say "no 5xx outside the outage", and
every stored result is read back from the workers' JSON logs, so it can say "none stored twice".
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, select, text

from shared.items.states import TERMINAL
from shared.platform.settings import Settings
from shared.store.tables import Item, WorkerHeartbeat
from tests.conftest import PG_ADMIN_URL, REDIS_DBS, private_pg_database
from tests.faults.web_stack import limit_stack  # noqa: F401 - a fixture of the limit tests
from tests.support.redis_server import RedisServer
from tests.support.stack import (  # noqa: F401 - settings_env: for the fault tests
    REPO,
    ApiClient,
    WebServer,
    WorkerProcess,
    process_env,
    settings_env,
)

# refine_steps: a tiny-random final is ~25 ms, too quick for a fault to land "mid-final" (the
# stack polls every 50 ms for an item a worker holds); the optimisation makes it ~0.3 s.
RECIPE = {"output": "crop", "edits": {"smiling": 0.5},
          "preview": {"channels": 0.5, "resolution": 32},
          "final": {"channels": 1.0, "resolution": 64}, "refine_steps": 25}
DB = REDIS_DBS["faults"]


class FaultWorker(WorkerProcess):
    """A ``celery worker`` (one pool child) with the stack's whole environment and JSON logs."""

    def __init__(self, settings: Settings, node: str, log_path: Path):
        self.log_path = log_path
        self.node = node
        cmd = [sys.executable, "-m", "celery", "-A", "worker.process.celery_app", "worker",
               "-Q", "preview,final", "-c", "1", "-P", "prefork", "-n", node,
               "--loglevel", "INFO", "--without-gossip", "--without-mingle", "--without-heartbeat"]
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(cmd, cwd=REPO, env=process_env(settings), stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)

    def child_pid(self) -> int | None:
        """The pool process (the one that renders), or None while Celery replaces it."""
        try:
            children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text()
        except OSError:
            return None
        pids = [int(p) for p in children.split() if _running(int(p))]
        return pids[0] if pids else None

    def kill_child(self) -> int:
        pid = self.child_pid()
        assert pid is not None, "the worker has no pool process to kill"
        os.kill(pid, signal.SIGKILL)
        return pid

    def kill(self) -> None:
        """kill -9 of the whole worker: the main process and its pool child."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stored(self) -> list[tuple[str, int, str]]:
        """(item_id, edit_version, kind) of every result this worker stored, from its logs."""
        out = []
        for line in self.log().splitlines():
            if not line.startswith("{"):
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if "rendered_by" in record and record.get("item_id"):
                out.append((record["item_id"], int(record.get("edit_version", -1)),
                            record["kind"]))
        return out


def _running(pid: int) -> bool:
    """Alive and not a zombie (a killed child stays listed until Celery reaps it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in {"Z", "X"}


class RecordingApi(ApiClient):
    """The REST client, recording (time, method, status) of every answer."""

    def __init__(self, base_url: str, token: str):
        super().__init__(base_url, token)
        self.answers: list[tuple[float, str, int]] = []
        self.http.hooks["response"].append(
            lambda r, *a, **k: self.answers.append((time.monotonic(), r.request.method,
                                                    r.status_code)))

    def server_errors(self, outside: list[tuple[float, float]]) -> list[tuple[float, str, int]]:
        """5xx answers not within any of the ``(start, end)`` windows."""
        return [a for a in self.answers if a[2] >= 500
                and not any(start <= a[0] <= end for start, end in outside)]


@dataclass
class Experiment:
    name: str
    submitted: int
    settled: int = 0
    lost: int = 0
    duplicated: int = 0
    recover_s: float = 0.0
    codes: dict = field(default_factory=dict)


@dataclass
class FaultStack:
    settings: Settings
    redis: RedisServer
    app: object
    api: RecordingApi
    logs: Path
    pg_name: str
    workers: list[FaultWorker] = field(default_factory=list)
    reaper: subprocess.Popen | None = None
    results: list[Experiment] = field(default_factory=list)

    @property
    def sessions(self):
        from web.extensions import services

        return services(self.app).sessions

    # --- processes -------------------------------------------------------------------------

    def start_worker(self, wait: bool = True) -> FaultWorker:
        n = len(self.workers)
        worker = FaultWorker(self.settings, f"fault{n}@host{n}", self.logs / f"worker{n}.log")
        self.workers.append(worker)
        if wait:
            worker.wait_ready()
        return worker

    def worker(self, timeout: float = 120) -> FaultWorker:
        """A running worker (started when none is) whose pool process has written its
        heartbeat, so that the API takes batches for its model. Right after a test that killed
        the pool process, Celery may still be replacing it: a batch sent then is refused (409
        ``model_unavailable``: the killed process stopped beating, the new one has not begun)."""
        alive = [w for w in self.workers if w.alive()]
        worker = alive[-1] if alive else self.start_worker()
        self.wait_for(lambda: self._beating(worker), timeout, f"a heartbeat of {worker.node}'s "
                      "pool process")
        return worker

    def _beating(self, worker: FaultWorker) -> bool:
        pid = worker.child_pid()
        if pid is None:
            return False
        with self.sessions() as session:
            return session.get(WorkerHeartbeat, f"{worker.node}:{pid}") is not None

    def wait_child(self, worker: FaultWorker, timeout: float = 120) -> None:
        """Until the worker's (new) pool process has loaded its models again."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if worker.log().count("serving: model") >= 1 and worker.child_pid():
                return
            time.sleep(0.2)
        raise TimeoutError("no pool process")

    # --- PostgreSQL --------------------------------------------------------------------------

    def refuse_db(self, refuse: bool) -> None:
        """Our private database refuses (or accepts again) new connections; refusing also
        ends every open one, as a restart of the server would."""
        admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                conn.execute(text(f'ALTER DATABASE "{self.pg_name}" ALLOW_CONNECTIONS '
                                  f'{"false" if refuse else "true"}'))
                if refuse:
                    conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                      "WHERE datname = :db AND pid <> pg_backend_pid()"),
                                 {"db": self.pg_name})
        finally:
            admin.dispose()

    # --- observing ---------------------------------------------------------------------------

    def items(self, batch_id: str) -> list:
        for _ in range(100):  # the database may just be coming back
            try:
                with self.sessions() as session:
                    return session.execute(
                        select(Item.id, Item.status, Item.worker, Item.error_code, Item.attempts,
                               Item.edit_version)
                        .where(Item.batch_id == batch_id).order_by(Item.position)).all()
            except Exception:
                time.sleep(0.2)
        raise RuntimeError("database unreachable")

    def wait_for(self, check: Callable[[], bool], timeout: float, what: str,
                 poll: float = 0.05) -> float:
        started = time.monotonic()
        while not check():
            if time.monotonic() - started > timeout:
                raise TimeoutError(f"{what} not within {timeout}s")
            time.sleep(poll)
        return time.monotonic() - started

    def wait_held(self, batch_id: str, status: str, timeout: float = 60) -> str:
        """Until a worker holds an item of the batch in ``status``; its id."""
        found: list[str] = []

        def held() -> bool:
            found[:] = [r.id for r in self.items(batch_id) if r.status == status and r.worker]
            return bool(found)

        self.wait_for(held, timeout, f"an item {status} under a worker")
        return found[0]

    def settle(self, batch_id: str, timeout: float, final: bool = False) -> float:
        """Seconds until every item is done/failed/canceled (or preview_ready unless ``final``)."""
        ends = {s.value for s in TERMINAL} | (set() if final else {"preview_ready"})
        return self.wait_for(lambda: all(r.status in ends for r in self.items(batch_id)),
                             timeout, f"batch {batch_id} settled", poll=0.2)

    def stored(self) -> Counter:
        return Counter(s for w in self.workers for s in w.stored())

    def record(self, name: str, batch_ids: list[str], recover_s: float, final: bool) -> Experiment:
        """The experiment's row: settled, lost (still active), duplicated results."""
        rows = [r for b in batch_ids for r in self.items(b)]
        ends = {s.value for s in TERMINAL} | (set() if final else {"preview_ready"})
        ids = {r.id for r in rows}
        dup = sum(1 for (item, _v, _k), n in self.stored().items() if item in ids and n > 1)
        exp = Experiment(name, len(rows), sum(r.status in ends for r in rows),
                         sum(r.status not in ends for r in rows), dup, round(recover_s, 1),
                         dict(Counter(r.error_code or r.status for r in rows)))
        self.results.append(exp)
        return exp


def wait_http(url: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            requests.get(url, timeout=1)
            return
        except requests.RequestException:
            time.sleep(0.1)


SHORT_TIMEOUTS = dict(heartbeat_seconds=1, heartbeat_timeout=4, visibility_timeout=20,
                      max_attempts=3, task_soft_time_limit=16, task_hard_time_limit=18,
                      db_retry_seconds=30, redis_connect_timeout=1.0, redis_socket_timeout=3.0,
                      redis_publish_timeout=0.5)


@contextmanager
def running_fault_stack(weights_dir: str, tmp_path_factory, **timeouts) -> Iterator[FaultStack]:
    """The stack (see the module docstring) with ``timeouts`` (settings) over the defaults;
    its experiments' table is printed at the end."""
    from shared.store.migrate import upgrade
    from web import create_app
    from web.auth import create_token, create_user
    from web.extensions import services

    logs = tmp_path_factory.mktemp("fault-logs")
    redis_server = RedisServer(appendonly=True, workdir=str(tmp_path_factory.mktemp("redis")))
    redis_server.start()
    with private_pg_database("anycost_faults") as pg_url:
        upgrade(pg_url)
        settings = Settings(
            database_url=pg_url, redis_url=redis_server.url(DB), model="tiny-random",
            weights_dir=weights_dir, torch_threads=1, render_batch_size=2,
            batch_queue_cap=16, log_json=True,
            # ANYCOST_FAULTS_GATHER=on: the same faults with micro-batching (worker.render.gather)
            **{"render_gather": os.environ.get("ANYCOST_FAULTS_GATHER", "auto"), **timeouts},
        )
        app = create_app(settings)
        app.config["VALIDATE_RESPONSES"] = True  # answers under faults match the document too
        server = WebServer(app)
        with services(app).sessions.begin() as session:
            token = create_token(session, create_user(session, "faults"))
        stack = FaultStack(settings, redis_server, app, RecordingApi(server.url, token), logs,
                           pg_url.rsplit("/", 1)[1])
        reaper_log = open(logs / "reaper.log", "wb")  # noqa: SIM115
        stack.reaper = subprocess.Popen(
            [sys.executable, "-m", "worker.process.reaper"], cwd=REPO, env=process_env(settings),
            stdout=reaper_log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            stack.start_worker()
            yield stack
        finally:
            print("\n| experiment | submitted | settled | lost | duplicated | recovery (s) | "
                  "outcomes |\n|---|---|---|---|---|---|---|")
            for e in stack.results:
                print(f"| {e.name} | {e.submitted} | {e.settled} | {e.lost} | {e.duplicated} | "
                      f"{e.recover_s} | {e.codes} |")
            report = os.environ.get("ANYCOST_FAULTS_REPORT")
            if report:
                Path(report).write_text(json.dumps([vars(e) for e in stack.results], indent=1))
            server.stop()
            for worker in stack.workers:
                worker.stop()
            stack.reaper.terminate()
            stack.reaper.wait(10)
            reaper_log.close()
            services(app).close()
            stack.refuse_db(False)
            redis_server.close()


#: ``ANYCOST_FAULTS_DEFAULTS=1``: the same experiments under the service's default timeouts
#: (heartbeat 10 s, silence 45 s, visibility 780 s ...), as ``python -m bench.faults`` runs them.
DEFAULT_TIMEOUTS = os.environ.get("ANYCOST_FAULTS_DEFAULTS", "") not in ("", "0")


@pytest.fixture(scope="module")
def fault_stack(tiny_weights_dir, tmp_path_factory) -> Iterator[FaultStack]:
    """The stack with short timeouts (heartbeat 1 s, silence 4 s, visibility 20 s), or the
    defaults under ``ANYCOST_FAULTS_DEFAULTS``."""
    timeouts = {} if DEFAULT_TIMEOUTS else SHORT_TIMEOUTS
    with running_fault_stack(tiny_weights_dir, tmp_path_factory, **timeouts) as stack:
        yield stack
