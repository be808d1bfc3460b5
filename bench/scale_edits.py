"""``bench.scale --edits N``: previews per second of ONE worker while N users edit at once,
with micro-batching off (each message its own pass, batch 1) and on (the worker gathers the
other users' waiting edits into its pass, up to ``--edit-batch``), one run after the other.

Each user owns one item (a real photo, tiny-random, preview 0.5/32, its latent stored) and
loops for ``--seconds``: PATCH an edit, poll the item every 5 ms until that version's preview is
ready, again. Reported: previews/s (all users), the p50/p99 of one edit's round trip and the
mean items per forward pass (the worker's gathered passes, from its log).
"""

from __future__ import annotations

import statistics
import threading
import time
import uuid
from pathlib import Path

from bench.runbook import percentile
from shared.platform.settings import Settings
from tests.support.stack import ApiClient, WebServer, WorkerProcess, real_photos, settled

RECIPE = {"edits": {"smiling": 0.3}, "preview": {"channels": 0.5, "resolution": 32},
          "output": "crop"}


def user_loop(api: ApiClient, item_id: str, until: float, out: list[float]) -> None:
    n = 0
    while time.monotonic() < until:
        n += 1
        start = time.perf_counter()
        api.edit_and_poll(item_id, {"smiling": 0.5 if n % 2 else -0.5}, every=0.005)
        out.append(time.perf_counter() - start)


def one_config(args, database_url: str, workdir: Path, gather: str) -> dict:
    import redis

    from web import create_app
    from web.auth import create_token, create_user
    from web.extensions import services

    batch = args.edit_batch if gather == "on" else 1
    settings = Settings(database_url=database_url, redis_url=args.redis_url, model="tiny-random",
                        weights_dir=args.weights_dir or str(workdir / "weights"),
                        torch_threads=args.threads, device=args.device, render_batch_size=batch,
                        render_gather=gather, batch_queue_cap=64)
    redis.Redis.from_url(settings.redis_url).flushdb()
    app = create_app(settings)
    server = WebServer(app)
    log = workdir / f"edits-{gather}.log"
    worker = WorkerProcess(settings, f"edits-{gather}-{uuid.uuid4().hex[:6]}", log)
    try:
        users = []
        for k in range(args.edits):
            with services(app).sessions.begin() as session:
                token = create_token(session, create_user(session, f"u{gather}{k}"))
            users.append(ApiClient(server.url, token))
        worker.wait_ready()
        photo = real_photos()[0]
        items = []
        for api in users:
            created = api.submit([photo], RECIPE)
            done = api.wait(created["id"], settled("preview_ready", "failed"), timeout=600, poll=0.1)
            items.append(done["items"][0]["id"])
        times: list[list[float]] = [[] for _ in users]
        until = time.monotonic() + args.seconds
        start = time.perf_counter()
        threads = [threading.Thread(target=user_loop, args=(api, item, until, out))
                   for api, item, out in zip(users, items, times, strict=True)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        seconds = time.perf_counter() - start
    finally:
        worker.stop()
        server.stop()
        services(app).close()
    rounds = [x for out in times for x in out]
    return {"gather": gather, "batch": batch, "previews_s": len(rounds) / seconds,
            "p50": statistics.median(rounds), "p99": percentile(rounds, 99),
            "per_pass": _per_pass(log, len(rounds))}


def _per_pass(log: Path, previews: int) -> float:
    """Mean items per preview pass: previews over passes (a gathered pass logs its count)."""
    gathered = 0
    for line in log.read_text(errors="replace").splitlines():
        if "items of other messages" in line:
            gathered += int(line.split("gathered ")[1].split()[0])
    return previews / max(1, previews - gathered)


def compare(args, database_url: str, workdir: Path) -> int:
    results = [one_config(args, database_url, workdir, gather) for gather in ("off", "on")]
    print(f"\none worker ({args.device}, {args.threads} torch thread(s)), {args.edits} users "
          f"editing at once for {args.seconds:.0f} s each, tiny-random preview 0.5/32")
    print(f"{'gather':>6} {'batch':>5} {'previews/s':>10} {'edit p50 ms':>11} {'p99 ms':>8} "
          f"{'items/pass':>10}")
    for r in results:
        print(f"{r['gather']:>6} {r['batch']:>5} {r['previews_s']:>10.2f} {1000 * r['p50']:>11.1f} "
              f"{1000 * r['p99']:>8.1f} {r['per_pass']:>10.2f}")
    return 0
