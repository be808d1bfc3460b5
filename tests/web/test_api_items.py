"""Items through their life over the API: previews and finals written the way a worker writes them
(the state machine functions), then edits, finalize, retry, the image routes and the zip."""

from __future__ import annotations

import io
import zipfile

from web_api_helpers import image_bytes, queued_messages, upload

from shared.codes.errors import message_for
from shared.items import states
from shared.platform.queue import FINAL_TASK, PREVIEW_TASK
from web.extensions import services


def _render_preview(app, item_id: str, version: int = 0) -> bytes:
    """Do what a worker does for a preview: take the item, store a picture, complete."""
    data = image_bytes("PNG", color=(10, 20, version * 40 % 255))
    svc = services(app)
    with svc.sessions.begin() as session:
        assert states.start_preview(session, item_id, version, "test-worker")
        blob = svc.blobs.put(session, data, "image/png")
        session.flush()
        assert states.complete_preview(session, item_id, version, preview_blob_id=blob.id,
                                       timings={"preview": 0.1}, model_name="anycost-ffhq-config-f",
                                       pretrained=True)
    return data


def _render_final(app, item_id: str, color=(1, 2, 3)) -> bytes:
    data = image_bytes("JPEG", size=32, color=color)
    svc = services(app)
    with svc.sessions.begin() as session:
        assert states.start_final(session, item_id, "test-worker")
        blob = svc.blobs.put(session, data, "image/jpeg")
        session.flush()
        assert states.complete_final(session, item_id, final_blob_id=blob.id)
    return data


def _batch(client, headers, names):
    created = upload(client, headers, [(image_bytes(), n) for n in names]).json
    return created["id"], [i["id"] for i in created["items"]]


def test_preview_edit_finalize_download(app, client, alice, redis_url):
    h = alice["headers"]
    batch_id, (a, b, c) = _batch(client, h, ["face.png", "face.png", "../../evil name?.png"])
    previews = {i: _render_preview(app, i) for i in (a, b, c)}

    item = client.get(f"/api/v1/items/{a}", headers=h).json
    assert item["status"] == "preview_ready" and item["timings"] == {"preview": 0.1}
    assert item["model"] == {"name": "anycost-ffhq-config-f", "pretrained": True}
    shown = client.get(item["preview_url"], headers=h)
    assert shown.status_code == 200 and shown.mimetype == "image/png"
    assert shown.data == previews[a]
    assert client.get(f"/api/v1/batches/{batch_id}", headers=h).json["status"] == "preview_ready"

    # A new edit for one item: a new version and a new preview message for exactly that version.
    edit = client.patch(f"/api/v1/items/{b}/edits", json={"edits": {"young": 0.8}}, headers=h)
    assert edit.status_code == 202 and edit.json["edit_version"] == 1
    last_task, last_group = queued_messages(redis_url, "preview")[-1]
    # With the state the edit wrote: a worker that holds the item warm renders it at once.
    assert last_task == PREVIEW_TASK and last_group == [[b, 1, {
        "edits": {"39_Young": 0.8}, "face_edits": None,
        "preview_cost": {"channels": 0.5, "resolution": 256}}]]
    item_b = client.get(f"/api/v1/items/{b}", headers=h).json
    assert item_b["status"] == "previewing" and item_b["edits"] == {"39_Young": 0.8}
    assert client.get(f"/api/v1/items/{a}", headers=h).json["edits"] == {}  # batch recipe's
    bad = client.post(f"/api/v1/items/{b}/edits", json={"edits": {"young": 2}}, headers=h)
    assert bad.status_code == 400 and bad.json["error"]["field"] == "edits.young"
    no_body = client.post(f"/api/v1/items/{b}/edits", headers=h)
    assert no_body.status_code == 400 and no_body.json["error"]["field"] == "edits"
    # b is previewing: it cannot be finalized yet.
    conflict = client.post(f"/api/v1/items/{b}/finalize", headers=h)
    assert conflict.status_code == 409 and conflict.json["error"]["code"] == "invalid_state"

    # Finalize the batch: the two preview_ready items get final messages.
    response = client.post(f"/api/v1/batches/{batch_id}/finalize", headers=h)
    assert response.status_code == 202 and response.json["queued"] == 2
    finals = [i for task, group in queued_messages(redis_url, "final") for i in group
              if task == FINAL_TASK]
    assert sorted(finals) == sorted([a, c])
    assert client.get(f"/api/v1/items/{a}/final", headers=h).status_code == 404

    _render_preview(app, b, version=1)
    assert client.post(f"/api/v1/items/{b}/finalize", headers=h).status_code == 202
    outputs = {a: _render_final(app, a, (200, 0, 0)), b: _render_final(app, b, (0, 200, 0)),
               c: _render_final(app, c, (0, 0, 200))}
    batch = client.get(f"/api/v1/batches/{batch_id}", headers=h).json
    assert batch["status"] == "done" and batch["progress"] == 1.0 and batch["counts"]["done"] == 3
    final = client.get(batch["items"][0]["final_url"], headers=h)
    assert final.mimetype == "image/jpeg" and final.data == outputs[a]
    attached = client.get(batch["items"][0]["final_url"] + "&download=1", headers=h)
    assert 'filename="face-final.jpg"' in attached.headers["Content-Disposition"]

    archive = client.get(f"/api/v1/batches/{batch_id}/download", headers=h)
    assert archive.status_code == 200 and archive.mimetype == "application/zip"
    with zipfile.ZipFile(io.BytesIO(archive.data)) as z:
        names = z.namelist()
        assert names == ["face.jpg", "face-2.jpg", "evil name.jpg"]
        assert [z.read(n) for n in names] == [outputs[a], outputs[b], outputs[c]]


