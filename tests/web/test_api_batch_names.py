"""Batch names over the API (SQLite and PostgreSQL, real Redis): set on upload (form field) and on
a synthesis request (JSON key), checked, renamed with PATCH, searched with ?q=, used for the
zip's file name, and told in the batch.completed event."""

from __future__ import annotations

import io
import json
import zipfile
from urllib.parse import quote

import pytest
from sqlalchemy import func, select
from web_api_helpers import image_bytes

from shared.items import states
from shared.store.tables import Batch, Event, WorkerHeartbeat
from web.api.archive import name_slug, zip_name
from web.extensions import services

MODEL = "anycost-ffhq-config-f"


def _upload(client, headers, name=None, files=None):
    data: dict = {"files": [(io.BytesIO(b), n) for b, n in files or [(image_bytes(), "a.png")]]}
    if name is not None:
        data["name"] = name
    return client.post("/api/v1/batches", data=data, headers=headers,
                       content_type="multipart/form-data")


def _batch_count(app) -> int:
    with services(app).sessions() as session:
        return session.scalar(select(func.count()).select_from(Batch))


def _finish(app, item_id: str, data: bytes, content_type: str) -> None:
    """What a worker does for an item, through the state machine: preview, then the final."""
    svc = services(app)
    with svc.sessions.begin() as session:
        assert states.start_preview(session, item_id, 0, "test-worker")
        preview = svc.blobs.put(session, image_bytes(), "image/png")
        session.flush()
        assert states.complete_preview(session, item_id, 0, preview_blob_id=preview.id,
                                       timings={}, model_name=MODEL, pretrained=True)
        assert states.request_final(session, item_id)
        assert states.start_final(session, item_id, "test-worker")
        final = svc.blobs.put(session, data, content_type)
        session.flush()
        assert states.complete_final(session, item_id, final_blob_id=final.id)


def test_upload_with_a_name_shows_it_everywhere(client, alice):
    h = alice["headers"]
    created = _upload(client, h, "  Summer holiday  ")
    assert created.status_code == 201, created.json
    assert created.json["name"] == "Summer holiday"
    batch_id = created.json["id"]
    assert client.get(f"/api/v1/batches/{batch_id}", headers=h).json["name"] == "Summer holiday"
    listed = client.get("/api/v1/batches", headers=h).json["batches"]
    assert [(b["id"], b["name"]) for b in listed] == [(batch_id, "Summer holiday")]


@pytest.mark.parametrize("name", [None, "", "   "])
def test_no_name_or_a_blank_one_is_null(client, alice, name):
    created = _upload(client, alice["headers"], name)
    assert created.status_code == 201 and created.json["name"] is None


def test_a_name_of_200_characters_is_kept(client, alice):
    name = "é" * 200  # characters, not bytes
    created = _upload(client, alice["headers"], name)
    assert created.status_code == 201 and created.json["name"] == name


@pytest.mark.parametrize("name", ["x" * 201, "two\nlines", "tab\there", "bell\x07", "nul\x00",
                                  "invoice\u202egnp.exe", "a\u2066b\u2069", "rtl\u200fmark"])
def test_bad_names_are_refused_before_anything_is_stored(app, client, alice, name):
    response = _upload(client, alice["headers"], name)
    assert response.status_code == 400, response.json
    assert response.json["error"]["code"] == "invalid_name"
    assert response.json["error"]["field"] == "name"
    assert _batch_count(app) == 0


def test_a_synthesis_request_takes_a_name(app, client, alice):
    with services(app).sessions.begin() as session:
        session.add(WorkerHeartbeat(name="w@h:1", queues="preview,final", model_name=MODEL,
                                    pretrained=False, device="cpu"))
    h = alice["headers"]
    made = client.post("/api/v1/batches", json={"synthesis": {"seeds": [1, 2]},
                                                "name": " Faces "}, headers=h)
    assert made.status_code == 201, made.json
    assert made.json["name"] == "Faces"
    assert client.get(f"/api/v1/batches/{made.json['id']}", headers=h).json["name"] == "Faces"

    bad = client.post("/api/v1/batches", json={"synthesis": {"seeds": [1]}, "name": 5}, headers=h)
    assert bad.status_code == 400 and bad.json["error"]["code"] == "invalid_name"
    assert bad.json["error"]["field"] == "name"
    long = client.post("/api/v1/batches", json={"synthesis": {"seeds": [1]}, "name": "x" * 201},
                       headers=h)
    assert long.status_code == 400 and long.json["error"]["code"] == "invalid_name"
    assert _batch_count(app) == 1


