"""Odd answers under faults and edge values, over real HTTP against the app with PostgreSQL:
integer ids past the database's 32-bit columns are 4xx (never a 500 or a cut stream), and a
connection the database drops mid-request or before teardown is a JSON answer, never the
server's HTML 500."""

from __future__ import annotations

import flask
import pytest
import requests
from sqlalchemy import create_engine, text

from tests.conftest import PG_ADMIN_URL
from tests.faults.test_limits import _upload

pytestmark = [pytest.mark.faults, pytest.mark.integration, pytest.mark.slow]


def test_ids_past_32_bits_are_4xx(limit_stack):
    _, token = limit_stack.user("overflow")
    auth = {"Authorization": f"Bearer {token}"}
    batch = _upload(limit_stack.url, token, 1).json()["id"]
    events = f"{limit_stack.url}/api/v1/batches/{batch}/events?timeout=1"
    answers = {}
    for resume in ("2147483647", "2147483648", "99999999999999999999"):
        r = requests.get(events, headers={**auth, "Last-Event-ID": resume}, timeout=10)
        answers[f"Last-Event-ID {resume}"] = (r.status_code, r.text[:60])
    for token_id in ("2147483647", "2147483648", "9223372036854775808"):
        r = requests.delete(f"{limit_stack.url}/api/v1/tokens/{token_id}", headers=auth,
                            timeout=10)
        answers[f"DELETE tokens/{token_id}"] = (r.status_code, r.text[:60])
    print("\n" + "\n".join(f"{k}: {v}" for k, v in answers.items()))
    status, body = answers["Last-Event-ID 2147483647"]
    assert status == 200 and body.startswith("retry:")  # the largest id: a stream, not cut
    assert answers["Last-Event-ID 2147483648"][0] == 400
    assert "invalid_parameter" in answers["Last-Event-ID 2147483648"][1]
    assert answers["Last-Event-ID 99999999999999999999"][0] == 400
    assert {answers[f"DELETE tokens/{t}"][0] for t in
            ("2147483647", "2147483648", "9223372036854775808")} == {404}


def _terminate_own_backend(session) -> None:
    pid = session.execute(text("SELECT pg_backend_pid()")).scalar()
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    finally:
        admin.dispose()


def test_a_connection_dropped_mid_request_or_before_teardown_is_json(limit_stack):
    """The database ends the request's connection (pg_terminate_backend) either before the view
    reads (-> 503 JSON with Retry-After) or after the answer is made, before teardown closes
    the session (-> the view's own answer); never the server's HTML 500."""
    from web.extensions import db

    _, token = limit_stack.user("dropped")
    app = limit_stack.app

    def before(sender, **_):
        if flask.request.headers.get("X-Drop") == "mid":
            _terminate_own_backend(db())

    def after(sender, response, **_):
        if flask.request.headers.get("X-Drop") == "teardown":
            _terminate_own_backend(db())

    flask.request_started.connect(before, app)
    flask.request_finished.connect(after, app)
    try:
        got = {}
        for when in ("mid", "teardown"):
            r = requests.get(f"{limit_stack.url}/api/v1/batches", timeout=10,
                             headers={"Authorization": f"Bearer {token}", "X-Drop": when})
            got[when] = r
            print(f"\nconnection dropped {when}: {r.status_code} {r.headers['Content-Type']} "
                  f"{r.text[:80]!r}")
        after_all = requests.get(f"{limit_stack.url}/api/v1/batches", timeout=10,
                                 headers={"Authorization": f"Bearer {token}"})
    finally:
        flask.request_started.disconnect(before, app)
        flask.request_finished.disconnect(after, app)
    mid, teardown = got["mid"], got["teardown"]
    assert mid.status_code == 503 and mid.headers["Content-Type"] == "application/json"
    assert mid.json()["error"]["code"] == "database_unavailable" and mid.headers["Retry-After"]
    assert teardown.status_code == 200 and teardown.json()["batches"] == []
    assert after_all.status_code == 200  # the pool replaced the dropped connections
