"""gunicorn settings for the web image: ``gunicorn -c web/gunicorn.conf.py 'web:create_app()'``.

Several worker processes share one Prometheus view through ``PROMETHEUS_MULTIPROC_DIR``: the
directory is emptied when the master starts, and a dead worker's live gauges are dropped.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
from pathlib import Path


def check_published_bind(env: dict[str, str]) -> None:
    """Refuse to start when X-Forwarded-For is trusted (``ANYCOST_PROXY_HOPS`` > 0) but the
    port is published on every interface or a public address (``ANYCOST_PUBLISHED_BIND``: where
    a deployment publishes gunicorn's own port; the compose file publishes only its proxy): a
    client reaching gunicorn directly would choose its own address, past every rate limit."""
    hops = int(env.get("ANYCOST_PROXY_HOPS", "0") or 0)
    published = env.get("ANYCOST_PUBLISHED_BIND", "").strip().strip("[]")
    if hops <= 0 or not published:
        return
    try:
        address = ipaddress.ip_address(published)
    except ValueError:
        address = None  # a host name: the operator's choice
    if address is not None and (address.is_unspecified or address.is_global):
        raise SystemExit(
            f"ANYCOST_PROXY_HOPS={hops} trusts X-Forwarded-For, but the web port is published on "
            f"{published}: anyone reaching it directly could forge their address. Publish it "
            "on loopback or the proxy's private network (WEB_BIND=127.0.0.1), or set "
            "ANYCOST_PROXY_HOPS=0.")


check_published_bind(dict(os.environ))

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", "4"))
# Threads per process (gthread): an open event stream (/api/v1/batches/<id>/events) holds one,
# but never one of the last 4 (web.api.stream_guard): 16 threads = 12 streams per process.
threads = int(os.environ.get("GUNICORN_THREADS", "16"))
os.environ.setdefault("GUNICORN_THREADS", str(threads))  # read by web.api.stream_guard
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
