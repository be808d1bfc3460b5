"""The edit names a user may use beyond the built-in attributes: the configured model's
generator directions (its sidecar in the weights directory) and the user's own (SQL)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.catalog.directions import edit_names, generator_directions
from shared.platform.settings import Settings
from shared.store.tables import UserDirection


def generator_entries(settings: Settings) -> list[dict]:
    """The configured model's generator directions, from its sidecar."""
    return generator_directions(settings.weights_dir, settings.model)


def user_rows(session: Session, owner_id: int, model_name: str) -> list[UserDirection]:
    return list(session.scalars(
        select(UserDirection).where(UserDirection.owner_id == owner_id,
                                    UserDirection.model_name == model_name)
        .order_by(UserDirection.name)
    ))


def names_for(session: Session, settings: Settings, owner_id: int | None) -> dict[str, str]:
    """Every extra edit name ``owner_id`` may use in a recipe -> its stored key."""
    users = [r.name for r in user_rows(session, owner_id, settings.model)] if owner_id else []
    return edit_names([d["key"] for d in generator_entries(settings)], users)
