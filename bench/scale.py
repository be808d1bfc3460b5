"""Scale-out on one machine: items per second through the whole service with 1 and 2 worker
processes (1 torch thread each), with batched rendering on (render_batch_size 8) and off (1).

    python -m bench.scale            # 24 items per run, tiny-random
    python -m bench.scale --quick    # 8 items per run
    python -m bench.scale --n 48 --repeat 2
    python -m bench.scale --edits 8 --seconds 20   # one worker, 8 users editing: gather off/on

Each run: fresh worker processes (started and warmed up before the clock starts), one HTTP
submit of the same batch of real photos with ``auto_finalize`` (each item: decode, faces,
encode, preview + projection render, then a final render), timed until every item is done.
Workers and the web app share a private PostgreSQL database (created and dropped here) and one
Redis database (default 7, flushed; tests use 6 and 8-15, and a test flushing ours mid-run
would drop its messages). A job is one item (its preview and its final); the ratio column
compares 2 workers with 1 at the same batch size. On a 2-core machine the ceiling is 2x,
less whatever else runs (the web server and the bench's polling share those cores).
"""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import time
import uuid
from pathlib import Path

from shared.platform.settings import Settings
from tests.support.stack import (
    ApiClient,
    WebServer,
    WorkerProcess,
    real_photos,
    settled,
)

REPO = Path(__file__).resolve().parent.parent

RECIPE = {"edits": {"smiling": 0.5, "young": -0.3},
          "preview": {"channels": 0.5, "resolution": 32},
          "final": {"channels": 1.0, "resolution": 64}, "auto_finalize": True}
PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=24, help="items per run")
    p.add_argument("--quick", action="store_true", help="8 items per run")
    p.add_argument("--workers", default="1,2", help="worker process counts to compare")
    p.add_argument("--batch-sizes", default="1,8", help="render_batch_size values to compare")
    p.add_argument("--repeat", type=int, default=1, help="runs per configuration (best kept)")
    p.add_argument("--redis-url", default=None,
                   help="a Redis the bench may flush (default: a private redis-server it starts)")
    p.add_argument("--pg-admin-url", default=PG_ADMIN)
    p.add_argument("--weights-dir", default=None, help="default: a temporary directory")
    p.add_argument("--edits", type=int, default=0,
                   help="instead: previews/s of ONE worker while this many users edit at once, "
                        "with gathering off (batch 1) and on (batch --edit-batch)")
    p.add_argument("--edit-batch", type=int, default=8)
    p.add_argument("--seconds", type=float, default=20.0, help="length of an --edits run")
    p.add_argument("--threads", type=int, default=1, help="torch threads of the worker (--edits)")
    p.add_argument("--device", default="cpu", help="the worker's device (--edits)")
    return p.parse_args(argv)


def photos(n: int) -> list[tuple[str, bytes, str]]:
    base = real_photos()[:2]  # two photos with a face each
    return [(f"{i:03d}-{base[i % 2][0]}", base[i % 2][1], base[i % 2][2]) for i in range(n)]


def one_run(settings: Settings, api: ApiClient, n_workers: int, n: int, logs: Path) -> float:
    """Seconds from submit until all ``n`` items are done, with ``n_workers`` fresh workers."""
    import redis

    redis.Redis.from_url(settings.redis_url).flushdb()
    workers = [WorkerProcess(settings, f"scale{k}-{uuid.uuid4().hex[:6]}", logs / f"w{k}.log")
               for k in range(n_workers)]
    try:
        for worker in workers:
            worker.wait_ready()
        uploads = photos(n)
        started = time.perf_counter()
        created = api.submit(uploads, RECIPE)
        batch = api.wait(created["id"], settled("done", "failed"), timeout=600, poll=0.1)
        seconds = time.perf_counter() - started
    finally:
        for worker in workers:
            worker.stop()
    failed = [i["id"] for i in batch["items"] if i["status"] != "done"]
    if failed:
        raise RuntimeError(f"{len(failed)} items failed; see {logs}")
    return seconds


def main(argv: list[str] | None = None) -> int:
    from sqlalchemy import create_engine, text

    from shared.store.migrate import upgrade
    from web import create_app
    from web.auth import create_token, create_user
    from web.extensions import services

    args = parse_args(argv)
    if args.redis_url is None:  # never flush a Redis someone else uses
        from tests.support.redis_server import session_server

        args.redis_url = session_server().url(0)
    # Killed (timeout, Ctrl-C from a wrapper): still stop the workers and drop the database.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    n = 8 if args.quick else args.n
    worker_counts = [int(x) for x in args.workers.split(",")]
    batch_sizes = [int(x) for x in args.batch_sizes.split(",")]
    workdir = Path(tempfile.mkdtemp(prefix="anycost-bench-scale-"))
    weights = args.weights_dir or str(workdir / "weights")
    db_name = f"anycost_bench_scale_{uuid.uuid4().hex[:8]}"
    admin = create_engine(args.pg_admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{db_name}"'))
    database_url = args.pg_admin_url.rsplit("/", 1)[0] + f"/{db_name}"
    results: dict[tuple[int, int], float] = {}
    try:
        upgrade(database_url)
        if args.edits:
            from bench.scale_edits import compare

            return compare(args, database_url, workdir)
        for batch_size in batch_sizes:
            settings = Settings(database_url=database_url, redis_url=args.redis_url,
                                model="tiny-random", weights_dir=weights, torch_threads=1,
                                render_batch_size=batch_size)
            app = create_app(settings)
            server = WebServer(app)
            try:
                with services(app).sessions.begin() as session:
                    token = create_token(session, create_user(session, f"bench-{batch_size}"))
                api = ApiClient(server.url, token)
                for n_workers in worker_counts:
                    best = min(one_run(settings, api, n_workers, n, workdir)
                               for _ in range(args.repeat))
                    results[(batch_size, n_workers)] = best
                    print(f"  batch {batch_size}, {n_workers} worker(s): {n} items in "
                          f"{best:.2f}s", flush=True)
            finally:
                server.stop()
                services(app).close()
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)'))
        admin.dispose()
    print_table(results, n, worker_counts, batch_sizes)
    return 0


def print_table(results: dict[tuple[int, int], float], n: int, worker_counts: list[int],
                batch_sizes: list[int]) -> None:
    base_workers = worker_counts[0]
    print(f"\n{n} items per run (preview + final each), tiny-random, 1 torch thread per worker")
    print(f"{'render_batch_size':>17} {'workers':>7} {'seconds':>8} {'jobs/s':>7} "
          f"{'vs ' + str(base_workers) + ' worker':>11}")
    for batch_size in batch_sizes:
        for n_workers in worker_counts:
            seconds = results[(batch_size, n_workers)]
            ratio = results[(batch_size, base_workers)] / seconds
            print(f"{batch_size:>17} {n_workers:>7} {seconds:>8.2f} {n / seconds:>7.2f} "
                  f"{ratio:>10.2f}x")
    if len(batch_sizes) > 1:
        first, last = batch_sizes[0], batch_sizes[-1]
        for n_workers in worker_counts:
            gain = results[(first, n_workers)] / results[(last, n_workers)]
            print(f"batch {last} vs {first}, {n_workers} worker(s): {gain:.2f}x")


if __name__ == "__main__":
    raise SystemExit(main())
