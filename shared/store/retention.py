"""Deleting a batch and every byte of it (items, latents, uploads, previews, finals), on request
or when it is older than ``retention_days``."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from shared.platform.settings import Settings
from shared.store.blobs import BlobStore
from shared.store.tables import Batch, Blob, Item, Latent, utcnow

log = logging.getLogger(__name__)

EXPIRED_PER_CALL = 100


def delete_batch_data(session: Session, blobs: BlobStore, batch_id: str) -> dict:
    """Remove a batch's rows and blobs (and blobs a crash left unreferenced) in ``session``.
    A worker rendering one of its items loses its result."""
    items = session.execute(
        select(Item.id, Item.upload_blob_id, Item.projected_blob_id, Item.preview_blob_id,
               Item.final_blob_id).where(Item.batch_id == batch_id)).all()
    item_ids = [row.id for row in items]
    blob_ids = {b for row in items for b in row[1:] if b}
    blob_ids.update(session.scalars(select(Blob.id).where(Blob.batch_id == batch_id)))
    latents = session.execute(delete(Latent).where(Latent.item_id.in_(item_ids))
                              .execution_options(synchronize_session=False)).rowcount
    session.execute(delete(Item).where(Item.batch_id == batch_id)
                    .execution_options(synchronize_session=False))
    session.execute(delete(Batch).where(Batch.id == batch_id)
                    .execution_options(synchronize_session=False))
    deleted_blobs = blobs.delete(session, blob_ids)
    log.info("batch %s deleted: %d items, %d latents, %d blobs", batch_id, len(item_ids),
             latents, deleted_blobs, extra={"batch_id": batch_id})
    return {"items": len(item_ids), "latents": latents, "blobs": deleted_blobs}


def delete_expired(settings: Settings, sessions: sessionmaker[Session], blobs: BlobStore,
                   now: datetime | None = None) -> int:
    """Retention: delete up to 100 batches created more than ``retention_days`` ago (0: keep
    all). Returns how many were deleted."""
    if settings.retention_days <= 0:
        return 0
    cutoff = (now or utcnow()) - timedelta(days=settings.retention_days)
    with sessions() as session:
        old = session.scalars(select(Batch.id).where(Batch.created_at < cutoff)
                              .order_by(Batch.created_at).limit(EXPIRED_PER_CALL)).all()
    for batch_id in old:
        with sessions.begin() as session:
            delete_batch_data(session, blobs, batch_id)
    return len(old)
