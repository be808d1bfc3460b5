"""Tokens and the CLI: `create-user` prints a working token as its last line, tokens and
passwords are stored only hashed, requests without a valid token get a JSON 401."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import inspect, select, text

from shared.store.tables import ApiToken, User
from web.auth import SESSION_CSRF_KEY, SESSION_EPOCH_KEY, SESSION_USER_KEY, check_password
from web.extensions import services


def _user(app, name):
    with services(app).sessions() as session:
        return session.scalar(select(User).where(User.username == name))


def test_create_user_prints_a_working_token(app):
    result = app.test_cli_runner().invoke(args=["create-user", "carol", "--password", "s3cret pw"])
    assert result.exit_code == 0, result.output
    token = result.output.strip().splitlines()[-1]
    client = app.test_client()
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200 and me.json["username"] == "carol"

    user = _user(app, "carol")
    assert user.password_hash and "s3cret" not in user.password_hash
    assert user.password_hash.startswith(("scrypt:", "pbkdf2:"))
    assert check_password(user, "s3cret pw") and not check_password(user, "wrong")

    # Stored as sha256 only: the token appears in no column of the tokens table.
    with services(app).sessions() as session:
        row = session.scalar(select(ApiToken).where(ApiToken.user_id == user.id))
        assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
        columns = [c["name"] for c in inspect(services(app).engine).get_columns("api_tokens")]
        for values in session.execute(text(f"SELECT {', '.join(columns)} FROM api_tokens")):
            assert all(token != str(v) for v in values)


def test_create_user_twice_fails_and_create_token_adds_one(app):
    runner = app.test_cli_runner()
    first = runner.invoke(args=["create-user", "dave"]).output.strip().splitlines()[-1]
    again = runner.invoke(args=["create-user", "dave"])
    assert again.exit_code != 0 and "already exists" in again.output
    # It points at the command that does make another token, and that command works as written.
    pointed = again.output.split("run: ", 1)[1].strip()
    assert pointed == "flask --app web tokens create dave"
    extra = runner.invoke(args=pointed.split()[3:])
    assert extra.exit_code == 0, extra.output
    extra_token = extra.output.strip().splitlines()[-1]
    assert app.test_client().get("/api/v1/me", headers={
        "Authorization": f"Bearer {extra_token}"}).json["username"] == "dave"
    second = runner.invoke(args=["create-token", "dave"])
    assert second.exit_code == 0
    token = second.output.strip().splitlines()[-1]
    assert token != first
    client = app.test_client()
    for t in (first, token):
        assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {t}"}).status_code == 200
    assert _user(app, "dave").password_hash is None
    missing = runner.invoke(args=["create-token", "nobody"])
    assert missing.exit_code != 0 and "no user" in missing.output


def test_init_db_creates_the_schema(app_factory, tmp_path, redis_url):
    url = f"sqlite:///{tmp_path / 'fresh' / 'new.db'}"
    fresh = app_factory(database_url=url)
    result = fresh.test_cli_runner().invoke(args=["init-db"])
    assert result.exit_code == 0, result.output
    assert "items" in inspect(services(fresh).engine).get_table_names()


@pytest.mark.parametrize("header", [None, "Bearer nope", "Basic abc", "Bearer "])
def test_missing_or_bad_token_is_401(client, header):
    headers = {"Authorization": header} if header else {}
    response = client.get("/api/v1/batches", headers=headers)
    assert response.status_code == 401
    assert response.json["error"]["code"] == "unauthorized"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_public_descriptions_need_no_token(client):
    for url in ("/api/v1/openapi.json", "/api/v1/attributes", "/api/v1/models/current"):
        assert client.get(url).status_code == 200, url


def test_portal_session_reads_but_writes_only_with_csrf(client, alice):
    created = client.post("/api/v1/batches", headers=alice["headers"], data={})
    assert created.status_code == 400  # (no files) authenticated by token, checked after
    with client.session_transaction() as sess:
        sess[SESSION_USER_KEY] = alice["id"]
        sess[SESSION_EPOCH_KEY] = 0  # a new user's epoch
        sess[SESSION_CSRF_KEY] = "csrf-123"
    assert client.get("/api/v1/me").json["username"] == "alice"
    forged = client.post("/api/v1/batches/x/cancel")
    assert forged.status_code == 403 and forged.json["error"]["code"] == "csrf"
    with_csrf = client.post("/api/v1/batches/x/cancel", headers={"X-CSRF-Token": "csrf-123"})
    assert with_csrf.status_code == 404  # authenticated; the batch does not exist


def test_the_operator_shares_an_evaluation_from_the_cli(app, client):
    """``evaluations share``: another user's API then lists and reads it (``shared: true``);
    ``--private`` hides it again; an unknown id is a clear error, not a traceback."""
    from shared.catalog.configs import get_model_config
    from shared.commands.evaluations import Evaluations
    from tests.web.conftest import add_user

    owner, _ = add_user(app, "olga")
    _, reader = add_user(app, "rita")
    svc = services(app)
    evaluation_id = Evaluations(svc.settings, svc.sessions, svc.dispatcher).create(
        owner, get_model_config("tiny-random"), {"kind": "ppl", "n": 2})
    url = f"/api/v1/models/tiny-random/evaluations/{evaluation_id}"
    headers = {"Authorization": f"Bearer {reader}"}
    runner = app.test_cli_runner()

    assert client.get(url, headers=headers).status_code == 404
    shared = runner.invoke(args=["evaluations", "share", evaluation_id])
    assert shared.exit_code == 0 and "shared" in shared.output
    assert client.get(url, headers=headers).json["shared"] is True
    listed = client.get("/api/v1/models/tiny-random/evaluations", headers=headers).json
    assert [e["id"] for e in listed["evaluations"]] == [evaluation_id]
    assert "olga" in runner.invoke(args=["evaluations", "list"]).output
    assert runner.invoke(args=["evaluations", "share", evaluation_id, "--private"]).exit_code == 0
    assert client.get(url, headers=headers).status_code == 404
    missing = runner.invoke(args=["evaluations", "share", "nope"])
    assert missing.exit_code != 0 and "no evaluation" in missing.output
