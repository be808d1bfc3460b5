"""The editor's loop against the bare render of the same cost: edit -> new preview fetched.

    python -m bench.edit_loop                      # 1024 px architecture, random weights, 12 MP
    python -m bench.edit_loop --rounds 15 --threads 2

Loops (``--clients``, each round in turn): ``portal``, what the portal's editor does: PATCH the
item's edits (with the preview cost), then at once ``GET .../preview?v=N&wait=10``, which the
server answers from the worker's preview lane (the batch's event stream open beside it, as on
the page); ``pushed``, a client that waits for the pushed event instead (the editor before the
lane): PATCH, wait for the item's ``item.preview_ready`` of that edit version on the batch's
event stream (``GET /api/v1/batches/<id>/events``, server-sent events), GET the preview image
of that version (then the item's JSON, off the loop's path); ``longpoll``, an API client without
an event stream: PATCH, then one ``GET .../preview?v=N&wait=30``; ``polling``, the same client
before the long-poll: PATCH, read the item every 20 ms until that version is ready, GET the
image. The loops' requests go over one kept-alive ``http.client`` connection each (``requests``
adds about 1.2 ms a request on this machine, a browser nothing like it); ``polling`` keeps
``requests``.
System: the web app as deployed (gunicorn, 2 gthread processes; ``--web thread``: werkzeug in
this process), a private Redis, one Celery worker process, SQLite. Bare: in this process, the same edit and forward pass at the same cost on the same
latent, nothing around it. The two alternate round by round (never at the same time) and use
the same number of torch threads, so a busy spell of the shared machine hits both. Prints p50
and p99 of each loop and the time added to the bare render's p50, against issue 21's targets
(the portal's path <= 15 ms, API clients <= 25 ms: ``ADDED_TARGET_MS``). Two p50s of ~40
renders each move by a few ms from run to run, so it also prints "around": the p50 over rounds
of the loop's time minus the worker's own edit and forward pass of that round (the item's
timings, read after the round): the system's time around the render, without the render's
own spread.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import queue
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import requests
import torch
from PIL import Image

from bench.runbook import percentile, record
from shared.platform.settings import Settings
from shared.recipe.parse import Cost
from tests.support.stack import (
    ApiClient,
    GunicornServer,
    WebServer,
    WorkerProcess,
    settled,
)

REPO = Path(__file__).resolve().parent.parent

COSTS = (Cost(0.5, 256), Cost(0.25, 128))


def costs_for(resolution: int) -> tuple[Cost, ...]:
    """COSTS for the 1024 px model; for a smaller one the same channels at the same fractions of
    its resolution (at least the smallest it allows)."""
    from shared.recipe.parse import min_resolution

    if resolution == 1024:
        return COSTS
    low = min_resolution(resolution)
    return tuple(Cost(c.channels, max(low, c.resolution * resolution // 1024)) for c in COSTS)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=12, help="edits per cost (after warm-up)")
    p.add_argument("--threads", type=int, default=2, help="torch threads, both sides")
    p.add_argument("--megapixels", type=float, default=12.0, help="size of the photo")
    p.add_argument("--weights-dir", default=None, help="default: a tmp dir (random weights)")
    p.add_argument("--web", choices=("gunicorn", "thread"), default="gunicorn",
                   help="gunicorn: the web app as deployed (its own processes, gthread); thread: "
                        "werkzeug's server in this process (shares the GIL with the client)")
    p.add_argument("--trace", action="store_true",
                   help="also print the p50 of each phase of a round and of the worker's stages")
    p.add_argument("--clients", default="portal,pushed,longpoll,polling",
                   help="loops to time, in turn each round: portal (PATCH, GET preview?v=N&wait "
                        "with the event stream open), pushed (PATCH, SSE event, GET image), "
                        "longpoll (PATCH, GET preview?v=N&wait), polling (PATCH, GET item every "
                        "20 ms, GET image)")
    p.add_argument("--model", choices=("random-1024", "tiny-random"), default="random-1024",
                   help="random-1024: the 1024 px architecture, random weights; tiny-random: 64 px")
    p.add_argument("--device", default="cpu", help="worker and bare render: cpu, cuda, cuda:N")
    p.add_argument("--json", default=None, help="append p50/p99 rows here (JSON lines); "
                   "then a missed target does not fail the command")
    p.add_argument("--smoke", action="store_true",
                   help="seconds, for the tests: tiny-random, a 0.3 MP photo, 3 rounds, werkzeug")
    args = p.parse_args(argv)
    if args.smoke:
        args.model, args.megapixels, args.rounds, args.web = "tiny-random", 0.3, 3, "thread"
    return args


def big_photo(megapixels: float) -> tuple[str, bytes, str]:
    """Grace Hopper (matplotlib's sample, public domain) scaled to ``megapixels``, as a JPEG."""
    import matplotlib.cbook

    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as f:
        im = Image.open(io.BytesIO(f.read())).convert("RGB")
    scale = (megapixels * 1e6 / (im.width * im.height)) ** 0.5
    im = im.resize((round(im.width * scale), round(im.height * scale)), Image.Resampling.BICUBIC)
    out = io.BytesIO()
    im.save(out, format="JPEG", quality=92)
    return "hopper-12mp.jpg", out.getvalue(), "image/jpeg"


class EventStream:
    """The batch's server-sent events, read in a thread: (kind, data) pairs in a queue. When the
    server ends the stream (``sse_max_seconds``) it reconnects from the last event id, as a
    browser's EventSource does."""

    def __init__(self, url: str, token: str):
        self.events: queue.Queue = queue.Queue()
        self.url, self.headers = url, {"Authorization": f"Bearer {token}"}
        self.last_id: str | None = None
        self.closed = False
        self.response = self._open()
        threading.Thread(target=self._read, daemon=True).start()

    def _open(self) -> requests.Response:
        headers = dict(self.headers, **({"Last-Event-ID": self.last_id} if self.last_id else {}))
        response = requests.get(self.url, headers=headers, stream=True, timeout=(5, None))
        response.raise_for_status()
        return response

    def _read(self) -> None:
        while not self.closed:
            kind = None
            try:
                for line in self.response.iter_lines(decode_unicode=True):
                    if line.startswith("id: "):
                        self.last_id = line[4:]
                    elif line.startswith("event: "):
                        kind = line[7:]
                    elif line.startswith("data: ") and kind:
                        self.events.put((kind, json.loads(line[6:])))
                if not self.closed:
                    self.response = self._open()
            except Exception:  # closed at the end
                return

    def wait_preview(self, item_id: str, version: int, timeout: float = 600) -> None:
        deadline = time.monotonic() + timeout
        while True:
            kind, data = self.events.get(timeout=max(0.1, deadline - time.monotonic()))
            if data.get("item_id") != item_id:
                continue
            if kind == "item.failed":
                raise SystemExit(f"the item failed: {data.get('error')}")
            if kind == "item.preview_ready" and data.get("edit_version", -1) >= version:
                return

    def close(self) -> None:
        self.closed = True
        self.response.close()


class KeepAlive:
    """The loops' HTTP client: one kept-alive connection, the bearer token on every request."""

    def __init__(self, base_url: str, token: str):
        host, _, port = base_url.removeprefix("http://").partition("/")[0].partition(":")
        self.prefix = "/" + base_url.removeprefix("http://").partition("/")[2]
        self.conn = http.client.HTTPConnection(host, int(port or 80), timeout=60)
        self.headers = {"Authorization": f"Bearer {token}"}

    def request(self, method: str, path: str, body: dict | None = None,
                expect: int = 200) -> tuple[bytes, dict[str, str]]:
        headers = dict(self.headers)
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        self.conn.request(method, self.prefix + path, body=data, headers=headers)
        response = self.conn.getresponse()
        content = response.read()
        if response.status != expect:
            raise SystemExit(f"{method} {path}: {response.status} {content[:300]!r}")
        return content, dict(response.getheaders())

    def edit(self, item_id: str, value: float, cost: Cost) -> int:
        content, _ = self.request("PATCH", f"/items/{item_id}/edits", {
            "edits": {"smiling": value}, "preview": cost.as_dict()}, expect=202)
        return json.loads(content)["edit_version"]

    def close(self) -> None:
        self.conn.close()


# The parts of one round (--trace): the client's phases, then the worker's own stages of that
# preview pass (the item's timings, ``worker_timings``), in milliseconds.
PHASES = ("patch", "until_event", "get_image")


def pushed_round(http: KeepAlive, stream: EventStream, item_id: str, value: float, cost: Cost,
                 trace: dict[str, list[float]] | None = None) -> tuple[float, int]:
    """A client holding the batch's event stream (the editor before the lane): PATCH, wait for
    the pushed event, load the preview of that version straight away (its URL is the item's
    image route with ``?v=<version>``). The item's JSON follows off the loop's path
    (``worker_timings``)."""
    start = time.perf_counter()
    version = http.edit(item_id, value, cost)
    patched = time.perf_counter()
    stream.wait_preview(item_id, version)
    evented = time.perf_counter()
    image, _ = http.request("GET", f"/items/{item_id}/preview?v={version}")
    assert image
    end = time.perf_counter()
    if trace is not None:
        marks = (start, patched, evented, end)
        for name, a, b in zip(PHASES, marks, marks[1:], strict=False):
            trace.setdefault(name, []).append(b - a)
    return end - start, version


def longpoll_round(http: KeepAlive, item_id: str, value: float, cost: Cost, wait: int = 30,
                   trace: dict[str, list[float]] | None = None) -> tuple[float, int]:
    """The preview lane's way: PATCH, then one GET of the preview that waits until that version
    exists (``?v=N&wait=S``). The portal's editor does this with ``wait=10``."""
    start = time.perf_counter()
    version = http.edit(item_id, value, cost)
    patched = time.perf_counter()
    image, headers = http.request("GET", f"/items/{item_id}/preview?v={version}&wait={wait}")
    assert image and int(headers["X-Edit-Version"]) >= version
    end = time.perf_counter()
    if trace is not None:
        trace.setdefault("patch", []).append(patched - start)
        trace.setdefault("wait_get", []).append(end - patched)
    return end - start, version


def polling_round(api: ApiClient, item_id: str, value: float, cost: Cost,
                  every: float = 0.02) -> tuple[float, int]:
    """An API client without an event stream, the way before the long-poll: PATCH, read the
    item every ``every`` seconds until that version's preview is ready, GET the image."""
    start = time.perf_counter()
    item = api.edit_and_poll(item_id, {"smiling": value}, cost.as_dict(), every)
    assert api._check(api.http.get(item["preview_url"]), 200).content
    return time.perf_counter() - start, item["edit_version"]


def worker_timings(api: ApiClient, item_id: str, version: int,
                   timeout: float = 30) -> dict[str, float]:
    """The worker's stages of ``version``'s preview, among them its own edit and forward pass
    (``edit``, ``render_preview``): the item's timings once that preview is committed (read off
    the loop's path)."""
    deadline = time.monotonic() + timeout
    while True:
        item = api._check(api.http.get(f"{api.base}/items/{item_id}"), 200).json()
        if item["edit_version"] == version and item["status"] == "preview_ready":
            return item.get("timings") or {}
        if time.monotonic() > deadline:
            raise SystemExit(f"version {version}'s preview was not committed in {timeout} s")
        time.sleep(0.005)


#: Issue 21's targets: the portal's path (the editor) <= 15 ms; an API client <= 25 ms. The
#: pushed-event client was the portal's path before the lane; it is now an API client that
#: holds an event stream (whose events wait for the commit).
ADDED_TARGET_MS = {"portal": 15.0, "pushed": 25.0, "longpoll": 25.0, "polling": 25.0}


def bare_round(bundle, latent: torch.Tensor, value: float, cost: Cost) -> float:
    """The same edit and forward pass, the image back in host memory (as the worker needs it)."""
    from worker.render import stages

    start = time.perf_counter()
    with torch.inference_mode():
        stages.render(bundle, stages.edit(bundle, latent, {"31_Smiling": value}), cost).cpu()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    from bench.random_weights import install_random_1024
    from shared.store.migrate import upgrade
    from tests.support.redis_server import session_server
    from web import create_app
    from web.auth import create_token, create_user
    from web.extensions import services
    from worker.anycost.bundle import load_bundle
    from worker.render import stages

    redis_url = session_server().url(0)  # private: never flush a Redis someone else uses
    workdir = Path(tempfile.mkdtemp(prefix="anycost-edit-loop-"))
    weights_dir = args.weights_dir or str(workdir / "weights")
    model = install_random_1024(weights_dir) if args.model == "random-1024" else "tiny-random"
    database_url = f"sqlite:///{workdir / 'bench.db'}"
    upgrade(database_url)
    # --smoke: the event stream's heartbeat every second, not 15 s: closing the stream at the end
    # waits for the reader thread's pending read, i.e. for the next heartbeat (up to 15 s idle).
    smoke = {"sse_heartbeat_seconds": 1} if args.smoke else {}
    settings = Settings(database_url=database_url, redis_url=redis_url, model=model,
                        weights_dir=weights_dir, torch_threads=args.threads, render_batch_size=1,
                        device=args.device,
                        task_soft_time_limit=3000, task_hard_time_limit=3600, **smoke)
    torch.set_num_threads(args.threads)
    bundle = load_bundle(model, weights_dir, device=args.device)
    costs = costs_for(bundle.resolution)
    photo = big_photo(args.megapixels)
    with Image.open(io.BytesIO(photo[1])) as im:
        size = im.size
    print(f"model {model} ({bundle.resolution} px, random weights), photo {size[0]}x{size[1]} "
          f"({size[0] * size[1] / 1e6:.1f} MP), output photo, {args.threads} torch threads, "
          f"{args.rounds} rounds per cost, web: {args.web}")

    worker = WorkerProcess(settings, "edit-loop", workdir / "worker.log")
    app = create_app(settings)
    # 8 threads a process: 4 stream places each (stream_guard keeps 4), so the event stream and
    # a wait fit in either process (with gunicorn's default 4 there is one: a 503 by chance).
    server = (GunicornServer(settings, workdir / "web.log", threads=8) if args.web == "gunicorn"
              else WebServer(app))
    stream = conn = None
    try:
        with services(app).sessions.begin() as session:
            token = create_token(session, create_user(session, "bench"))
        api = ApiClient(server.url, token)
        conn = KeepAlive(api.base, token)
        worker.wait_ready(timeout=1800)
        recipe = {"edits": {"smiling": 0.2}, "preview": costs[0].as_dict(), "output": "photo"}
        created = api.submit([photo], recipe)
        batch = api.wait(created["id"], settled("preview_ready", "failed"), timeout=1800)
        item = batch["items"][0]
        if item["status"] != "preview_ready":
            raise SystemExit(f"the first preview failed: {item['error']}")
        preview_bytes = len(api.image(item["preview_url"])[0])
        stream = EventStream(f"{api.base}/batches/{created['id']}/events", token)
        # The bare side renders the same face: the encoder's code of its aligned crop.
        rgb = stages.decode(photo[1], settings.max_pixels)
        crops = [f.rgb for f in stages.prepare_faces(rgb, bundle, _recipe(bundle))][:1]
        with torch.inference_mode():
            latent = stages.encode(bundle, crops, bundle.device)
        clients = args.clients.split(",")
        results: dict = {}
        for cost in costs:
            loops: dict[str, list[float]] = {c: [] for c in clients}
            around: dict[str, list[float]] = {c: [] for c in clients}
            stages_of: dict[str, dict[str, list[float]]] = {c: {} for c in clients}  # --trace
            bares = []
            for n in range(args.rounds + 2):  # two warm-up rounds per cost
                value = 0.6 if n % 2 else -0.6
                # One after the other, never at the same time, each round in another order (a
                # loop right after another's preview may find the worker still storing it).
                turn = n % len(clients)
                for client in clients[turn:] + clients[:turn]:
                    value = -value  # each loop's edit differs from the one before it
                    phases = stages_of[client] if args.trace and n >= 2 else None
                    if client == "pushed":
                        loop, version = pushed_round(conn, stream, item["id"], value, cost,
                                                     phases)
                    elif client in ("portal", "longpoll"):
                        loop, version = longpoll_round(
                            conn, item["id"], value, cost, wait=10 if client == "portal" else 30,
                            trace=phases)
                    else:
                        loop, version = polling_round(api, item["id"], value, cost)
                    if n >= 2:
                        loops[client].append(loop)
                        timings = worker_timings(api, item["id"], version)
                        around[client].append(
                            loop - timings.get("edit", 0.0) - timings["render_preview"])
                        for stage, seconds in timings.items() if args.trace else ():
                            stages_of[client].setdefault(f"worker.{stage}", []).append(seconds)
                bare = bare_round(bundle, latent, value, cost)
                if n >= 2:
                    bares.append(bare)
            results[cost] = ({c: (statistics.median(v), percentile(v, 99),
                                  statistics.median(around[c])) for c, v in loops.items()},
                             statistics.median(bares))
            for client, stages in stages_of.items() if args.trace else ():
                print(f"{cost.channels:g}/{cost.resolution} {client} p50 ms: " + ", ".join(
                    f"{name} {1000 * statistics.median(v):.1f}" for name, v in stages.items()))
        final_item = api._check(api.http.get(f"{api.base}/items/{item['id']}"), 200).json()
        last_preview = len(api.image(final_item["preview_url"])[0])
    finally:
        if stream is not None:
            stream.close()
        if conn is not None:
            conn.close()
        server.stop()
        worker.stop()
        services(app).close()
    print(f"preview image: {preview_bytes / 1e3:.0f} kB (first), {last_preview / 1e3:.0f} kB "
          "(last)")
    ok = True
    print("added = loop p50 - bare p50; around = p50 of each round's loop - the worker's own edit "
          "and render of it;\ntargets (issue 21): portal <= 15 ms, API clients <= 25 ms")
    for cost, (per_client, bare) in results.items():
        for client, (p50, p99, around_p50) in per_client.items():
            added = p50 - bare
            target = ADDED_TARGET_MS[client]
            ok &= 1000 * added <= target
            print(f"{cost.channels:g}/{cost.resolution} {client:>8}: loop p50 {1000 * p50:7.1f} ms, "
                  f"p99 {1000 * p99:7.1f} ms, bare p50 {1000 * bare:7.1f} ms, added "
                  f"{1000 * added:+6.1f} ms (target {target:.0f}: "
                  f"{'met' if 1000 * added <= target else 'MISSED'}), around "
                  f"{1000 * around_p50:5.1f} ms")
            name = f"{cost.channels:g}/{cost.resolution} {client}"
            record(args.json, "edit_loop", f"{name} p50", 1000 * p50, "ms",
                   f"bare {1000 * bare:.1f} ms, added {1000 * added:+.1f} ms, around "
                   f"{1000 * around_p50:.1f} ms")
            record(args.json, "edit_loop", f"{name} p99", 1000 * p99, "ms")
    print(f"worker log: {workdir / 'worker.log'}")
    return 0 if ok or args.json else 1  # the run-book records; a missed target is not an error


def _recipe(bundle):
    from shared.recipe.parse import parse_recipe

    return parse_recipe({"output": "photo"}, bundle.resolution)


if __name__ == "__main__":
    np.seterr(all="ignore")
    sys.exit(main())
