"""``flask --app web ...`` commands: init-db, create-user, create-token.

``create-user`` and ``create-token`` print the new API token as their last line, so scripts can
take it with ``| tail -n1``.
"""

from __future__ import annotations

import click
from flask import Flask
from sqlalchemy import select

from shared.migrate import upgrade
from shared.models import User
from web.auth import UserExists, create_token, create_user
from web.extensions import services


def register_cli(app: Flask) -> None:
    @app.cli.command("init-db")
    def init_db() -> None:
        """Create or upgrade the database schema (Alembic migrations to head)."""
        upgrade(services(app).settings.database_url)
        click.echo("database is at the latest schema revision")

    @app.cli.command("create-user")
    @click.argument("name")
    @click.option("--password", default=None, help="also allow portal log-in with this password")
    def create_user_command(name: str, password: str | None) -> None:
        """Create a user and an API token; the token is printed as the last line."""
        with services(app).sessions.begin() as session:
            try:
                user = create_user(session, name, password)
            except (UserExists, ValueError) as exc:
                raise click.ClickException(str(exc)) from None
            token = create_token(session, user)
        click.echo(f"created user {name!r}; API token (shown once):")
        click.echo(token)

    @app.cli.command("create-token")
    @click.argument("name")
    def create_token_command(name: str) -> None:
        """Create another API token for an existing user; printed as the last line."""
        with services(app).sessions.begin() as session:
            user = session.scalar(select(User).where(User.username == name))
            if user is None:
                raise click.ClickException(f"no user {name!r}; create it with create-user")
            token = create_token(session, user)
        click.echo(f"new API token for {name!r} (shown once):")
        click.echo(token)