def test_rename_and_clear(client, alice):
    h = alice["headers"]
    batch_id = _upload(client, h).json["id"]
    renamed = client.patch(f"/api/v1/batches/{batch_id}", json={"name": " Portraits "}, headers=h)
    assert renamed.status_code == 200, renamed.json
    assert renamed.json["id"] == batch_id and renamed.json["name"] == "Portraits"
    assert renamed.json["item_count"] == 1
    assert client.get(f"/api/v1/batches/{batch_id}", headers=h).json["name"] == "Portraits"
    for cleared in (None, "  "):
        response = client.patch(f"/api/v1/batches/{batch_id}", json={"name": cleared}, headers=h)
        assert response.status_code == 200 and response.json["name"] is None


@pytest.mark.parametrize(("body", "code"), [
    ({}, "invalid_body"), ({"name": "a", "colour": "red"}, "unknown_field"),
    ([], "invalid_body"), ({"name": 3}, "invalid_name"), ({"name": "x" * 201}, "invalid_name"),
    ({"name": "a\nb"}, "invalid_name"),
])
def test_bad_renames_change_nothing(client, alice, body, code):
    h = alice["headers"]
    batch_id = _upload(client, h, "Kept").json["id"]
    response = client.patch(f"/api/v1/batches/{batch_id}", json=body, headers=h)
    assert response.status_code == 400 and response.json["error"]["code"] == code
    assert response.json["error"]["field"] == ("colour" if code == "unknown_field" else "name")
    assert client.get(f"/api/v1/batches/{batch_id}", headers=h).json["name"] == "Kept"


def test_a_rename_that_is_not_json_is_refused(client, alice):
    batch_id = _upload(client, alice["headers"]).json["id"]
    response = client.patch(f"/api/v1/batches/{batch_id}", data="name=x", headers=alice["headers"])
    assert response.status_code == 400 and response.json["error"]["code"] == "invalid_body"


def test_another_users_batch_cannot_be_renamed(client, alice, bob):
    batch_id = _upload(client, alice["headers"], "Mine").json["id"]
    response = client.patch(f"/api/v1/batches/{batch_id}", json={"name": "Yours"},
                            headers=bob["headers"])
    assert response.status_code == 404 and response.json["error"]["code"] == "not_found"
    missing = client.patch("/api/v1/batches/nope", json={"name": "x"}, headers=alice["headers"])
    assert missing.status_code == 404
    assert client.get(f"/api/v1/batches/{batch_id}", headers=alice["headers"]).json["name"] == "Mine"


def test_search_by_name_ignores_case_and_treats_wildcards_as_text(client, alice, bob):
    h = alice["headers"]
    ids = {name: _upload(client, h, name).json["id"]
           for name in ("Summer holiday", "Winter summers", "100%_done", "1000 done")}
    _upload(client, h)  # unnamed: never matches
    _upload(client, bob["headers"], "Bob's summer")  # another user's: never listed

    def found(q: str) -> list[str]:
        page = client.get("/api/v1/batches", query_string={"q": q}, headers=h).json
        assert page["total"] == len(page["batches"])
        return sorted(b["name"] for b in page["batches"])

    assert found("SUMMER") == ["Summer holiday", "Winter summers"]
    assert found("%_") == ["100%_done"]
    assert found("0_d") == []
    assert found("nothing like it") == []
    everything = client.get("/api/v1/batches", query_string={"q": "  "}, headers=h).json
    assert everything["total"] == 5
    assert ids["100%_done"] in [b["id"] for b in everything["batches"]]
    too_long = client.get("/api/v1/batches", query_string={"q": "x" * 201}, headers=h)
    assert too_long.status_code == 400 and too_long.json["error"]["field"] == "q"


