"""gunicorn settings for the web image: ``gunicorn -c web/gunicorn.conf.py 'web:create_app()'``.

Several worker processes share one Prometheus view through ``PROMETHEUS_MULTIPROC_DIR``: the
directory is emptied when the master starts, and a dead worker's live gauges are dropped.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", "4"))
# Threads per process (gthread): an open event stream (/api/v1/batches/<id>/events) holds one.
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "120"))  # big uploads on slow links
accesslog = "-"
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")


def on_starting(server) -> None:
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if path:
        # Value files of a previous run would be summed into this one's counters.
        shutil.rmtree(path, ignore_errors=True)
        Path(path).mkdir(parents=True, exist_ok=True)


def child_exit(server, worker) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


def post_worker_init(worker) -> None:
    # Structured (ANYCOST_LOG_JSON) or plain app logs, the same as the workers'.
    from shared.platform.logging import configure_logging
    from shared.platform.settings import get_settings

    configure_logging(get_settings())
