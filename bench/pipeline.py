"""What the system adds to the renders: N photos through the whole service vs the same work in a loop.

    python -m bench.pipeline                       # tiny-random, 8 items
    python -m bench.pipeline --n 16 --threads 2
    python -m bench.pipeline --model random-1024   # the 1024 px architecture, random weights

System: HTTP submit of one batch -> Redis -> one Celery worker process (prefork, one pool
process) -> SQL, polled over HTTP until every item is preview_ready; then finalize over HTTP and
poll until done. Direct: in this process, for each photo in a loop, the same stages at the same
costs (decode, faces, encode, edit, preview + projection render, PNG, final render, PNG).
The direct loop groups photos like the worker does (``--batch-size``, default 8; use 1 for
one photo per pass on both sides). Both warm up first (one item) and use the same number of torch threads; they run one after the
other, never together. Prints the throughput ratio, the added time per item and the latency from
submit to the first render task starting.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import torch

from shared.platform.settings import Settings
from shared.recipe.parse import Cost, parse_recipe
from tests.support.stack import ApiClient, WebServer, WorkerProcess, real_photos, settled

REPO = Path(__file__).resolve().parent.parent

RANDOM_1024 = "random-1024"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="tiny-random",
                   help=f"a catalogue config with installed weights, or {RANDOM_1024}")
    p.add_argument("--n", type=int, default=8, help="items in the batch")
    p.add_argument("--threads", type=int, default=2, help="torch threads, both sides")
    p.add_argument("--batch-size", type=int, default=8, help="worker render_batch_size")
    p.add_argument("--preview", default=None, help="channels,resolution (default: model's)")
    p.add_argument("--final", default=None, help="channels,resolution (default: full)")
    p.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    p.add_argument("--redis-url", default=None,
                   help="a Redis the bench may flush (default: a private redis-server it starts)")
    p.add_argument("--weights-dir", default=None, help="default: var/weights (tiny: a tmp dir)")
    p.add_argument("--poll", type=float, default=0.05, help="seconds between status polls")
    p.add_argument("--repeat", type=int, default=1,
                   help="alternate direct and system runs this many times; report the best of each")
    return p.parse_args(argv)


def _cost(text: str | None) -> dict | None:
    if not text:
        return None
    channels, resolution = text.split(",")
    return {"channels": float(channels), "resolution": int(resolution)}


def prepare_model(args, workdir: Path) -> tuple[str, str]:
    """(config name, weights dir) the worker and the direct loop both load."""
    if args.model != RANDOM_1024:
        default = str(workdir / "weights") if args.model == "tiny-random" else str(REPO / "var/weights")
        return args.model, args.weights_dir or default
    from bench.random_weights import install_random_1024

    directory = args.weights_dir or str(workdir / "weights-1024")
    return install_random_1024(directory), directory


def direct_loop(bundle, photos, recipe, n: int, batch_size: int, settings: Settings) -> float:
    """The renders alone, in this process: every stage of the pipeline, ``batch_size`` photos per
    forward pass (as the worker groups them), with nothing around it."""
    from worker.render import stages
    from worker.render.images import encode_png, to_uint8

    def group(datas: list[bytes]) -> None:
        crops = []
        for data in datas:
            rgb = stages.decode(data, settings.max_pixels)
            crops += [f.rgb for f in stages.prepare_faces(rgb, bundle, recipe)][:1]
        with torch.inference_mode():
            w = stages.encode(bundle, crops, bundle.device)
            edited = stages.edit(bundle, w, recipe.edits)
            previews = to_uint8(stages.render(bundle, torch.cat([edited, w]), recipe.preview))
            for image in previews:
                encode_png(image)
            finals = to_uint8(stages.render(bundle, stages.edit(bundle, w, recipe.edits), recipe.final))
            for image in finals:
                encode_png(image)

    group([photos[0][1]])  # warm-up
    datas = [photos[i % len(photos)][1] for i in range(n)]
    start = time.perf_counter()
    for i in range(0, n, batch_size):
        group(datas[i:i + batch_size])
    return time.perf_counter() - start


def system_run(api: ApiClient, photos, recipe_dict, n: int, poll: float, services) -> dict:
    files = [photos[i % len(photos)] for i in range(n)]
    submitted_at = datetime.now(UTC).replace(tzinfo=None)
    start = time.perf_counter()
    created = api.submit(files, recipe_dict)
    api.wait(created["id"], settled("preview_ready", "failed"), timeout=3600, poll=poll)
    previews_done = time.perf_counter()
    api.finalize(created["id"])
    batch = api.wait(created["id"], settled("done", "failed"), timeout=3600, poll=poll)
    end = time.perf_counter()
    failed = [i for i in batch["items"] if i["status"] != "done"]
    if failed:
        raise SystemExit(f"{len(failed)} items failed: {failed[0]['error']}")
    starts = _task_starts(services, created["id"])
    return {
        "total": end - start, "to_previews": previews_done - start,
        "submit_to_start": min(starts) - submitted_at.timestamp() if starts else float("nan"),
        "queue_wait": statistics.median(i["timings"].get("queue_wait", 0) for i in batch["items"]),
        "first_queue_wait": min(i["timings"].get("queue_wait", 0) for i in batch["items"]),
        # Seconds the worker spent in the pipeline's stages (each item's share of batched passes).
        "stages": sum(v for i in batch["items"] for k, v in i["timings"].items()
                      if k != "queue_wait"),
    }


def _task_starts(services, batch_id: str) -> list[float]:
    """When each item's first preview task took it: enqueued_at + its queue wait."""
    from sqlalchemy import select

    from shared.store.tables import Item

    with services.sessions() as session:
        rows = session.execute(
            select(Item.enqueued_at, Item.timings).where(Item.batch_id == batch_id)).all()
    return [
        enq.replace(tzinfo=UTC).timestamp() + timings.get("queue_wait", 0.0)
        for enq, timings in rows if enq is not None
    ]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.redis_url is None:  # never flush a Redis someone else uses
        from tests.support.redis_server import session_server

        args.redis_url = session_server().url(0)
    import redis

    from shared.store.migrate import upgrade
    from web import create_app
    from web.auth import create_token, create_user
    from web.extensions import services
    from worker.anycost.bundle import load_bundle

    workdir = Path(tempfile.mkdtemp(prefix="anycost-bench-"))
    model, weights_dir = prepare_model(args, workdir)
    database_url = args.database_url or f"sqlite:///{workdir / 'bench.db'}"
    upgrade(database_url)
    redis.Redis.from_url(args.redis_url).flushdb()
    settings = Settings(database_url=database_url, redis_url=args.redis_url, model=model,
                        weights_dir=weights_dir, torch_threads=args.threads,
                        render_batch_size=args.batch_size, max_files_per_batch=max(500, args.n),
                        max_upload_mb=1024, task_soft_time_limit=3000, task_hard_time_limit=3600)
    torch.set_num_threads(args.threads)
    bundle = load_bundle(model, weights_dir, device="cpu")
    recipe_dict = {"edits": {"smiling": 0.5, "young": -0.3}}
    if _cost(args.preview):
        recipe_dict["preview"] = _cost(args.preview)
    if _cost(args.final):
        recipe_dict["final"] = _cost(args.final)
    recipe = parse_recipe(recipe_dict, bundle.resolution)
    recipe_dict.update(preview=recipe.preview.as_dict(), final=recipe.final.as_dict())
    photos = real_photos()
    print(f"model {model} ({bundle.resolution} px, pretrained={bundle.pretrained}), {args.n} items,"
          f" preview {_fmt(recipe.preview)}, final {_fmt(recipe.final)}, {args.threads} threads")


    worker = WorkerProcess(settings, "bench", workdir / "worker.log")
    app = create_app(settings)
    server = WebServer(app)
    try:
        with services(app).sessions.begin() as session:
            token = create_token(session, create_user(session, "bench"))
        api = ApiClient(server.url, token)
        worker.wait_ready(timeout=1800)
        system_run(api, photos, recipe_dict, 1, args.poll, services(app))  # warm-up
        directs, results = [], []
        for _ in range(args.repeat):  # alternated, so a busy spell of the machine hits both
            directs.append(direct_loop(bundle, photos, recipe, args.n, args.batch_size, settings))
            results.append(system_run(api, photos, recipe_dict, args.n, args.poll, services(app)))
    finally:
        server.stop()
        worker.stop()
        services(app).close()
    direct = min(directs)
    result = min(results, key=lambda r: r["total"])
    system = result["total"]
    if args.repeat > 1:
        print("direct runs: " + ", ".join(f"{d:.2f}" for d in directs) + " s; system runs: "
              + ", ".join(f"{r['total']:.2f}" for r in results) + " s (best of each below)")
    print(f"direct loop : {direct:8.2f} s  ({args.n / direct:6.2f} items/s)")
    print(f"system      : {system:8.2f} s  ({args.n / system:6.2f} items/s); "
          f"previews of all items after {result['to_previews']:.2f} s")
    print(f"throughput ratio system/direct: {direct / system:.3f}  "
          f"(system time {100 * (system / direct - 1):+.1f}% vs direct)")
    print(f"added time per item: {1000 * (system - direct) / args.n:+.1f} ms")
    print(f"worker time in pipeline stages: {result['stages']:.2f} s; everything else (HTTP, "
          f"queue, SQL, polling): {system - result['stages']:.2f} s "
          f"({100 * (system / result['stages'] - 1):+.1f}%)")
    print(f"submit -> first preview task start: {1000 * result['submit_to_start']:.1f} ms "
          f"(enqueue -> start: first {1000 * result['first_queue_wait']:.1f} ms, "
          f"median {1000 * result['queue_wait']:.1f} ms)")
    print(f"worker log: {workdir / 'worker.log'}")
    return 0


def _fmt(cost: Cost) -> str:
    return f"{cost.channels}x@{cost.resolution}px"


if __name__ == "__main__":
    sys.exit(main())