def test_download_before_any_final_is_409_not_ready(client, alice):
    batch_id, _ = _batch(client, alice["headers"], ["a.png"])
    response = client.get(f"/api/v1/batches/{batch_id}/download", headers=alice["headers"])
    assert response.status_code == 409 and response.json["error"]["code"] == "not_ready"
    assert "finalize" in response.json["error"]["message"]
    missing = client.get(f"/api/v1/batches/{'0' * 32}/download", headers=alice["headers"])
    assert missing.status_code == 404 and missing.json["error"]["code"] == "not_found"


def test_failed_item_shows_its_error_and_can_be_retried(app, client, alice, redis_url):
    h = alice["headers"]
    batch_id, (a, b) = _batch(client, h, ["a.png", "b.png"])
    with services(app).sessions.begin() as session:
        # The worker's detail (an exception's words) is stored, but people see the code's text.
        assert states.fail(session, a, "no_face", "ValueError: detector returned 0 boxes")
    _render_preview(app, b)
    batch = client.get(f"/api/v1/batches/{batch_id}", headers=h).json
    failed = batch["items"][0]
    assert failed["status"] == "failed"
    assert failed["error"] == {"code": "no_face", "message": message_for("no_face")}
    assert "ValueError" not in str(batch)
    assert batch["items"][1]["status"] == "preview_ready"  # its sibling goes on

    before = len(queued_messages(redis_url, "preview"))
    response = client.post(f"/api/v1/items/{a}/retry", headers=h)
    assert response.status_code == 202
    item = client.get(f"/api/v1/items/{a}", headers=h).json
    assert item["status"] == "queued" and item["error"] is None and item["attempts"] == 0
    messages = queued_messages(redis_url, "preview")
    assert len(messages) == before + 1 and messages[-1][1] == [[a, item["edit_version"]]]
    again = client.post(f"/api/v1/items/{b}/retry", headers=h)
    assert again.status_code == 409


def test_edit_can_change_the_preview_cost(app, client, alice):
    h = alice["headers"]
    _, (a,) = _batch(client, h, ["a.png"])
    _render_preview(app, a)
    body = {"edits": {"smiling": -0.4}, "preview": {"channels": 0.25, "resolution": 128}}
    assert client.post(f"/api/v1/items/{a}/edits", json=body, headers=h).status_code == 202
    item = client.get(f"/api/v1/items/{a}", headers=h).json
    assert item["preview_cost"] == {"channels": 0.25, "resolution": 128}
    bad = client.post(f"/api/v1/items/{a}/edits",
                      json={"edits": {}, "preview": {"channels": 0.6}}, headers=h)
    assert bad.status_code == 400 and bad.json["error"]["field"] == "preview.channels"
