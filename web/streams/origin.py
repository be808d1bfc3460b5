"""Where a stream service request comes from and goes to, as the Flask app sees them behind
``ANYCOST_PROXY_HOPS`` trusted proxies (Werkzeug's ProxyFix): the client's address (what the
failed-token counter counts) from ``X-Forwarded-For``, and the origin (scheme://host) of the
events' absolute ``preview_url``: ``ANYCOST_PUBLIC_URL`` when set (``web.public_origin``), else
the request's own with ``X-Forwarded-Proto``/``-Host``."""

from __future__ import annotations

from aiohttp import web

from shared.platform.settings import Settings
from web.public_origin import parse_origin

_DEFAULT_PORTS = {"http": ":80", "https": ":443"}


def forwarded(value: str | None, hops: int) -> str | None:
    """The value the ``hops``-th proxy from us set in a comma-separated X-Forwarded-* header
    (None when it has fewer values), as ProxyFix reads it."""
    if not value or hops <= 0:
        return None
    values = [v.strip() for v in value.split(",")]
    return values[-hops] if len(values) >= hops else None


def request_origin(request: web.Request, settings: Settings) -> str:
    if settings.public_url:
        scheme, host = parse_origin(settings.public_url)
        return f"{scheme}://{host}"
    hops = settings.proxy_hops
    scheme = forwarded(request.headers.get("X-Forwarded-Proto"), hops) or request.scheme
    host = forwarded(request.headers.get("X-Forwarded-Host"), hops) or request.host
    default_port = _DEFAULT_PORTS.get(scheme)
    if default_port and host.endswith(default_port):  # as Werkzeug's get_host
        host = host[: -len(default_port)]
    return f"{scheme}://{host}"


def client_address(request: web.Request, settings: Settings) -> str:
    return (forwarded(request.headers.get("X-Forwarded-For"), settings.proxy_hops)
            or request.remote or "unknown")
