"""A user's quota: at most ``user_quota`` of their items waiting for a preview at once.

The check and the insert that follows it are one transaction, serialised per user: the check
first locks the user's row (``SELECT ... FOR UPDATE`` on PostgreSQL; on SQLite a no-op UPDATE of
the row, which takes the database's write lock before anything is read), so parallel uploads
of one user are counted one after the other and cannot pass the quota together. Other users'
uploads are not held up on PostgreSQL. ``check_quota`` must be the transaction's first
statement (SQLite: a snapshot taken by an earlier read could not be upgraded to a write)."""

from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from shared.commands.errors import CommandError
from shared.items.sending import PREVIEW_WORK
from shared.platform.settings import Settings
from shared.store.tables import Batch, Item, User

QUOTA_RETRY_AFTER = 30  # seconds a user over quota is told to wait


def check_quota(session: Session, settings: Settings, owner_id: int, adding: int) -> None:
    """Refuse (429 ``quota_exceeded``) ``adding`` more items when they would pass the quota.
    Holds the user's lock until the caller's transaction ends (see the module's docstring)."""
    lock_owner(session, owner_id)
    waiting = session.scalar(
        select(func.count()).select_from(Item).join(Batch, Batch.id == Item.batch_id)
        .where(Batch.owner_id == owner_id, Item.status.in_(PREVIEW_WORK))
    ) or 0
    if waiting + adding > settings.user_quota:
        raise CommandError(
            "quota_exceeded",
            f"you have {waiting} photos waiting; at most {settings.user_quota} may wait "
            "at once. Try again when some have finished.", 429, QUOTA_RETRY_AFTER)


def lock_owner(session: Session, owner_id: int) -> None:
    """Take the per-user lock for the rest of the transaction (see the module's docstring)."""
    if session.get_bind().dialect.name == "sqlite":
        session.execute(update(User).where(User.id == owner_id).values(id=User.id))
    else:
        session.execute(select(User.id).where(User.id == owner_id).with_for_update())
