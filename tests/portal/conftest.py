"""Portal fixtures: an app on a fresh, migrated SQLite database and a private Redis database, two
users with passwords, and a signed-in test client helper that knows the page's CSRF token."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator

import pytest

from tests.conftest import private_redis
from tests.support.workers import register_live_worker

# A Redis database number of the portal tests' own (the shared fixture's default is shared).
PASSWORD = "correct horse battery"


@pytest.fixture
def portal_redis_url() -> Iterator[str]:
    with private_redis("portal") as url:
        yield url


@pytest.fixture
def app(sqlite_url, portal_redis_url, migrated_databases):
    from web import create_app
    from web.auth import create_user
    from web.extensions import services

    migrated_databases.sqlite_copy(sqlite_url)
    app = create_app({
        "database_url": sqlite_url, "redis_url": portal_redis_url, "model": "tiny-random",
        "secret_key": "portal-tests", "TESTING": True, "VALIDATE_RESPONSES": True,
    })
    with services(app).sessions.begin() as session:
        for name in ("alice", "bob"):
            create_user(session, name, PASSWORD)
    register_live_worker(services(app).sessions, "tiny-random")  # uploads need one
    yield app
    services(app).close()


def page_csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html) or re.search(
        r'<meta name="csrf-token" content="([^"]+)"', html)
    assert match, "no CSRF token on the page"
    return match.group(1)


class Browser:
    """A test client that signs in through the form and sends CSRF tokens like a page would."""

    def __init__(self, client):
        self.client = client
        self.token = ""

    def get(self, url: str, **kw):
        response = self.client.get(url, **kw)
        if response.mimetype == "text/html":
            try:
                self.token = page_csrf(response.get_data(as_text=True))
            except AssertionError:
                pass
        return response

    def sign_in(self, username: str, password: str = PASSWORD):
        self.get("/login")
        return self.client.post("/login", data={
            "username": username, "password": password, "csrf_token": self.token})

    def post_form(self, url: str, data: dict | None = None, **kw):
        data = dict(data or {})
        data.setdefault("csrf_token", self.token)
        return self.client.post(url, data=data, **kw)

    def post_json(self, url: str, body: dict):
        return self.client.post(url, json=body, headers={"X-CSRF-Token": self.token})


@pytest.fixture
def browser(app) -> Browser:
    return Browser(app.test_client())


def png_bytes(size: int = 32, color=(200, 150, 120)) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (size, size), color).save(buf, format="PNG")
    return buf.getvalue()
