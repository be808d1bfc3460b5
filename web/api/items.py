"""Item routes: read, finalize, change edits (a new preview), retry, and the item's images."""

from __future__ import annotations

import time
from urllib.parse import quote

from flask import Response, request

from shared.platform import preview_lane
from shared.platform.nudges import Waiter
from web.api import wait_slots
from web.api.archive import extension_for, safe_stem
from web.api.blueprint import bp, current_user
from web.api.params import int_param
from web.api.serialize import IMAGE_KINDS, blob_for, item_dict
from web.errors import ApiError
from web.extensions import db, services


def _item(item_id: str):
    return services().batches.get_item(db(), current_user().id, item_id)


@bp.get("/items/<item_id>")
def get_item(item_id: str):
    item = _item(item_id)
    return item_dict(item, item.batch)


@bp.post("/items/<item_id>/finalize")
def finalize_item(item_id: str):
    services().batches.finalize_item(current_user().id, item_id)
    return {"id": item_id, "status": "finalizing"}, 202


@bp.route("/items/<item_id>/edits", methods=["PATCH", "POST"])
def edit_item(item_id: str):
    svc = services()
    user = current_user()
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or "edits" not in body:
        raise ApiError(400, "invalid_edits", 'send JSON {"edits": {"attribute": value}}', "edits")
    # Edits and the optional preview cost ("preview": this item at another cost) in one guarded
    # update: a refused edit (4xx) changes neither. With "face", the edits are that face's
    # override (shared.commands.batches.Jobs.edit_item).
    version = svc.batches.edit_item(user.id, item_id, body["edits"], body.get("preview"),
                                 face=body.get("face"))
    return {"id": item_id, "status": "previewing", "edit_version": version}, 202


@bp.post("/items/<item_id>/retry")
def retry_item(item_id: str):
    services().batches.retry_item(current_user().id, item_id)
    return {"id": item_id, "status": "queued"}, 202


#: A preview's long-poll: ``GET /items/<id>/preview?v=N&wait=S`` answers once the preview of
#: edit version N (or a newer one) is in the preview lane (``shared.platform.preview_lane``: the
#: worker puts it there before its SQL transaction) or stored, the item failed, or S seconds
#: passed (404).
MAX_WAIT_SECONDS = 30
WAIT_RECHECK_SECONDS = 0.25  # a lost nudge costs at most this
SHOWABLE = frozenset({"preview_ready", "finalizing", "done"})
GIVE_UP = frozenset({"failed", "canceled"})


def _preview_of(item, version: int) -> bool:
    return (item.edit_version >= version and item.status in SHOWABLE
            and item.preview_blob_id is not None)


def _wait_for_preview(svc, session, owner_id: int, item, version: int, seconds: int):
    """The item once its preview of ``version`` (or newer) is stored, it failed, or time is
    up; or that preview from the lane when it is there first (a ``LanePreview``). Woken by the
    worker's nudge of the batch (shared.platform.nudges), re-read at least every
    WAIT_RECHECK_SECONDS. ``item`` is the caller's own: its owner was checked."""
    deadline = time.monotonic() + seconds
    redis_url = svc.settings.redis_url
    waiter = None
    try:
        while not (_preview_of(item, version) or item.status in GIVE_UP):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            just_subscribed = waiter is None
            if just_subscribed:  # subscribed before the lane is read: no nudge falls in between
                waiter = Waiter(redis_url, item.batch_id, also=(preview_lane.channel(item.id),))
            else:
                waiter.wait(min(left, WAIT_RECHECK_SECONDS))
            early = preview_lane.newest(redis_url, item.id, version)
            if early is not None:
                return early
            if just_subscribed:
                # No SQL now, while the render runs: a commit from now on nudges us, and one
                # before (a failure; a preview also comes by the lane) is seen at the next
                # re-read, at most WAIT_RECHECK_SECONDS on.
                continue
            session.rollback()  # a fresh transaction sees the worker's commit
            item = svc.batches.get_item(session, owner_id, item.id)
    finally:
        if waiter is not None:
            waiter.close()
    return item


def _lane_response(early: preview_lane.LanePreview, item) -> Response:
    """A preview from the lane: no ETag (its blob is not stored yet: a later read of the same
    URL gets the stored one's)."""
    response = _download_name(Response(early.data, mimetype=early.media_type), item, "preview")
    return _image_headers(response, early.version)


def _download_name(response: Response, item, kind: str) -> Response:
    """With ``?download=1``, an attachment named after the upload and the kind."""
    if request.args.get("download"):
        stem = safe_stem(item.filename, f"photo-{item.position + 1}")
        name = f"{stem}-{kind}{extension_for(response.mimetype)}"
        ascii_name = name.encode("ascii", "replace").decode().replace("?", "_")
        response.headers["Content-Disposition"] = (
            f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name)}"
        )
    return response


def _image_headers(response: Response, edit_version: int | None) -> Response:
    """What every image answer says: which edit a preview shows (``X-Edit-Version``), and that
    the same URL shows a newer preview after an edit (always revalidate)."""
    if edit_version is not None:
        response.headers["X-Edit-Version"] = str(edit_version)
    response.headers["Cache-Control"] = "private, no-cache"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def _image(item_id: str, kind: str) -> Response:
    svc = services()
    session = db()
    owner_id = current_user().id
    item = svc.batches.get_item(session, owner_id, item_id)
    wait = int_param(request.args.get("wait"), "wait", 0, MAX_WAIT_SECONDS, 0)
    if kind == "preview" and wait:
        version = int_param(request.args.get("v"), "v", 0, 2**31 - 1, item.edit_version)
        if not _preview_of(item, version) and item.status not in GIVE_UP:
            with wait_slots.SLOTS.hold(owner_id):  # a thread held while it waits: bounded
                found = _wait_for_preview(svc, session, owner_id, item, version, wait)
            if isinstance(found, preview_lane.LanePreview):
                return _lane_response(found, item)
            item = found
        if not _preview_of(item, version):
            raise ApiError(404, "not_ready", f"the preview of edit version {version} is not ready",
                           item_status=item.status)
    blob_id = blob_for(item, kind)
    if blob_id is None:
        raise ApiError(404, "not_ready", f"the {kind} image of this item is not ready",
                       item_status=item.status)
    # Blobs never change once written, so the blob id is a strong validator.
    if blob_id in request.if_none_match:
        response = Response(status=304)
    else:
        data, content_type = svc.blobs.get(session, blob_id)
        if not content_type.startswith("image/"):
            content_type = "application/octet-stream"
        response = _download_name(Response(data, mimetype=content_type), item, kind)
    response.set_etag(blob_id)
    showing = kind == "preview" and item.status in SHOWABLE  # a version it surely shows
    return _image_headers(response, item.edit_version if showing else None)


def _register_image_routes() -> None:
    for kind in IMAGE_KINDS:
        def view(item_id: str, _kind: str = kind) -> Response:
            return _image(item_id, _kind)

        bp.add_url_rule(f"/items/<item_id>/{kind}", endpoint=f"item_{kind}", view_func=view)


_register_image_routes()
