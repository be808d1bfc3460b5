"""A user's quota: at most ``user_quota`` of their items waiting for a preview at once."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shared.commands.errors import CommandError
from shared.items.sending import PREVIEW_WORK
from shared.platform.settings import Settings
from shared.store.tables import Batch, Item

QUOTA_RETRY_AFTER = 30  # seconds a user over quota is told to wait


def check_quota(session: Session, settings: Settings, owner_id: int, adding: int) -> None:
    """Refuse (429 ``quota_exceeded``) ``adding`` more items when they would pass the quota."""
    waiting = session.scalar(
        select(func.count()).select_from(Item).join(Batch, Batch.id == Item.batch_id)
        .where(Batch.owner_id == owner_id, Item.status.in_(PREVIEW_WORK))
    ) or 0
    if waiting + adding > settings.user_quota:
        raise CommandError(
            "quota_exceeded",
            f"you have {waiting} photos waiting; at most {settings.user_quota} may wait "
            "at once. Try again when some have finished.", 429, QUOTA_RETRY_AFTER)
