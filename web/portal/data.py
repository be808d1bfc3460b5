"""The portal's own small JSON endpoints (polled by its pages, signed in by the session cookie,
CSRF header on POSTs), the images of an item, and the zip of a batch's finals.

They call ``shared.jobs`` directly, like the REST API does, so the two never drift apart in
rules (ownership, states) while each keeps its own way of signing in.
"""

from __future__ import annotations

import io
import re
import tempfile
import zipfile
from pathlib import PurePath

from flask import abort, jsonify, request, send_file

from shared.blobs import BlobNotFound
from shared.imagetypes import MIME_TYPES
from shared.jobs import JobError
from shared.recipe import Cost, RecipeError, parse_cost
from shared.states import ItemStatus
from web.portal.auth import current_user, login_required
from web.portal.blueprint import bp
from web.portal.present import IMAGE_KINDS, batch_dict, item_dict, portal_sort
from web.portal.services import services

EXTENSIONS = {mime: ("jpg" if fmt == "jpeg" else fmt) for fmt, mime in MIME_TYPES.items()}


def _json_error(code: str, message: str, status: int):
    return jsonify({"error": {"code": code, "message": message}}), status


@bp.route("/portal/batches/<batch_id>.json")
@login_required
def batch_json(batch_id: str):
    svc = services()
    with svc.sessions() as db:
        try:
            batch = svc.jobs.get_batch(db, current_user().id, batch_id)
        except JobError as exc:
            return _json_error(exc.code, exc.message, exc.status)
        return jsonify(batch_dict(batch, portal_sort()))


@bp.route("/portal/items/<item_id>.json")
@login_required
def item_json(item_id: str):
    svc = services()
    with svc.sessions() as db:
        try:
            item = svc.jobs.get_item(db, current_user().id, item_id)
        except JobError as exc:
            return _json_error(exc.code, exc.message, exc.status)
        return jsonify(item_dict(item))


@bp.route("/portal/items/<item_id>/edits", methods=["POST"])
@login_required
def item_edits(item_id: str):
    """New edits (and optionally a new preview cost) for one item: a new preview is queued.
    Answers the new ``edit_version``; the page shows only the preview of its latest version."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return _json_error("bad_request", "send a JSON object with 'edits'", 400)
    svc = services()
    user_id = current_user().id
    try:
        cost = None
        if body.get("preview") is not None:
            with svc.sessions() as db:
                item = svc.jobs.get_item(db, user_id, item_id)
                current = item.preview_cost
            default = Cost(float(current["channels"]), int(current["resolution"]))
            cost = parse_cost(body["preview"], "preview", svc.model.resolution, default).as_dict()
        # Edits and cost in one guarded update: a refused edit changes neither.
        version = svc.jobs.edit_item(user_id, item_id, body.get("edits") or {}, cost)
    except RecipeError as exc:
        return _json_error("invalid_recipe", f"{exc.field}: {exc.message}", 400)
    except JobError as exc:
        return _json_error(exc.code, exc.message, exc.status)
    return jsonify({"id": item_id, "edit_version": version}), 202


@bp.route("/portal/items/<item_id>/finalize", methods=["POST"])
@login_required
def item_finalize(item_id: str):
    try:
        services().jobs.finalize_item(current_user().id, item_id)
    except JobError as exc:
        return _json_error(exc.code, exc.message, exc.status)
    return jsonify({"id": item_id, "status": ItemStatus.FINALIZING.value}), 202


@bp.route("/portal/items/<item_id>/image/<kind>")
@login_required
def item_image(item_id: str, kind: str):
    if kind not in IMAGE_KINDS:
        abort(404)
    svc = services()
    with svc.sessions() as db:
        try:
            item = svc.jobs.get_item(db, current_user().id, item_id)
        except JobError:
            abort(404)
        blob_id = getattr(item, IMAGE_KINDS[kind])
        if not blob_id:
            abort(404, description=f"no {kind} image yet")
        try:
            data, content_type = svc.blobs.get(db, blob_id)
        except BlobNotFound:
            abort(404)
    response = send_file(io.BytesIO(data), mimetype=content_type, max_age=0)
    # Private: a shared cache must never hand one user's photo to another.
    response.headers["Cache-Control"] = "private, max-age=3600" if request.args.get("b") \
        else "private, no-cache"
    return response


def zip_name(position: int, filename: str, content_type: str) -> str:
    """``001_portrait.png``: numbered (names may repeat), path parts and odd characters removed."""
    stem = PurePath(filename.replace("\\", "/")).stem or "photo"
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._") or "photo"
    return f"{position + 1:03d}_{stem[:80]}.{EXTENSIONS.get(content_type, 'bin')}"


@bp.route("/batches/<batch_id>/download.zip")
@login_required
def download_zip(batch_id: str):
    """All finals of a batch in one zip (stored, not deflated: images are compressed already).
    Written to a spooled temporary file so a big batch does not sit in memory."""
    svc = services()
    spool = tempfile.SpooledTemporaryFile(max_size=32 * 1024 * 1024)
    count = 0
    with svc.sessions() as db:
        try:
            batch = svc.jobs.get_batch(db, current_user().id, batch_id)
        except JobError:
            abort(404)
        with zipfile.ZipFile(spool, "w", compression=zipfile.ZIP_STORED) as archive:
            for item in batch.items:
                if item.status != ItemStatus.DONE.value or not item.final_blob_id:
                    continue
                try:
                    data, content_type = svc.blobs.get(db, item.final_blob_id)
                except BlobNotFound:
                    continue
                archive.writestr(zip_name(item.position, item.filename, content_type), data)
                count += 1
    if count == 0:
        abort(409, description="No finals yet: finalize the batch and wait until photos are done.")
    spool.seek(0)
    return send_file(spool, mimetype="application/zip", as_attachment=True,
                     download_name=f"batch-{batch_id[:8]}-finals.zip", max_age=0)
