"""Batch routes: upload, read, list (optionally by name), rename, finalize, cancel, download the
finals as a zip."""

from __future__ import annotations

from flask import request, send_file
from sqlalchemy import select

from shared.codes.errors import RequestErrorCode
from shared.items import quality
from shared.items.states import ItemStatus
from shared.recipe.batch_names import MAX_NAME_CHARS, NAME_FIELD, parse_batch_name
from shared.store.tables import Blob
from web.api.archive import entry_names, write_zip, zip_name
from web.api.blueprint import bp, current_user
from web.api.params import int_param
from web.api.serialize import batch_dict, batch_summaries
from web.api.submit import submit_batch
from web.errors import ApiError
from web.extensions import db, services

MAX_PER_PAGE = 100


@bp.post("/batches")
def create_batch():
    # Recipe, webhook URL, Idempotency-Key: web/api/submit.py.
    return submit_batch(current_user())


def _int_arg(name: str, default: int, low: int, high: int) -> int:
    return int_param(request.args.get(name), name, low, high, default)


@bp.get("/batches")
def list_batches():
    user = current_user()
    page = _int_arg("page", 1, 1, 1_000_000)
    per_page = _int_arg("per_page", 20, 1, MAX_PER_PAGE)
    name_contains = request.args.get("q", "").strip()
    if len(name_contains) > MAX_NAME_CHARS:
        raise ApiError(400, RequestErrorCode.INVALID_PARAMETER,
                       f"q is at most {MAX_NAME_CHARS} characters", "q")
    session = db()
    batches, total = services().batches.list_batches(session, user.id, page, per_page,
                                                  name_contains=name_contains or None)
    return {
        "batches": batch_summaries(session, batches),
        "page": page,
        "per_page": per_page,
        "total": total,
        "pages": (total + per_page - 1) // per_page,
    }


def _choice_arg(name: str, allowed, default: str | None) -> str | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    if raw not in allowed:
        raise ApiError(400, "invalid_parameter", f"{name} must be one of {', '.join(allowed)}",
                       name)
    return raw


@bp.get("/batches/<batch_id>")
def get_batch(batch_id: str):
    """``?sort=realism`` lists the most realistic items first (``order=asc`` reverses);
    items without a score come last."""
    sort = _choice_arg("sort", tuple(quality.SORT_ORDERS), "position")
    order = _choice_arg("order", quality.ORDERS, None)
    batch = services().batches.get_batch(db(), current_user().id, batch_id)
    return batch_dict(batch, sort, order)


@bp.patch("/batches/<batch_id>")
def rename_batch(batch_id: str):
    """``{"name": "..."}`` names the batch, ``{"name": null}`` (or blank) clears it; 200 with
    the batch's summary."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or set(body) != {NAME_FIELD}:
        raise ApiError(400, RequestErrorCode.INVALID_BODY, 'send JSON {"name": "..."} or '
                       '{"name": null}', NAME_FIELD)
    name = parse_batch_name(body[NAME_FIELD])  # 400 invalid_name (web.errors)
    user = current_user()
    services().batches.rename_batch(user.id, batch_id, name)
    session = db()
    batch = services().batches.get_batch(session, user.id, batch_id)
    return batch_summaries(session, [batch])[0]


@bp.post("/batches/<batch_id>/finalize")
def finalize_batch(batch_id: str):
    queued = services().batches.finalize_batch(current_user().id, batch_id)
    return {"id": batch_id, "queued": queued}, 202


@bp.delete("/batches/<batch_id>")
def delete_batch(batch_id: str):
    """The batch and every byte of it: items, latents, uploads, previews, finals. 204."""
    services().batches.delete_batch(current_user().id, batch_id)
    return "", 204


@bp.post("/batches/<batch_id>/cancel")
def cancel_batch(batch_id: str):
    canceled = services().batches.cancel_batch(current_user().id, batch_id)
    return {"id": batch_id, "canceled": canceled}


@bp.get("/batches/<batch_id>/download")
def download_batch(batch_id: str):
    svc = services()
    session = db()
    batch = svc.batches.get_batch(session, current_user().id, batch_id)
    done = [i for i in batch.items if i.status == ItemStatus.DONE.value and i.final_blob_id]
    if not done:  # the batch exists (else 404 above): it is the zip that is not there yet
        raise ApiError(409, RequestErrorCode.NOT_READY, "this batch has no finished images yet; "
                       "finalize items first (POST /api/v1/batches/<id>/finalize)")
    content_types = dict(session.execute(
        select(Blob.id, Blob.content_type).where(Blob.id.in_([i.final_blob_id for i in done]))
    ).all())
    names = entry_names((i.filename, content_types.get(i.final_blob_id, "")) for i in done)
    # One blob in memory at a time while the archive is written.
    archive = write_zip(
        (name, svc.blobs.get(session, item.final_blob_id)[0])
        for name, item in zip(names, done, strict=True)
    )
    return send_file(
        archive, mimetype="application/zip", as_attachment=True,
        download_name=zip_name(batch.id, batch.name),
    )
