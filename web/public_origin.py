"""Absolute URLs from a configured origin (``ANYCOST_PUBLIC_URL``), not from the request's Host
header: every ``url_for(..., _external=True)`` (batch and item URLs in API answers, webhook
payloads, the OpenAPI ``servers`` entry) names the service's real address, whatever Host or
X-Forwarded-Host a client sends. Unset, the request's host is used (a single-host setup)."""

from __future__ import annotations

from urllib.parse import urlsplit


class PublicOriginError(ValueError):
    pass


def parse_origin(url: str) -> tuple[str, str]:
    """(scheme, host[:port]) of an origin such as ``https://faces.example.com``."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username \
            or parts.password or parts.path not in ("", "/") or parts.query or parts.fragment:
        raise PublicOriginError(
            f"ANYCOST_PUBLIC_URL={url!r}: expected an origin such as https://faces.example.com "
            "(scheme and host, optionally a port; no path)")
    return parts.scheme, parts.netloc.lower()


class PublicOrigin:
    """WSGI middleware: the request's scheme and host are the configured origin's. Innermost
    (inside ProxyFix), so neither Host nor X-Forwarded-Host can change them."""

    def __init__(self, app, url: str):
        self.app = app
        self.scheme, self.host = parse_origin(url)
        name, _, port = self.host.rpartition(":") if self.host.rsplit(":", 1)[-1].isdigit() \
            else (self.host, "", "")
        self.server_name = name or self.host
        self.server_port = port or ("443" if self.scheme == "https" else "80")

    def __call__(self, environ, start_response):
        environ["wsgi.url_scheme"] = self.scheme
        environ["HTTP_HOST"] = self.host
        environ["SERVER_NAME"] = self.server_name
        environ["SERVER_PORT"] = self.server_port
        return self.app(environ, start_response)