def test_name_slug_and_zip_name():
    assert name_slug("Summer Holiday 2024!") == "summer-holiday-2024"
    assert name_slug("  ../../etc/passwd  ") == "etc-passwd"
    assert name_slug('a"b;c\\d') == "a-b-c-d"
    assert name_slug("Ferien in Österreich") == "ferien-in-österreich"
    assert name_slug("!!!") == "" and name_slug(None) == ""
    assert len(name_slug("word " * 100)) <= 60
    assert zip_name("0123456789abcdef", "My batch") == "my-batch-01234567.zip"
    assert zip_name("0123456789abcdef", None) == "batch-01234567-finals.zip"
    assert zip_name("0123456789abcdef", "???") == "batch-01234567-finals.zip"


def _download(client, headers, batch_id):
    response = client.get(f"/api/v1/batches/{batch_id}/download", headers=headers)
    assert response.status_code == 200 and response.mimetype == "application/zip"
    return response


def test_the_zip_is_named_after_the_batch(app, client, alice):
    h = alice["headers"]
    created = _upload(client, h, "Summer 2024").json
    _finish(app, created["items"][0]["id"], image_bytes("JPEG"), "image/jpeg")
    disposition = _download(client, h, created["id"]).headers["Content-Disposition"]
    assert disposition == f"attachment; filename=summer-2024-{created['id'][:8]}.zip"

    unnamed = _upload(client, h).json
    _finish(app, unnamed["items"][0]["id"], image_bytes("JPEG"), "image/jpeg")
    disposition = _download(client, h, unnamed["id"]).headers["Content-Disposition"]
    assert disposition == f"attachment; filename=batch-{unnamed['id'][:8]}-finals.zip"


def test_a_non_ascii_zip_name_is_sent_as_rfc_5987(app, client, alice):
    h = alice["headers"]
    created = _upload(client, h, 'Ferien "Österreich"; 2024').json
    _finish(app, created["items"][0]["id"], image_bytes("JPEG"), "image/jpeg")
    disposition = _download(client, h, created["id"]).headers["Content-Disposition"]
    expected = f"ferien-österreich-2024-{created['id'][:8]}.zip"
    assert f"filename*=UTF-8''{quote(expected)}" in disposition
    assert f"filename=ferien-osterreich-2024-{created['id'][:8]}.zip" in disposition
    assert disposition.isascii() and '"' not in disposition.replace('filename="', "")


def test_zip_entries_take_the_extension_of_each_final(app, client, alice):
    """keep_format finals come in the upload's format: the zip names them by their own type."""
    h = alice["headers"]
    created = _upload(client, h, files=[(image_bytes("PNG"), "a.png"),
                                        (image_bytes("JPEG"), "b.jpeg"),
                                        (image_bytes("WEBP"), "c.webp")]).json
    finals = [(image_bytes("PNG"), "image/png"), (image_bytes("JPEG"), "image/jpeg"),
              (image_bytes("WEBP"), "image/webp")]
    for item, (data, content_type) in zip(created["items"], finals, strict=True):
        _finish(app, item["id"], data, content_type)
    with zipfile.ZipFile(io.BytesIO(_download(client, h, created["id"]).data)) as archive:
        assert archive.namelist() == ["a.png", "b.jpg", "c.webp"]
        assert [archive.read(n) for n in archive.namelist()] == [d for d, _ in finals]


def test_batch_completed_event_names_the_batch(app, client, alice):
    h = alice["headers"]
    created = _upload(client, h, "Named").json
    batch_id = created["id"]
    client.patch(f"/api/v1/batches/{batch_id}", json={"name": "Renamed"}, headers=h)
    _finish(app, created["items"][0]["id"], image_bytes("JPEG"), "image/jpeg")
    with services(app).sessions() as session:
        data = session.scalars(select(Event.data).where(
            Event.batch_id == batch_id, Event.kind == "batch.completed")).all()
    assert [json.loads(json.dumps(d))["name"] for d in data] == ["Renamed"]


def test_the_name_is_part_of_an_idempotent_request(app, client, alice):
    h = {**alice["headers"], "Idempotency-Key": "names-1"}
    first = _upload(client, h, "First")
    assert first.status_code == 201
    again = _upload(client, h, "First")
    assert again.status_code == 200 and again.json["id"] == first.json["id"]
    other = _upload(client, h, "Second")
    assert other.status_code == 422 and other.json["error"]["code"] == "idempotency_key_reused"
    assert _batch_count(app) == 1
