"""Event streams held per server process, side by side in one run: the stream service
(``python -m web.streams``, asyncio) and the Flask route on gunicorn gthread (1 process x
``--threads``, the deployment's default 16 threads, 4 of them never given to streams).

For each server: N streams opened at once (every user's per-user cap raised for the bench),
how many it holds (the rest refused: 503 from gunicorn past its thread reserve), the process's
threads, RSS and CPU (its streams' polling, % of one core) while holding them, and the p50/p99 of another user's ``GET /api/v1/me`` on
gunicorn meanwhile (the web API beside the stream service; the same process for the Flask route).
Real processes: its own redis-server, a private PostgreSQL database (dropped afterwards).

    .venv/bin/python -m bench.streams [--streams 200,500,1000] [--flask-streams 200]
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import tempfile
import time
from pathlib import Path

import requests
from PIL import Image

USERS = 10  # streams are spread over them (one batch each)


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (16, 16), (120, 90, 40)).save(out, format="PNG")
    return out.getvalue()


def _users(sessions, web_url: str, n: int) -> tuple[list[tuple[str, str]], str]:
    """``n`` (token, batch id) pairs and one more user's token (the bystander)."""
    from web.auth import create_token, create_user

    with sessions.begin() as session:
        tokens = [create_token(session, create_user(session, f"bench{i}")) for i in range(n + 1)]
    pairs = []
    for token in tokens[:n]:
        answer = requests.post(f"{web_url}/api/v1/batches",
                               files=[("files", ("a.png", _png(), "image/png"))],
                               headers={"Authorization": f"Bearer {token}"}, timeout=60)
        answer.raise_for_status()
        pairs.append((token, answer.json()["id"]))
    return pairs, tokens[n]


def _latencies(url: str, token: str, n: int = 100) -> tuple[float, float]:
    took = []
    for _ in range(n):
        started = time.perf_counter()
        answer = requests.get(f"{url}/api/v1/me", headers={"Authorization": f"Bearer {token}"},
                              timeout=30)
        took.append(time.perf_counter() - started)
        answer.raise_for_status()
    took.sort()
    return statistics.median(took) * 1000, took[int(0.99 * (len(took) - 1))] * 1000


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _gunicorn_worker(master_pid: int) -> int:
    children = Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split()
    return int(children[0])


def _hold(label: str, base: str, pairs, n: int, pid: int, web_url: str, bystander: str) -> dict:
    from tests.support.held_streams import HeldStreams
    from tests.support.stack import process_status

    wanted = [(f"{base}/api/v1/batches/{batch}/events?timeout=300",
               {"Authorization": f"Bearer {token}"}) for token, batch in pairs]
    wanted = (wanted * (n // len(wanted) + 1))[:n]
    with HeldStreams(wanted, open_timeout=120) as held:
        status = process_status(pid)
        cpu, started = _cpu_seconds(pid), time.monotonic()
        p50, p99 = _latencies(web_url, bystander)
        cpu = (_cpu_seconds(pid) - cpu) / (time.monotonic() - started) * 100
    refused = {code: held.statuses.count(code) for code in sorted(set(held.statuses)) if code != 200}
    return {"server": label, "asked": n, "held": held.statuses.count(200),
            "refused": ", ".join(f"{count} x {code or 'no answer'}"
                                 for code, count in refused.items()) or "-",
            "opened": held.opened_in, "threads": status["Threads"],
            "rss": status["VmRSS"] / 1024, "cpu": cpu, "p50": p50, "p99": p99}


def _wait_closed(service, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while service.health()["streams"] and time.monotonic() < deadline:
        time.sleep(0.2)


def run(counts: list[int], flask_count: int, threads: int) -> list[dict]:
    from shared.platform.settings import Settings
    from shared.store.db import make_engine, make_session_factory
    from shared.store.migrate import upgrade
    from tests.conftest import private_pg_database
    from tests.support.redis_server import RedisServer
    from tests.support.stack import GunicornServer, StreamServiceProcess, settings_env
    from tests.support.workers import register_live_worker

    rows = []
    logs = Path(tempfile.mkdtemp(prefix="bench-streams-"))
    with RedisServer() as redis_server, private_pg_database("anycost_streams_bench") as pg_url:
        upgrade(pg_url)
        settings = Settings(database_url=pg_url, redis_url=redis_server.url(0),
                            model="tiny-random", weights_dir=str(logs / "weights"),
                            secret_key="bench", sse_max_per_user=max(counts + [flask_count]))
        engine = make_engine(pg_url)
        sessions = make_session_factory(engine)
        register_live_worker(sessions, settings.model)
        web = GunicornServer(settings, logs / "gunicorn.log", workers=1, threads=threads,
                             env=settings_env(settings))
        service = StreamServiceProcess(settings, logs / "streams.log")
        try:
            pairs, bystander = _users(sessions, web.url, USERS)
            p50, p99 = _latencies(web.url, bystander)
            rows.append({"server": "no streams open", "asked": 0, "held": 0, "refused": "-",
                         "opened": 0.0, "threads": service.threads(), "rss": service.rss_mb(),
                         "cpu": 0.0, "p50": p50, "p99": p99})
            for n in counts:
                rows.append(_hold("stream service, 1 process", service.url, pairs, n,
                                  service.proc.pid, web.url, bystander))
                _wait_closed(service)
            time.sleep(3)  # the service's slots are given back; gunicorn starts afresh
            rows.append(_hold(f"gunicorn gthread, 1 x {threads} threads", web.url, pairs,
                              flask_count, _gunicorn_worker(web.proc.pid), web.url, bystander))
        finally:
            service.stop()
            web.stop()
            engine.dispose()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", default="200,500,1000",
                        help="stream counts for the stream service, comma separated")
    parser.add_argument("--flask-streams", type=int, default=200)
    parser.add_argument("--threads", type=int, default=16, help="gunicorn threads per process")
    args = parser.parse_args()
    counts = [int(c) for c in args.streams.split(",")]
    rows = run(counts, args.flask_streams, args.threads)
    print(f"\n{'server':<34}{'asked':>6}{'held':>6}  {'refused':<14}{'opened s':>9}"
          f"{'threads':>8}{'RSS MB':>8}{'CPU %':>7}   GET /me p50 / p99 ms")
    for r in rows:
        print(f"{r['server']:<34}{r['asked']:>6}{r['held']:>6}  {r['refused']:<14}"
              f"{r['opened']:>9.1f}{r['threads']:>8}{r['rss']:>8.0f}{r['cpu']:>7.0f}   "
              f"{r['p50']:>6.1f} / {r['p99']:.1f}")
    base = rows[0]
    for r in rows[1:]:
        print(f"{r['server']}: holds {r['held']} of {r['asked']}; another user's /me p99 "
              f"{r['p99'] / base['p99']:.1f}x the p99 with no streams open")


if __name__ == "__main__":
    main()
