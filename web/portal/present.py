"""Batches and items as the portal shows them: plain dicts used by both the templates and the
JSON the pages poll, so the first render and every update agree."""

from __future__ import annotations

from flask import request, url_for
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shared import quality, states
from shared.errors import message_for
from shared.models import Batch, Item
from shared.states import ItemStatus

#: The images of an item, in grid order, and the blob column holding each.
IMAGE_KINDS: dict[str, str] = {
    "original": "upload_blob_id",
    "projected": "projected_blob_id",
    "preview": "preview_blob_id",
    "final": "final_blob_id",
}

STATUS_LABELS: dict[str, str] = {
    "queued": "Queued",
    "previewing": "Rendering preview",
    "preview_ready": "Preview ready",
    "finalizing": "Rendering final",
    "done": "Done",
    "failed": "Failed",
    "canceled": "Canceled",
    "running": "Running",
    "empty": "Empty",
}


def image_url(item: Item, kind: str) -> str | None:
    """The portal URL of one image, or None when it does not exist yet. The blob id is in the
    query string, so the URL changes exactly when the picture does (and caches stay right)."""
    blob_id = getattr(item, IMAGE_KINDS[kind])
    if not blob_id:
        return None
    return url_for("portal.item_image", item_id=item.id, kind=kind, b=blob_id[:12])


def item_error(item: Item) -> str | None:
    if item.status != ItemStatus.FAILED.value and not item.error_code:
        return None
    if item.error_message:
        return item.error_message
    return message_for(item.error_code or "internal_error")


def _number(value, digits: int) -> str:
    return f"{float(value):.{digits}f}"


def quality_text(item: Item) -> str:
    """One line on an item's quality: realism scores (0..1), how the face was projected and at
    what error, and the final's consistency with the last preview."""
    parts = []
    realism = quality.item_realism(item)
    scores = [f"{kind} {_number(r['score'], 2)}" for kind, r in realism.items() if r]
    if scores:
        parts.append("Realism " + ", ".join(scores))
    p = item.projection or {}
    if p.get("method") == "synthesis":  # an exact code from a seed: no projection error
        parts.append(f"Generated from seed {p.get('seed')}")
    elif p.get("method"):
        error = f", error {_number(p['error'], 4)}" if p.get("error") is not None else ""
        parts.append(f"Projected by {p['method']}{error}")
    c = item.consistency or {}
    if c.get("psnr") is not None:
        lpips = f", LPIPS {_number(c['lpips'], 3)}" if c.get("lpips") is not None else ""
        parts.append(f"Final vs preview PSNR {_number(c['psnr'], 1)} dB{lpips}")
    return " \u00b7 ".join(parts)


def item_dict(item: Item) -> dict:
    return {
        "id": item.id,
        "position": item.position,
        "filename": item.filename,
        "status": item.status,
        "status_label": STATUS_LABELS.get(item.status, item.status),
        "error": item_error(item),
        "edit_version": item.edit_version,
        "edits": item.edits,
        "preview_cost": item.preview_cost,
        "final_cost": item.final_cost,
        "timings": {k: round(float(v), 3) for k, v in (item.timings or {}).items()
                    if isinstance(v, int | float)},
        "pretrained": item.pretrained,
        "realism": quality.item_realism(item),
        "projection": item.projection,
        "consistency": item.consistency,
        "quality_text": quality_text(item),
        "urls": {kind: image_url(item, kind) for kind in IMAGE_KINDS},
        "editor_url": url_for("portal.item_page", item_id=item.id),
    }


def portal_sort() -> str:
    """The batch page's ``?sort=``: a key of ``SORT_ORDERS``; anything else is upload order."""
    sort = request.args.get("sort", "position")
    return sort if sort in quality.SORT_ORDERS else "position"


def summary(statuses: list[str]) -> dict:
    status = states.batch_status(statuses)
    return {
        "status": status,
        "status_label": STATUS_LABELS.get(status, status),
        "progress": states.batch_progress(statuses),
        "counts": states.status_counts(statuses),
        "total": len(statuses),
    }


def batch_dict(batch: Batch, sort: str = "position") -> dict:
    """The batch page's data, items in ``sort`` order (``shared.quality.SORT_ORDERS``)."""
    items = quality.sort_items(batch.items, sort)
    out = summary([i.status for i in items])
    out.update({
        "id": batch.id,
        "created_at": batch.created_at.isoformat(timespec="seconds") + "Z",
        "recipe": batch.recipe,
        "model_name": batch.model_name,
        "sort": sort,
        "items": [item_dict(i) for i in items],
        "finals": sum(1 for i in items if i.final_blob_id and i.status == ItemStatus.DONE.value),
    })
    return out


def batch_summaries(db: Session, batch_ids: list[str]) -> dict[str, dict]:
    """Status and progress of many batches in one query (the list page)."""
    statuses: dict[str, list[str]] = {b: [] for b in batch_ids}
    if batch_ids:
        rows = db.execute(
            select(Item.batch_id, Item.status, func.count()).where(Item.batch_id.in_(batch_ids))
            .group_by(Item.batch_id, Item.status)
        ).all()
        for batch_id, status, n in rows:
            statuses[batch_id].extend([status] * n)
    return {b: summary(s) for b, s in statuses.items()}
