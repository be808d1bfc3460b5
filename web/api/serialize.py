"""JSON of batches, items and model evaluations (the REST contract: docs/ARCHITECTURE.md and the OpenAPI document).

Plain dicts, built fast; their shapes are the models of ``web.schemas`` (``Item``, ``Batch``,
``BatchSummary``, ``BatchCreated``, ``Evaluation``), which the OpenAPI document is generated from
and which every answer is checked against when ``VALIDATE_RESPONSES`` is on (the tests)."""

from __future__ import annotations

from datetime import datetime

from flask import url_for
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shared.catalog.configs import get_model_config
from shared.catalog.preview_costs import preview_untrained as cost_is_untrained
from shared.codes.errors import ERROR_MESSAGES, message_for
from shared.items import quality, states
from shared.store.tables import Batch, Evaluation, Item
from web.extensions import services

IMAGE_KINDS = ("original", "projected", "preview", "final")


def iso(value: datetime | None) -> str | None:
    """Naive UTC datetimes from the database as ISO 8601 with a Z."""
    return None if value is None else value.isoformat(timespec="seconds") + "Z"


def model_info(name: str, item_flag: bool | None = None) -> dict:
    """A model name plus whether it is pretrained (random-weight renders are marked as such)."""
    try:
        config = get_model_config(name)
    except KeyError:  # a model that was removed since the item was rendered
        config = None
    pretrained = item_flag if item_flag is not None else (config.pretrained if config else None)
    return {"name": name, "pretrained": pretrained}


def blob_for(item: Item, kind: str) -> str | None:
    """The blob id behind one of an item's images, or None when there is none (yet)."""
    return {
        "original": item.upload_blob_id,
        "projected": item.projected_blob_id,
        "preview": item.preview_blob_id,
        "final": item.final_blob_id,
    }[kind]


def _image_url(item: Item, kind: str) -> str | None:
    if blob_for(item, kind) is None:
        return None
    # The version parameter changes whenever the picture behind the URL may have changed, so
    # browsers and proxies never show a stale preview.
    return url_for(f"api.item_{kind}", item_id=item.id, v=item.edit_version, _external=True)


def preview_untrained(item: Item, batch: Batch) -> bool:
    """Whether the item's preview cost was measured below the bar for its model (a recipe may
    pick one: it runs, but its preview may not match the final)."""
    cost = item.preview_cost or (batch.recipe or {}).get("preview")
    if not cost:
        return False
    settings = services().settings
    try:
        config = get_model_config(item.model_name or batch.model_name, settings.weights_dir)
    except KeyError:
        return False
    return cost_is_untrained(config, settings.weights_dir, settings.preview_min_psnr,
                             (cost["channels"], cost["resolution"]))


def item_dict(item: Item, batch: Batch) -> dict:
    error = None
    if item.error_code:
        # People see the stable code's text, never the worker's detail (an exception's words);
        # the detail stays in the item's row and the worker's log.
        message = (ERROR_MESSAGES[item.error_code] if item.error_code in ERROR_MESSAGES
                   else item.error_message or message_for(item.error_code))
        error = {"code": item.error_code, "message": message}
    edits = item.edits if item.edits is not None else (batch.recipe or {}).get("edits", {})
    return {
        "id": item.id,
        "batch_id": item.batch_id,
        "position": item.position,
        "filename": item.filename,
        "status": item.status,
        "error": error,
        "original_url": _image_url(item, "original"),
        "projected_url": _image_url(item, "projected"),
        "preview_url": _image_url(item, "preview"),
        "final_url": _image_url(item, "final"),
        "edits": edits,
        "faces": item.faces,
        "face_edits": item.face_edits or {},
        "edit_version": item.edit_version,
        "attempts": item.attempts,
        "timings": item.timings or {},
        "preview_cost": item.preview_cost,
        "preview_untrained": preview_untrained(item, batch),
        "final_cost": item.final_cost,
        "model": model_info(item.model_name or batch.model_name, item.pretrained),
        "realism": quality.item_realism(item),
        "projection": item.projection,
        "consistency": item.consistency,
        "seed": (item.synthesis or {}).get("seed"),
        "synthesis": item.synthesis,
        "created_at": iso(item.created_at),
        "updated_at": iso(item.updated_at),
    }


def batch_dict(batch: Batch, sort: str = "position", order: str | None = None) -> dict:
    """A batch with its items in ``sort`` order (``shared.items.quality.sort_items``)."""
    statuses = [item.status for item in batch.items]
    return {
        "id": batch.id,
        "name": batch.name,
        "status": states.batch_status(statuses),
        "progress": states.batch_progress(statuses),
        "counts": states.status_counts(statuses),
        "created_at": iso(batch.created_at),
        "canceled_at": iso(batch.canceled_at),
        "recipe": batch.recipe,
        "model": model_info(batch.model_name),
        "download_url": url_for("api.download_batch", batch_id=batch.id, _external=True),
        "items": [item_dict(item, batch) for item in quality.sort_items(batch.items, sort, order)],
    }


def created_dict(batch: Batch) -> dict:
    """The 201 answer to an upload: the batch and its items' first state."""
    return {
        "id": batch.id,
        "name": batch.name,
        "status": states.batch_status(i.status for i in batch.items),
        "url": url_for("api.get_batch", batch_id=batch.id, _external=True),
        "items": [{"id": i.id, "filename": i.filename, "status": i.status} for i in batch.items],
    }


def batch_summaries(session: Session, batches: list[Batch]) -> list[dict]:
    """Page entries without loading every item: one grouped count query for the whole page."""
    ids = [b.id for b in batches]
    per_batch: dict[str, list[str]] = {i: [] for i in ids}
    if ids:
        rows = session.execute(
            select(Item.batch_id, Item.status, func.count())
            .where(Item.batch_id.in_(ids)).group_by(Item.batch_id, Item.status)
        ).all()
        for batch_id, status, n in rows:
            per_batch[batch_id].extend([status] * n)
    out = []
    for batch in batches:
        statuses = per_batch[batch.id]
        out.append({
            "id": batch.id,
            "name": batch.name,
            "status": states.batch_status(statuses),
            "progress": states.batch_progress(statuses),
            "counts": states.status_counts(statuses),
            "item_count": len(statuses),
            "created_at": iso(batch.created_at),
            "model": model_info(batch.model_name),
            "url": url_for("api.get_batch", batch_id=batch.id, _external=True),
        })
    return out


def evaluation_dict(evaluation: Evaluation) -> dict:
    """A model evaluation job: what was asked, its status, and what the worker measured."""
    error = None
    if evaluation.error_code:
        error = {"code": evaluation.error_code,
                 "message": evaluation.error_message or message_for(evaluation.error_code)}
    return {
        "id": evaluation.id,
        "model": model_info(evaluation.model_name),
        "kind": evaluation.kind,
        "status": evaluation.status,
        "params": evaluation.params,
        "result": evaluation.result,
        "error": error,
        "worker": evaluation.worker,
        "attempts": evaluation.attempts,
        "created_at": iso(evaluation.created_at),
        "started_at": iso(evaluation.started_at),
        "finished_at": iso(evaluation.finished_at),
        "shared": evaluation.shared_at is not None,
        "url": url_for("api.get_evaluation", model_name=evaluation.model_name,
                       evaluation_id=evaluation.id, _external=True),
    }
