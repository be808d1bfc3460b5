"""``flask --app web ...`` commands: init-db, create-user, create-token, set-password, tokens
(list, create, revoke), webhook-secret, webhooks deliver, evaluations (list, share).

``create-user``, ``create-token``, ``tokens create`` and ``webhook-secret`` print the new token or
secret as their last line, so scripts can take it with ``| tail -n1``.
"""

from __future__ import annotations

import threading

import click
from flask import Flask
from flask.cli import AppGroup, with_appcontext
from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.commands.errors import CommandError
from shared.commands.evaluations import Evaluations
from shared.items import webhooks
from shared.store.migrate import upgrade
from shared.store.tables import ApiToken, Evaluation, User
from web.auth import (
    UserExists,
    create_token,
    create_user,
    issue_token,
    revoke_token,
    set_password,
    token_is_live,
)
from web.extensions import services


def _user(session: Session, name: str) -> User:
    user = session.scalar(select(User).where(User.username == name))
    if user is None:
        raise click.ClickException(f"no user {name!r}; create it with create-user")
    return user


def _when(value) -> str:
    return value.isoformat(timespec="seconds") + "Z" if value else "-"


@click.command("init-db")
@with_appcontext
def init_db() -> None:
    """Create or upgrade the database schema (Alembic migrations to head)."""
    upgrade(services().settings.database_url)
    click.echo("database is at the latest schema revision")

@click.command("create-user")
@with_appcontext
@click.argument("name")
@click.option("--password", default=None, help="also allow portal log-in with this password")
def create_user_command(name: str, password: str | None) -> None:
    """Create a user and an API token; the token is printed as the last line."""
    with services().sessions.begin() as session:
        try:
            user = create_user(session, name, password)
        except UserExists as exc:  # scripts taking the last line would get no token: say how
            raise click.ClickException(
                f"{exc}; for another API token run: flask --app web tokens create {name}"
            ) from None
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
        token = create_token(session, user)
    click.echo(f"created user {name!r}; API token (shown once):")
    click.echo(token)

@click.command("create-token")
@with_appcontext
@click.argument("name")
@click.option("--expires-days", type=click.IntRange(1, 3650), default=None)
def create_token_command(name: str, expires_days: int | None) -> None:
    """Create another API token for an existing user; printed as the last line."""
    with services().sessions.begin() as session:
        token = create_token(session, _user(session, name), expires_days=expires_days)
    click.echo(f"new API token for {name!r} (shown once):")
    click.echo(token)

@click.command("set-password")
@with_appcontext
@click.argument("name")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
def set_password_command(name: str, password: str) -> None:
    """Set a user's portal password; every session signed before ends."""
    with services().sessions.begin() as session:
        try:
            set_password(session, _user(session, name), password)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(f"password of {name!r} changed; their sessions have ended")

@click.group("tokens", cls=AppGroup)
def tokens() -> None:
    """List, create and revoke API tokens."""

@tokens.command("list")
@click.argument("name")
def tokens_list(name: str) -> None:
    """A user's tokens that are not revoked: id, prefix, name, expiry, last use."""
    with services().sessions() as session:
        user = _user(session, name)
        rows = session.scalars(select(ApiToken).where(
            ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None)).order_by(ApiToken.id))
        for row in rows:
            state = "live" if token_is_live(row) else "expired"
            click.echo(f"{row.id}\t{row.prefix}\t{row.name or '-'}\t{state}\t"
                       f"expires {_when(row.expires_at)}\tlast used {_when(row.last_used_at)}")

@tokens.command("create")
@click.argument("name")
@click.option("--label", default=None, help="a name for the token")
@click.option("--expires-days", type=click.IntRange(1, 3650), default=None)
def tokens_create(name: str, label: str | None, expires_days: int | None) -> None:
    """A new token for a user (printed as the last line, shown once)."""
    with services().sessions.begin() as session:
        token, row = issue_token(session, _user(session, name), label, expires_days)
        click.echo(f"token {row.id} for {name!r}, expires {_when(row.expires_at)} "
                   "(shown once):")
    click.echo(token)

@tokens.command("revoke")
@click.argument("name")
@click.argument("token_id", type=int)
def tokens_revoke(name: str, token_id: int) -> None:
    """Revoke one of a user's tokens (by the id ``tokens list`` shows)."""
    with services().sessions.begin() as session:
        if not revoke_token(session, _user(session, name).id, token_id):
            raise click.ClickException(f"{name!r} has no live token {token_id}")
    click.echo(f"token {token_id} revoked")

@click.command("webhook-secret")
@with_appcontext
@click.argument("name")
def webhook_secret_command(name: str) -> None:
    """A new webhook signing secret for a user (replaces the old one; last line)."""
    secret = webhooks.new_secret()
    with services().sessions.begin() as session:
        _user(session, name).webhook_secret = secret
    click.echo(f"new webhook secret for {name!r} (shown once):")
    click.echo(secret)

@click.group("webhooks", cls=AppGroup)
def webhooks_group() -> None:
    """Deliver webhook events."""

@webhooks_group.command("deliver")
@click.option("--once", is_flag=True, help="one pass over the due deliveries, then exit")
def webhooks_deliver(once: bool) -> None:
    """Send due webhook deliveries (a loop; the compose service ``webhooks``)."""
    svc = services()
    if once:
        click.echo(f"{webhooks.deliver_due(svc.sessions, svc.settings)} deliveries attempted")
        return
    try:
        webhooks.run_forever(svc.sessions, svc.settings, threading.Event(),
                             alive_file=webhooks.ALIVE_FILE)
    except KeyboardInterrupt:
        pass

@webhooks_group.command("health")
def webhooks_health() -> None:
    """Exit 0 when the delivery loop completed a pass recently (container healthcheck)."""
    if not webhooks.healthy():
        raise SystemExit(1)

@click.group("evaluations", cls=AppGroup)
def evaluations_group() -> None:
    """List model evaluations; share one with every user (or make it private again)."""

@evaluations_group.command("list")
@click.option("--model", default=None, help="only this model's")
def evaluations_list(model: str | None) -> None:
    """Every user's evaluations, newest first: id, model, kind, status, owner, shared."""
    query = select(Evaluation, User.username).join(User, User.id == Evaluation.owner_id)
    if model:
        query = query.where(Evaluation.model_name == model)
    with services().sessions() as session:
        for row, owner in session.execute(query.order_by(Evaluation.created_at.desc())):
            shared = "shared" if row.shared_at else "private"
            click.echo(f"{row.id}\t{row.model_name}\t{row.kind}\t{row.status}\t{owner}\t{shared}")

@evaluations_group.command("share")
@click.argument("evaluation_id")
@click.option("--private", is_flag=True, help="readable by its owner only again")
def evaluations_share(evaluation_id: str, private: bool) -> None:
    """Let every user read one evaluation (the model page and the API list it for them)."""
    svc = services()
    try:
        Evaluations(svc.settings, svc.sessions, svc.dispatcher).share(evaluation_id, not private)
    except CommandError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"evaluation {evaluation_id} is {'private' if private else 'shared'}")


COMMANDS = (init_db, create_user_command, create_token_command, set_password_command, tokens,
            webhook_secret_command, webhooks_group, evaluations_group)


def register_cli(app: Flask) -> None:
    for command in COMMANDS:
        app.cli.add_command(command)
