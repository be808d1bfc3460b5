"""Worker metrics across processes, as Celery's prefork pool runs them: two pool processes render,
one serves /metrics, a scrape shows the sum, the queue depth and the items by status."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import urllib.request

import pytest

from shared.platform.queue import PREVIEW_QUEUE
from tests.ops.conftest import make_batch
from tests.ops.test_web_ops import _sample
from tests.support.ports import listen_port

pytestmark = pytest.mark.integration

POOL = textwrap.dedent("""
    import multiprocessing as mp, sys, time, types
    from shared.platform.settings import Settings
    from worker.process import metrics
    from worker.render import counters

    settings = Settings(database_url=sys.argv[1], redis_url=sys.argv[2])

    def pool_process(renders, ready):
        rt = types.SimpleNamespace(settings=settings, extras={})
        metrics.start(rt)
        for _ in range(renders):
            counters.observe_render({"channels": 0.5, "resolution": 256}, 0.3, 4)
        counters.observe_render({"channels": 1.0, "resolution": 1024}, 2.0, 1)
        ready.put("metrics_server" in rt.extras)
        time.sleep(120)

    if __name__ == "__main__":
        ctx = mp.get_context("fork")
        ready = ctx.Queue()
        for renders in (2, 3):
            ctx.Process(target=pool_process, args=(renders, ready), daemon=True).start()
        serving = [ready.get(timeout=60) for _ in range(2)]
        print("serving", sorted(serving), flush=True)
        time.sleep(120)
""")


def test_pool_processes_share_one_metrics_endpoint(settings, jobs, owner_id, rclient, tmp_path):
    make_batch(jobs, owner_id, 2)
    rclient.lpush(PREVIEW_QUEUE, b"{}")  # a second waiting message
    port = listen_port()  # not an ephemeral port: a connection could take it (ports.py)
    env = {**os.environ, "ANYCOST_WORKER_METRICS_PORT": str(port)}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    proc = subprocess.Popen([sys.executable, "-c", POOL, settings.database_url, settings.redis_url],
                            env=env, stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        line = proc.stdout.readline()
        assert line.strip() == "serving [False, True]", line  # exactly one serves
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
    assert _sample(text, "anycost_renders_total", channels="0.5", resolution="256") == 20  # 5 x 4
    assert _sample(text, "anycost_renders_total", channels="1", resolution="1024") == 2
    assert _sample(text, "anycost_render_seconds_count", channels="0.5", resolution="256") == 5
    assert _sample(text, "anycost_render_batch_size_count") == 7
    assert _sample(text, "anycost_render_batch_size_bucket", le="1.0") == 2
    assert _sample(text, "anycost_queue_depth", queue="preview") == 2
    assert _sample(text, "anycost_items", status="queued") == 2
