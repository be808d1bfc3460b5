"""Prometheus metrics of a worker: renders by cost config, render seconds, batch sizes (counted
where the render happens), queue depth and items by status (read at scrape time).

Off unless ``ANYCOST_WORKER_METRICS_PORT`` is set. Celery's prefork pool renders in child
processes; ``worker.process.celery_app`` calls :func:`start` in each of them after the fork. Their
counters live in prometheus_client's multiprocess files in a directory shared by the pool (one per
Celery main process, or ``PROMETHEUS_MULTIPROC_DIR``), and the first pool process to bind the port
serves the sum; a replacement process takes the port over when the serving one dies.

The counters themselves are incremented where the render happens (``worker.render.counters``).
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

from prometheus_client import CollectorRegistry, multiprocess, values
from prometheus_client.exposition import start_http_server
from sqlalchemy.pool import NullPool

from shared.items.metrics import ItemStatusCollector, QueueDepthCollector
from shared.platform.settings import Settings
from shared.store.db import make_engine
from worker.render import counters

log = logging.getLogger(__name__)

PORT_ENV = "ANYCOST_WORKER_METRICS_PORT"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def _use_multiprocess_dir(path: str, wipe: bool) -> str:
    """Point prometheus_client at ``path`` for the values of this process (and its children)."""
    Path(path).mkdir(parents=True, exist_ok=True)
    if wipe:  # a previous run's counters would be summed in
        for stale in Path(path).glob("*.db"):
            stale.unlink(missing_ok=True)
    os.environ[MULTIPROC_ENV] = path
    # The value class is picked when prometheus_client is imported; pick again now that the
    # directory is set, and drop metrics created before (they would write to memory).
    values.ValueClass = values.get_value_class()
    counters.reset()
    return path


def configured_port() -> int | None:
    raw = os.environ.get(PORT_ENV, "").strip()
    return int(raw) if raw else None


def scrape_registry(settings: Settings, path: str) -> CollectorRegistry:
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=path)
    registry.register(ItemStatusCollector(make_engine(settings.database_url, poolclass=NullPool)))
    registry.register(QueueDepthCollector(settings.redis_url))
    return registry


def start_metrics_server(settings: Settings, port: int | None = None):
    """Serve /metrics on ``port`` (else ``ANYCOST_WORKER_METRICS_PORT``; 0 picks a free one)
    from this process, for the values of this process and its future children. Returns the
    server (``server.server_port``), or None when metrics are off. For a main process that
    forks its renderers; Celery workers use :func:`start`."""
    port = configured_port() if port is None else port
    if port is None:
        return None
    path = os.environ.get(MULTIPROC_ENV) or tempfile.mkdtemp(prefix="anycost-worker-metrics-")
    _use_multiprocess_dir(path, wipe=True)
    server, _thread = start_http_server(port, registry=scrape_registry(settings, path))
    log.info("worker metrics on :%d/metrics (values in %s)", server.server_port, path)
    return server


def start(rt) -> None:
    """Worker start-up hook, in each pool process (``rt`` is its ``worker.render.runtime.Runtime``)."""
    port = configured_port()
    if port is None:
        return
    # One directory per Celery main process: its pool processes share it, a restart starts anew.
    path = os.environ.get(MULTIPROC_ENV) or os.path.join(
        tempfile.gettempdir(), f"anycost-worker-metrics-{os.getppid()}")
    _use_multiprocess_dir(path, wipe=False)
    try:
        server, _thread = start_http_server(port, registry=scrape_registry(rt.settings, path))
    except OSError:  # another pool process of this worker serves the port
        return
    rt.extras["metrics_server"] = server
    log.info("worker metrics on :%d/metrics", port)


def stop(rt) -> None:
    if (server := rt.extras.pop("metrics_server", None)) is not None:
        server.shutdown()
        server.server_close()
