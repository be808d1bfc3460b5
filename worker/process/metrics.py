"""Prometheus metrics of a worker: renders by cost config, render seconds, batch sizes (counted
where the render happens), queue depth and items by status (read at scrape time).

Off unless ``ANYCOST_WORKER_METRICS_PORT`` is set. Celery's prefork pool renders in child
processes; ``worker.process.celery_app`` calls :func:`start` in each of them after the fork. Their
counters live in prometheus_client's multiprocess files in a directory shared by the pool (one per
Celery main process, or ``PROMETHEUS_MULTIPROC_DIR``), and the first pool process to bind the port
serves the sum; a replacement process takes the port over when the serving one dies.

    metrics.observe_render({"channels": 0.5, "resolution": 256}, seconds=0.8, batch_size=8)
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, multiprocess, values
from prometheus_client.exposition import start_http_server
from sqlalchemy.pool import NullPool

from shared.items.metrics import ItemStatusCollector, QueueDepthCollector
from shared.platform.settings import Settings
from shared.store.db import make_engine

log = logging.getLogger(__name__)

PORT_ENV = "ANYCOST_WORKER_METRICS_PORT"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


@dataclass
class _Metrics:
    renders: Counter
    render_seconds: Histogram
    batch_size: Histogram


_lock = threading.Lock()
_metrics: _Metrics | None = None


def _get() -> _Metrics:
    """Created on first use, after :func:`start_metrics_server` chose the value storage."""
    global _metrics
    with _lock:
        if _metrics is None:
            registry = CollectorRegistry()  # private: the scrape registry reads the value files
            labels = ["channels", "resolution"]
            _metrics = _Metrics(
                renders=Counter("anycost_renders", "Images rendered, by cost config.", labels,
                                registry=registry),
                render_seconds=Histogram(
                    "anycost_render_seconds", "Time of one batched forward pass.", labels,
                    registry=registry,
                    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64)),
                batch_size=Histogram(
                    "anycost_render_batch_size", "Items rendered in one forward pass.",
                    registry=registry, buckets=(1, 2, 4, 8, 16, 32, 64)),
            )
        return _metrics


def cost_labels(cost: Any) -> tuple[str, str]:
    """(channels, resolution) from a cost dict or an object with those attributes."""
    if isinstance(cost, Mapping):
        channels, resolution = cost.get("channels"), cost.get("resolution")
    else:
        channels, resolution = getattr(cost, "channels", None), getattr(cost, "resolution", None)
    return (f"{float(channels):g}" if channels is not None else "unknown",
            str(int(resolution)) if resolution is not None else "unknown")


def observe_render(cost: Any, seconds: float, batch_size: int) -> None:
    """Record one forward pass that rendered ``batch_size`` images at ``cost``."""
    m = _get()
    labels = cost_labels(cost)
    m.renders.labels(*labels).inc(batch_size)
    m.render_seconds.labels(*labels).observe(seconds)
    m.batch_size.observe(batch_size)


def _use_multiprocess_dir(path: str, wipe: bool) -> str:
    """Point prometheus_client at ``path`` for the values of this process (and its children)."""
    global _metrics
    Path(path).mkdir(parents=True, exist_ok=True)
    if wipe:  # a previous run's counters would be summed in
        for stale in Path(path).glob("*.db"):
            stale.unlink(missing_ok=True)
    os.environ[MULTIPROC_ENV] = path
    # The value class is picked when prometheus_client is imported; pick again now that the
    # directory is set, and drop metrics created before (they would write to memory).
    values.ValueClass = values.get_value_class()
    with _lock:
        _metrics = None
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
