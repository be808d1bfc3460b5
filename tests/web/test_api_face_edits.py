"""Per-face edits over the API: PATCH /api/v1/items/<id>/edits with "face" stores that face's
override (item.face_edits), an empty edit removes it, edits without "face" leave the overrides,
and the face index is checked against the faces the worker found (item.faces)."""

from __future__ import annotations

import pytest
from web_api_helpers import image_bytes, queued_messages, upload

from shared.items import states
from shared.platform.queue import PREVIEW_TASK
from web.extensions import services

TWO_FACES = [{"box": [0.1, 0.2, 0.4, 0.7]}, {"box": [0.6, 0.25, 0.9, 0.75]}]
RECIPE = {"edits": {"smiling": 0.5}, "faces": "all"}


def _preview_with_faces(app, item_id: str, version: int, faces) -> None:
    """What a worker's preview pass writes: a picture and the faces it found."""
    svc = services(app)
    with svc.sessions.begin() as session:
        assert states.start_preview(session, item_id, version, "test-worker")
        blob = svc.blobs.put(session, image_bytes(), "image/png")
        session.flush()
        assert states.complete_preview(session, item_id, version, preview_blob_id=blob.id,
                                       faces=faces)


def _item_id(client, headers) -> str:
    created = upload(client, headers, [(image_bytes(), "two.png")], RECIPE).json
    return created["items"][0]["id"]


def _edit(client, headers, item_id, body):
    return client.patch(f"/api/v1/items/{item_id}/edits", json=body, headers=headers)


def test_face_override_stored_kept_and_removed(app, client, alice, redis_url):
    h = alice["headers"]
    item_id = _item_id(client, h)
    _preview_with_faces(app, item_id, 0, TWO_FACES)
    item = client.get(f"/api/v1/items/{item_id}", headers=h).json
    assert item["faces"] == TWO_FACES and item["face_edits"] == {}

    # Face 1's override: a new version and a preview message for it; the item's edits stay.
    answer = _edit(client, h, item_id, {"edits": {"young": 0.8}, "face": 1})
    assert answer.status_code == 202 and answer.json["edit_version"] == 1
    task, group = queued_messages(redis_url, "preview")[-1]
    # With the state the edit wrote (no edits of the item's own: the recipe's apply).
    assert task == PREVIEW_TASK and group == [[item_id, 1, {
        "edits": None, "face_edits": {"1": {"39_Young": 0.8}},
        "preview_cost": {"channels": 0.5, "resolution": 256}}]]
    item = client.get(f"/api/v1/items/{item_id}", headers=h).json
    assert item["face_edits"] == {"1": {"39_Young": 0.8}}
    assert item["edits"] == {"31_Smiling": 0.5}  # the recipe's, for face 0
    assert item["status"] == "previewing"

    # Edits without a face change the item's edits; the override stays.
    assert _edit(client, h, item_id, {"edits": {"eyeglasses": 0.3}}).status_code == 202
    item = client.get(f"/api/v1/items/{item_id}", headers=h).json
    assert item["edits"] == {"15_Eyeglasses": 0.3}
    assert item["face_edits"] == {"1": {"39_Young": 0.8}}
    # "face": null is the same as no face.
    assert _edit(client, h, item_id, {"edits": {"eyeglasses": 0.4}, "face": None}).status_code == 202
    assert client.get(f"/api/v1/items/{item_id}", headers=h).json["face_edits"] == {
        "1": {"39_Young": 0.8}}

    # Face 0 gets one too; then empty edits remove face 1's, null edits face 0's.
    assert _edit(client, h, item_id, {"edits": {"smiling": -0.2}, "face": 0}).status_code == 202
    assert client.get(f"/api/v1/items/{item_id}", headers=h).json["face_edits"] == {
        "0": {"31_Smiling": -0.2}, "1": {"39_Young": 0.8}}
    assert _edit(client, h, item_id, {"edits": {}, "face": 1}).status_code == 202
    assert client.get(f"/api/v1/items/{item_id}", headers=h).json["face_edits"] == {
        "0": {"31_Smiling": -0.2}}
    answer = _edit(client, h, item_id, {"edits": None, "face": 0})
    assert answer.status_code == 202 and answer.json["edit_version"] == 6
    item = client.get(f"/api/v1/items/{item_id}", headers=h).json
    assert item["face_edits"] == {} and item["edits"] == {"15_Eyeglasses": 0.4}


