"""Odd answers under faults and edge values, over real HTTP against the app with PostgreSQL:
integer ids past the database's 32-bit columns are 4xx (never a 500 or a cut stream), and a
connection the database drops mid-request or before teardown is a JSON answer, never the
server's HTML 500."""

from __future__ import annotations

import time

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


def _open_stream(url: str, batch: str, headers: dict, timeout: int = 60) -> requests.Response:
    return requests.get(f"{url}/api/v1/batches/{batch}/events?timeout={timeout}",
                        headers=headers, stream=True, timeout=30)


def _ends_within(response: requests.Response, limit: float) -> float:
    """Seconds until the stream ends (reads to EOF), failing past ``limit``."""
    started = time.monotonic()
    for _ in response.iter_content(chunk_size=None):
        assert time.monotonic() - started < limit, "the stream kept going"
    return time.monotonic() - started


def test_open_streams_are_capped_per_user(limit_stack):
    """6 streams per user (the default): the 7th is a 429; another user's opens; closing one
    makes room."""
    from shared.platform.settings import Settings

    cap = Settings().sse_max_per_user
    _, token = limit_stack.user("streamer")
    _, other = limit_stack.user("bystander")
    auth, other_auth = ({"Authorization": f"Bearer {t}"} for t in (token, other))
    batch = _upload(limit_stack.url, token, 1).json()["id"]
    other_batch = _upload(limit_stack.url, other, 1).json()["id"]
    streams = [_open_stream(limit_stack.url, batch, auth) for _ in range(cap)]
    try:
        assert [s.status_code for s in streams] == [200] * cap
        refused = _open_stream(limit_stack.url, batch, auth)
        theirs = _open_stream(limit_stack.url, other_batch, other_auth)
        print(f"\n{cap} streams open: the next is {refused.status_code} "
              f"(Retry-After {refused.headers.get('Retry-After')}), another user's "
              f"{theirs.status_code}")
        assert refused.status_code == 429 and refused.json()["error"]["code"] == \
            "too_many_requests" and int(refused.headers["Retry-After"]) >= 1
        assert theirs.status_code == 200
        theirs.close()
        streams.pop().close()
        deadline = time.monotonic() + 10
        while True:  # the server sees the closed stream at its next write (a keep-alive: 2 s)
            again = _open_stream(limit_stack.url, batch, auth)
            if again.status_code == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        streams.append(again)
        assert again.status_code == 200
    finally:
        for s in streams:
            s.close()


def test_streams_end_soon_after_revocation_and_password_change(limit_stack):
    _, token = limit_stack.user("revoked")
    auth = {"Authorization": f"Bearer {token}"}
    batch = _upload(limit_stack.url, token, 1).json()["id"]
    made = requests.post(f"{limit_stack.url}/api/v1/tokens", json={"name": "tab"}, headers=auth,
                         timeout=10).json()
    stream = _open_stream(limit_stack.url, batch, {"Authorization": f"Bearer {made['token']}"})
    assert stream.status_code == 200
    assert requests.delete(f"{limit_stack.url}/api/v1/tokens/{made['id']}", headers=auth,
                           timeout=10).status_code == 204
    after_revoke = _ends_within(stream, 10)
    # A portal session's stream ends when the password changes (every session signed before).
    from tests.faults.test_limits import _portal_sign_in
    from tests.faults.web_stack import PASSWORD

    browser = _portal_sign_in(limit_stack.url, "revoked")
    stream = browser.get(f"{limit_stack.url}/api/v1/batches/{batch}/events?timeout=60",
                         stream=True, timeout=30)
    assert stream.status_code == 200
    changed = requests.post(f"{limit_stack.url}/api/v1/me/password", headers=auth, timeout=10,
                            json={"current_password": PASSWORD, "new_password": "x" * 12})
    assert changed.status_code == 204
    after_password = _ends_within(stream, 10)
    print(f"\nstream ended {after_revoke:.1f} s after its token was revoked, "
          f"{after_password:.1f} s after the password changed (stream timeout 60 s)")
    assert after_revoke < 5 and after_password < 5


def test_uploads_answer_within_about_a_second_while_redis_hangs(limit_stack):
    """Redis stopped (SIGSTOP, connections open but silent), default timeouts: each upload
    answers 201 (the items wait in SQL) within about a second: the rate limits' checks give up
    after 0.1 s each, the queue send after ANYCOST_REDIS_PUBLISH_TIMEOUT (0.5 s), then the
    sender's breaker skips Redis for 5 s."""
    import os
    import signal

    _, token = limit_stack.user("frozen")
    assert _upload(limit_stack.url, token, 1).status_code == 201  # connections made
    pid = limit_stack.redis.proc.pid
    os.kill(pid, signal.SIGSTOP)
    took = []
    try:
        for _ in range(3):
            started = time.monotonic()
            assert _upload(limit_stack.url, token, 1).status_code == 201
            took.append(time.monotonic() - started)
    finally:
        os.kill(pid, signal.SIGCONT)
    print(f"\nuploads while Redis hangs answered in {[round(t, 2) for t in took]} s")
    assert max(took) < 1.2
