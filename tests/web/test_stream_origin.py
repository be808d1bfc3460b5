"""The stream service names the origin and the client the way the Flask app does behind
``ANYCOST_PROXY_HOPS`` proxies (Werkzeug's ProxyFix): the configured public URL first, else the
forwarded host and scheme of the trusted hop, never a value a client put before it."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import make_mocked_request

from shared.platform.settings import Settings
from web.streams.origin import client_address, forwarded, request_origin


def _request(**headers):
    return make_mocked_request("GET", "/api/v1/batches/b/events",
                               headers={"Host": "web:8000", **headers})


@pytest.mark.parametrize(("value", "hops", "expected"), [
    ("a", 1, "a"), ("forged, real", 1, "real"), ("outer, proxy", 2, "outer"),
    ("only", 2, None), ("", 1, None), (None, 1, None), ("a", 0, None)])
def test_forwarded_takes_the_value_of_the_trusted_hop(value, hops, expected):
    assert forwarded(value, hops) == expected


def test_origin_is_the_public_url_whatever_the_headers_say():
    settings = Settings(public_url="https://faces.example.com", proxy_hops=1)
    request = _request(**{"X-Forwarded-Host": "evil.test", "X-Forwarded-Proto": "http"})
    assert request_origin(request, settings) == "https://faces.example.com"


def test_origin_behind_one_proxy_is_the_proxys_view():
    request = _request(**{"X-Forwarded-Host": "evil.test, faces.test:443",
                          "X-Forwarded-Proto": "http, https",
                          "X-Forwarded-For": "6.6.6.6, 203.0.113.9"})
    settings = Settings(proxy_hops=1)
    assert request_origin(request, settings) == "https://faces.test"  # default port dropped
    assert client_address(request, settings) == "203.0.113.9"
    untrusting = Settings()  # no proxy trusted: the request's own host and scheme
    assert request_origin(request, untrusting) == "http://web:8000"