@pytest.mark.parametrize("face", [2, -1, 99, "1", 1.0, True, [0], {"i": 0}])
def test_face_index_is_checked(app, client, alice, face):
    h = alice["headers"]
    item_id = _item_id(client, h)
    _preview_with_faces(app, item_id, 0, TWO_FACES)
    answer = _edit(client, h, item_id, {"edits": {"young": 0.5}, "face": face})
    assert answer.status_code == 400, answer.json
    assert answer.json["error"]["code"] == "invalid_face"
    item = client.get(f"/api/v1/items/{item_id}", headers=h).json
    assert item["face_edits"] == {} and item["edit_version"] == 0 and item["status"] == "preview_ready"


def test_bad_edits_with_a_face_name_the_field(app, client, alice):
    h = alice["headers"]
    item_id = _item_id(client, h)
    _preview_with_faces(app, item_id, 0, TWO_FACES)
    answer = _edit(client, h, item_id, {"edits": {"young": 3}, "face": 0})
    assert answer.status_code == 400 and answer.json["error"]["field"] == "edits.young"


def test_face_edit_before_the_faces_are_known_is_409(app, client, alice):
    h = alice["headers"]
    item_id = _item_id(client, h)  # queued: no preview pass has found its faces yet
    answer = _edit(client, h, item_id, {"edits": {"young": 0.5}, "face": 0})
    assert answer.status_code == 409 and answer.json["error"]["code"] == "not_ready"
    item = client.get(f"/api/v1/items/{item_id}", headers=h).json
    assert item["faces"] is None and item["face_edits"] == {} and item["edit_version"] == 0


def test_face_edit_of_a_finalizing_item_is_refused(app, client, alice):
    h = alice["headers"]
    item_id = _item_id(client, h)
    _preview_with_faces(app, item_id, 0, TWO_FACES)
    assert client.post(f"/api/v1/items/{item_id}/finalize", headers=h).status_code == 202
    answer = _edit(client, h, item_id, {"edits": {"young": 0.5}, "face": 1})
    assert answer.status_code == 409 and answer.json["error"]["code"] == "invalid_state"
    assert client.get(f"/api/v1/items/{item_id}", headers=h).json["face_edits"] == {}


def test_other_users_item_is_404(app, client, alice, bob):
    item_id = _item_id(client, alice["headers"])
    _preview_with_faces(app, item_id, 0, TWO_FACES)
    answer = _edit(client, bob["headers"], item_id, {"edits": {"young": 0.5}, "face": 1})
    assert answer.status_code == 404 and answer.json["error"]["code"] == "not_found"
    item = client.get(f"/api/v1/items/{item_id}", headers=alice["headers"]).json
    assert item["face_edits"] == {} and item["edit_version"] == 0


def test_face_edit_read_at_an_older_version_is_not_written(app, client, alice):
    """The overrides are one JSON map: a write based on a read that another edit overtook loses
    (and Batches.edit_item reads again) instead of dropping the other edit's override."""
    h = alice["headers"]
    item_id = _item_id(client, h)
    _preview_with_faces(app, item_id, 0, TWO_FACES)
    assert _edit(client, h, item_id, {"edits": {"young": 0.5}, "face": 0}).status_code == 202
    with services(app).sessions.begin() as session:  # read at version 0, now at 1
        assert states.request_face_edit(session, item_id, {"1": {"39_Young": 0.1}}, 0) is None
    item = client.get(f"/api/v1/items/{item_id}", headers=h).json
    assert item["face_edits"] == {"0": {"39_Young": 0.5}} and item["edit_version"] == 1
    assert _edit(client, h, item_id, {"edits": {"young": 0.1}, "face": 1}).status_code == 202
    assert client.get(f"/api/v1/items/{item_id}", headers=h).json["face_edits"] == {
        "0": {"39_Young": 0.5}, "1": {"39_Young": 0.1}}
