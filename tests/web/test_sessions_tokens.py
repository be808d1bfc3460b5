"""Sessions that end and tokens that can be taken back: signing out or changing the password makes
every earlier copy of the session cookie worthless; cookies are Secure over HTTPS (directly or
through a trusted proxy); API tokens can be listed, revoked and made to expire (API and CLI)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from shared.store.tables import ApiToken, User, utcnow
from tests.conftest import private_redis
from web.auth import create_user
from web.extensions import services

PASSWORD = "correct horse battery"


@pytest.fixture
def database_url(sqlite_url):
    return sqlite_url


@pytest.fixture
def redis_url():
    with private_redis("webhard") as url:
        yield url


@pytest.fixture
def app(app_factory):
    app = app_factory(secret_key="session-tests")
    with services(app).sessions.begin() as session:
        create_user(session, "dana", PASSWORD)
    return app


def _csrf(response) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', response.get_data(as_text=True))[1]


def _sign_in(client, base_url: str = "http://localhost", headers: dict | None = None):
    page = client.get("/login", base_url=base_url, headers=headers)
    return client.post("/login", base_url=base_url, headers=headers, data={
        "username": "dana", "password": PASSWORD, "csrf_token": _csrf(page)})


def _copy_of_cookie(app, client):
    thief = app.test_client()
    thief.set_cookie("session", client.get_cookie("session").value)
    return thief


def test_sign_out_ends_every_copy_of_the_session(app):
    client = app.test_client()
    assert _sign_in(client).status_code == 302
    thief = _copy_of_cookie(app, client)
    assert thief.get("/api/v1/me").json["username"] == "dana"
    assert thief.get("/batches").status_code == 200
    page = client.get("/batches")
    assert client.post("/logout", data={"csrf_token": _csrf(page)}).status_code == 302
    # The copy was signed before the sign-out: it is refused by the API and the portal alike.
    assert thief.get("/api/v1/me").status_code == 401
    assert thief.get("/batches").status_code == 302
    # Signing in again works, with a new cookie.
    assert _sign_in(client).status_code == 302
    assert client.get("/api/v1/me").status_code == 200
    assert thief.get("/api/v1/me").status_code == 401


def test_password_change_ends_sessions(app):
    client = app.test_client()
    _sign_in(client)
    assert client.get("/api/v1/me").status_code == 200
    result = app.test_cli_runner().invoke(args=["set-password", "dana", "--password", "new pw 2"])
    assert result.exit_code == 0, result.output
    assert client.get("/api/v1/me").status_code == 401
    page = client.get("/login")
    old = client.post("/login", data={"username": "dana", "password": PASSWORD,
                                      "csrf_token": _csrf(page)})
    assert old.status_code == 401  # the old password no longer signs in


def _session_cookie_header(response) -> str:
    headers = [h for h in response.headers.getlist("Set-Cookie") if h.startswith("session=")]
    assert headers, response.headers
    return headers[-1]


def test_cookies_are_secure_over_https_and_bounded_in_time(app, app_factory):
    plain = _session_cookie_header(_sign_in(app.test_client()))
    assert "Secure" not in plain and "HttpOnly" in plain and "SameSite=Lax" in plain
    expires = re.search(r"Expires=([^;]+)", plain)[1]
    from email.utils import parsedate_to_datetime

    lifetime = parsedate_to_datetime(expires).replace(tzinfo=None) - utcnow()
    assert timedelta(hours=167) < lifetime <= timedelta(hours=168, minutes=1)

    assert "Secure" in _session_cookie_header(_sign_in(app.test_client(), "https://localhost"))
    # Behind one trusted proxy that terminated TLS.
    proxied = app_factory(secret_key="s", proxy_hops=1)  # same database: dana exists
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}
    assert "Secure" in _session_cookie_header(_sign_in(proxied.test_client(), headers=forwarded))
    # Without the setting, the same header from an untrusted client changes nothing.
    assert "Secure" not in _session_cookie_header(_sign_in(app.test_client(), headers=forwarded))
    always = app_factory(secret_key="s", secure_cookies=True)
    assert "Secure" in _session_cookie_header(_sign_in(always.test_client()))


def test_tokens_api_lists_creates_revokes_and_expires(client, alice, bob):
    listed = client.get("/api/v1/tokens", headers=alice["headers"]).json["tokens"]
    assert len(listed) == 1 and listed[0]["current"] and listed[0]["live"]
    assert "token" not in listed[0] and listed[0]["prefix"] == alice["token"][:8]

    made = client.post("/api/v1/tokens", json={"name": "ci", "expires_days": 2},
                       headers=alice["headers"])
    assert made.status_code == 201, made.json
    token = made.json["token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/me", headers=headers).json["username"] == "alice"
    assert made.json["name"] == "ci" and made.json["expires_at"]
    assert len(client.get("/api/v1/tokens", headers=alice["headers"]).json["tokens"]) == 2

    for bad in ({"expires_days": 0}, {"expires_days": "7"}, {"name": ""}, [1]):
        assert client.post("/api/v1/tokens", json=bad, headers=alice["headers"]).status_code == 400

    # Bob cannot revoke Alice's token; Alice can, once.
    token_id = made.json["id"]
    assert client.delete(f"/api/v1/tokens/{token_id}", headers=bob["headers"]).status_code == 404
    assert client.delete(f"/api/v1/tokens/{token_id}", headers=alice["headers"]).status_code == 204
    assert client.get("/api/v1/me", headers=headers).status_code == 401
    assert client.delete(f"/api/v1/tokens/{token_id}", headers=alice["headers"]).status_code == 404
    assert client.delete("/api/v1/tokens/x1", headers=alice["headers"]).status_code == 404
    assert len(client.get("/api/v1/tokens", headers=alice["headers"]).json["tokens"]) == 1


def test_an_expired_token_is_refused(app, client, alice):
    made = client.post("/api/v1/tokens", json={"expires_days": 1}, headers=alice["headers"]).json
    headers = {"Authorization": f"Bearer {made['token']}"}
    assert client.get("/api/v1/me", headers=headers).status_code == 200
    with services(app).sessions.begin() as session:
        session.execute(update(ApiToken).where(ApiToken.id == made["id"])
                        .values(expires_at=utcnow() - timedelta(seconds=1)))
    assert client.get("/api/v1/me", headers=headers).status_code == 401
    tokens = client.get("/api/v1/tokens", headers=alice["headers"]).json["tokens"]
    assert [t["live"] for t in tokens if t["id"] == made["id"]] == [False]


def test_tokens_cli(app):
    runner = app.test_cli_runner()
    made = runner.invoke(args=["tokens", "create", "dana", "--label", "laptop",
                               "--expires-days", "3"])
    assert made.exit_code == 0, made.output
    token = made.output.strip().splitlines()[-1]
    client = app.test_client()
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    listed = runner.invoke(args=["tokens", "list", "dana"])
    assert listed.exit_code == 0 and "laptop" in listed.output and "live" in listed.output
    token_id = listed.output.split("\t", 1)[0]
    assert runner.invoke(args=["tokens", "revoke", "dana", token_id]).exit_code == 0
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert runner.invoke(args=["tokens", "revoke", "dana", token_id]).exit_code != 0
    assert runner.invoke(args=["tokens", "list", "nobody"]).exit_code != 0
    with services(app).sessions() as session:
        user = session.scalar(select(User).where(User.username == "dana"))
        row = session.scalar(select(ApiToken).where(ApiToken.user_id == user.id))
        assert row.revoked_at is not None and row.name == "laptop"


def test_password_change_through_the_api_keeps_only_the_changing_session(app):
    changer, other = app.test_client(), app.test_client()
    _sign_in(changer)
    _sign_in(other)
    page = changer.get("/batches")
    csrf = _csrf(page)
    url = "/api/v1/me/password"
    wrong = changer.post(url, json={"current_password": "nope", "new_password": "long enough"},
                         headers={"X-CSRF-Token": csrf})
    assert wrong.status_code == 403 and wrong.json["error"]["field"] == "current_password"
    short = changer.post(url, json={"current_password": PASSWORD, "new_password": "short"},
                         headers={"X-CSRF-Token": csrf})
    assert short.status_code == 400
    assert changer.post(url, json={"current_password": PASSWORD, "new_password": "n"},
                        ).status_code == 403  # a session write without the CSRF header
    done = changer.post(url, json={"current_password": PASSWORD, "new_password": "long enough"},
                        headers={"X-CSRF-Token": csrf})
    assert done.status_code == 204
    assert changer.get("/api/v1/me").status_code == 200  # the browser that changed it
    assert other.get("/api/v1/me").status_code == 401  # every other session has ended
    page = other.get("/login")
    assert other.post("/login", data={"username": "dana", "password": "long enough",
                                      "csrf_token": _csrf(page)}).status_code == 302


def test_a_child_token_never_outlives_its_parent(app, client, alice):
    """A token that expires tomorrow cannot make one that never expires (nor one that expires
    later); revoking a token revokes its children and grandchildren, and nothing else."""
    parent = client.post("/api/v1/tokens", json={"name": "parent", "expires_days": 1},
                         headers=alice["headers"]).json
    as_parent = {"Authorization": f"Bearer {parent['token']}"}
    forever = client.post("/api/v1/tokens", json={"name": "child"}, headers=as_parent).json
    longer = client.post("/api/v1/tokens", json={"expires_days": 30}, headers=as_parent).json
    assert forever["expires_at"] == parent["expires_at"] == longer["expires_at"]
    as_child = {"Authorization": f"Bearer {forever['token']}"}
    grandchild = client.post("/api/v1/tokens", json={}, headers=as_child).json
    as_grandchild = {"Authorization": f"Bearer {grandchild['token']}"}
    assert grandchild["expires_at"] == parent["expires_at"]
    # Both end at the same instant: the parent's expiry ends them with it.
    with services(app).sessions() as session:
        ends = {session.get(ApiToken, t["id"]).expires_at
                for t in (parent, forever, longer, grandchild)}
    assert len(ends) == 1
    # Revocation cascades, at any depth; the token that made the parent is untouched.
    second = client.post("/api/v1/tokens", json={"name": "p2"}, headers=alice["headers"]).json
    as_second = {"Authorization": f"Bearer {second['token']}"}
    child2 = client.post("/api/v1/tokens", json={}, headers=as_second).json
    grand2 = client.post("/api/v1/tokens", json={},
                         headers={"Authorization": f"Bearer {child2['token']}"}).json
    assert child2["expires_at"] is None  # a parent that never expires caps nothing
    assert client.delete(f"/api/v1/tokens/{second['id']}",
                         headers=alice["headers"]).status_code == 204
    for token in (second, child2, grand2):
        assert client.get("/api/v1/me", headers={
            "Authorization": f"Bearer {token['token']}"}).status_code == 401
    assert client.delete(f"/api/v1/tokens/{forever['id']}",
                         headers=alice["headers"]).status_code == 204
    assert client.get("/api/v1/me", headers=as_grandchild).status_code == 401
    assert client.get("/api/v1/me", headers=alice["headers"]).status_code == 200


def test_absolute_urls_come_from_the_public_origin_not_the_host_header(app_factory):
    """With ANYCOST_PUBLIC_URL a forged Host (or X-Forwarded-Host behind a proxy) changes no
    URL in an answer; without it the request's host is used (one host, no proxy)."""
    import io

    from web_api_helpers import image_bytes

    from tests.web.conftest import add_user

    forged = {"Host": "evil.example", "X-Forwarded-Host": "evil.example"}
    for public, hops, expected in (("https://faces.example.com", 1, "https://faces.example.com/"),
                                   ("", 0, "http://evil.example/")):
        app = app_factory(public_url=public, proxy_hops=hops)
        _, token = add_user(app, f"origin{hops}")
        r = app.test_client().post(
            "/api/v1/batches", headers={"Authorization": f"Bearer {token}", **forged},
            data={"files": [(io.BytesIO(image_bytes()), "a.png")]},
            content_type="multipart/form-data")
        assert r.status_code == 201, r.json
        assert r.json["url"].startswith(expected), r.json["url"]
        urls = [v for i in r.json["items"] for k, v in i.items() if k.endswith("url") and v]
        assert all(u.startswith(expected) for u in urls)
