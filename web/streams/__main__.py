"""``python -m web.streams [--host H] [--port P]``: the stream service, serving
``GET /api/v1/batches/<id>/events`` (and ``/healthz``) on ANYCOST_STREAMS_HOST:ANYCOST_STREAMS_PORT
with the settings of the web app (DATABASE_URL, REDIS_URL, SECRET_KEY, ANYCOST_SSE_*, ...). A
reverse proxy sends it that route and everything else to gunicorn (web/proxy/nginx.conf)."""

from __future__ import annotations

import argparse
import logging

from aiohttp import web

from shared.platform.logging import configure_logging
from shared.platform.settings import get_settings
from web.streams.service import make_app

#: Seconds open streams get to end when the service stops (clients reconnect elsewhere).
SHUTDOWN_SECONDS = 2.0


def main(argv: list[str] | None = None) -> None:
    settings = get_settings()
    parser = argparse.ArgumentParser(prog="python -m web.streams", description=__doc__)
    parser.add_argument("--host", default=settings.streams_host)
    parser.add_argument("--port", type=int, default=settings.streams_port)
    args = parser.parse_args(argv)
    configure_logging(settings)
    logging.getLogger("web.streams").info("stream service on %s:%s", args.host, args.port)
    web.run_app(make_app(settings), host=args.host, port=args.port, access_log=None,
                shutdown_timeout=SHUTDOWN_SECONDS, print=None)


if __name__ == "__main__":
    main()
