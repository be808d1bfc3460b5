"""A database that is down answers 503 ``database_unavailable`` with Retry-After, on the API and
the portal, and the same app answers again when it is back (a real PostgreSQL database that
refuses connections, its open connections terminated)."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import create_engine, text
from web_api_helpers import image_bytes, upload

from tests.conftest import PG_ADMIN_URL, private_redis

PNG = image_bytes("PNG")


@pytest.fixture
def redis_url():
    with private_redis("webhard") as url:
        yield url


def _error(response, status: int, code: str) -> None:
    assert response.status_code == status, response.get_data(as_text=True)[:300]
    assert response.json["error"]["code"] == code and response.json["error"]["message"]


@pytest.fixture
def database_url(pg_url):
    """The outage test switches a real PostgreSQL database off."""
    return pg_url


def _allow_connections(db_name: str, allowed: bool) -> None:
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'ALTER DATABASE "{db_name}" ALLOW_CONNECTIONS {str(allowed).lower()}'))
        if not allowed:
            conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                              "WHERE datname = :name AND pid <> pg_backend_pid()"), {"name": db_name})
    admin.dispose()


def test_database_outage_is_503_with_retry_after_then_recovers(app, client, alice, pg_url):
    batch_id = upload(client, alice["headers"], [(PNG, "a.png")]).json["id"]
    db_name = pg_url.rsplit("/", 1)[1]
    _allow_connections(db_name, False)
    try:
        for method, path in (("get", f"/api/v1/batches/{batch_id}"), ("get", "/api/v1/batches"),
                             ("get", "/api/v1/me"), ("post", f"/api/v1/batches/{batch_id}/cancel")):
            response = getattr(client, method)(path, headers=alice["headers"])
            _error(response, 503, "database_unavailable")
            assert int(response.headers["Retry-After"]) > 0
        response = upload(client, alice["headers"], [(PNG, "b.png")])
        _error(response, 503, "database_unavailable")
        page = client.get("/login")  # the portal's sign-in page needs no database
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True))[1]
        signed = client.post("/login", data={"username": "alice", "password": "x",
                                             "csrf_token": csrf})
        assert page.status_code == 200 and signed.status_code == 503
        assert signed.headers["Retry-After"]
    finally:
        _allow_connections(db_name, True)
    # The same app (its pool held dead connections) answers again once the database is back.
    assert client.get(f"/api/v1/batches/{batch_id}", headers=alice["headers"]).status_code == 200


def test_unreachable_database_is_503(app_factory):
    app = app_factory(database_url="postgresql+psycopg://postgres@127.0.0.1:1/none")
    response = app.test_client().get("/api/v1/me", headers={"Authorization": "Bearer abc"})
    _error(response, 503, "database_unavailable")
    assert response.headers["Retry-After"] == "5"
