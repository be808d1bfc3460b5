"""Rate limits on a real Redis (Flask-Limiter): failed sign-ins per address, failed token checks
per address, uploads per user. A breach is 429 with Retry-After (and the JSON error body under
/api); with Redis unreachable nothing is limited and nothing fails."""

from __future__ import annotations

import re

import pytest
from web_api_helpers import image_bytes, upload

from tests.conftest import private_redis
from web.auth import create_user
from web.extensions import services

PASSWORD = "correct horse battery"


@pytest.fixture
def database_url(sqlite_url):
    return sqlite_url


@pytest.fixture
def redis_url():
    with private_redis("webhard_limits") as url:
        yield url


def _limited(app_factory, **limits):
    limits = {"rate_limit_login": "3 per minute", "rate_limit_auth_failures": "4 per minute",
              "rate_limit_submissions": "2 per minute", **limits}
    app = app_factory(secret_key="limits", **limits)
    with services(app).sessions.begin() as session:
        create_user(session, "erin", PASSWORD)
    return app


def _sign_in(client, password: str, addr: str = "198.51.100.1"):
    env = {"REMOTE_ADDR": addr}
    page = client.get("/login", environ_base=env)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True))[1]
    return client.post("/login", environ_base=env,
                       data={"username": "erin", "password": password, "csrf_token": csrf})


def _assert_429(response, json_body: bool = True) -> None:
    assert response.status_code == 429, response.get_data(as_text=True)[:200]
    assert int(response.headers["Retry-After"]) >= 1
    if json_body:
        assert response.json["error"]["code"] == "too_many_requests"
        assert response.json["error"]["message"]


def test_failed_sign_ins_are_limited_per_address(app_factory):
    app = _limited(app_factory)
    client = app.test_client()
    assert _sign_in(client, PASSWORD).status_code == 302  # successes do not count
    for _ in range(3):
        assert _sign_in(client, "wrong").status_code == 401
    _assert_429(_sign_in(client, "wrong"), json_body=False)
    _assert_429(_sign_in(client, PASSWORD), json_body=False)  # the address is blocked for now
    # Another address may still try, but not against the same account (4 failures were counted
    # for "erin"); the limits are per address and per account name.
    _assert_429(_sign_in(app.test_client(), PASSWORD, addr="198.51.100.2"), json_body=False)


def test_many_addresses_cannot_share_the_guessing_of_one_password(app_factory):
    app = _limited(app_factory)
    for i in range(3):
        assert _sign_in(app.test_client(), "wrong", addr=f"203.0.113.{i}").status_code == 401
    _assert_429(_sign_in(app.test_client(), "wrong", addr="203.0.113.99"), json_body=False)


def test_failed_token_checks_are_limited_per_address(app_factory, alice):
    app = _limited(app_factory)
    client = app.test_client()
    good = alice["headers"]
    assert client.get("/api/v1/me", headers=good).status_code == 200
    for i in range(4):
        bad = client.get("/api/v1/me", headers={"Authorization": f"Bearer wrong-{i}"})
        assert bad.status_code == 401
    _assert_429(client.get("/api/v1/me", headers={"Authorization": "Bearer wrong-x"}))
    _assert_429(client.get("/api/v1/me", headers=good))
    other = {"REMOTE_ADDR": "192.0.2.7"}
    assert client.get("/api/v1/me", headers=good, environ_base=other).status_code == 200


def test_uploads_are_limited_per_user(app_factory, alice, bob):
    app = _limited(app_factory)
    client = app.test_client()
    files = [(image_bytes(), "a.png")]
    for _ in range(2):
        created = upload(client, alice["headers"], files)
        assert created.status_code == 201 and "Retry-After" not in created.headers
    _assert_429(upload(client, alice["headers"], files))
    assert client.get("/api/v1/batches", headers=alice["headers"]).json["total"] == 2
    assert upload(client, bob["headers"], files).status_code == 201  # per user, not per address


def test_redis_down_means_no_limits_and_no_errors(app_factory, alice):
    app = _limited(app_factory, redis_url="redis://127.0.0.1:1/0")
    client = app.test_client()
    for _ in range(6):
        assert _sign_in(client, "wrong").status_code == 401
        assert client.get("/api/v1/me", headers={"Authorization": "Bearer no"}).status_code == 401
    assert client.get("/api/v1/me", headers=alice["headers"]).status_code == 200


def test_limits_can_be_switched_off(app_factory):
    app = _limited(app_factory, rate_limits=False)
    client = app.test_client()
    for _ in range(6):
        assert _sign_in(client, "wrong").status_code == 401


def test_a_bad_limit_setting_fails_at_start_up(app_factory):
    from shared.platform.settings import SettingsError

    with pytest.raises(SettingsError, match="ANYCOST_RATE_LIMIT_SUBMISSIONS"):
        app_factory(rate_limit_submissions="lots")


def test_sign_ins_have_a_daily_window_beside_the_minute(app_factory):
    from limits import parse_many

    from shared.platform.settings import Settings

    windows = sorted(item.get_expiry() for item in parse_many(Settings().rate_limit_login))
    assert windows == [60, 86400]  # the default: per minute and per day
    app = _limited(app_factory, rate_limit_login="20 per minute;5 per day")
    client = app.test_client()
    for _ in range(5):
        assert _sign_in(client, "wrong").status_code == 401
    refused = _sign_in(client, "wrong")
    _assert_429(refused, json_body=False)
    assert int(refused.headers["Retry-After"]) > 3600  # the day's window, not the minute's
