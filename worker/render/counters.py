"""Prometheus counters of renders, incremented where the render happens: images by cost config,
seconds per batched forward pass, items per pass.

Where their values are kept (memory, or prometheus_client's multiprocess files shared by a Celery
pool) is chosen by the process (``worker.process.metrics``), which calls :func:`reset` after
choosing, so the counters are created anew on the chosen storage.

    counters.observe_render({"channels": 0.5, "resolution": 256}, seconds=0.8, batch_size=8)
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram


@dataclass
class _Metrics:
    renders: Counter
    render_seconds: Histogram
    batch_size: Histogram
    previews: Counter


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
                previews=Counter(
                    "anycost_previews_stored", "Previews stored, by path: warm (a re-edit "
                    "rendered before its take, worker.render.warm) or taken.", ["path"],
                    registry=registry),
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


def observe_preview(warm: bool) -> None:
    """Record one stored preview, rendered warm or taken first."""
    _get().previews.labels("warm" if warm else "taken").inc()


def reset() -> None:
    """Drop the counters; the next render creates them on the current value storage."""
    global _metrics
    with _lock:
        _metrics = None
