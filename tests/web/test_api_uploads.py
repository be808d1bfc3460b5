"""Upload checks on the web side: bad recipes name the field, non-images get 415, limits get 413,
and nothing is stored or queued for a refused request."""

from __future__ import annotations

import io

import pytest
from web_api_helpers import image_bytes, queued_messages, upload

from web.api.uploads import display_filename

PNG = image_bytes("PNG")


@pytest.fixture
def database_url(sqlite_url):
    """Upload checks happen before any SQL: one database back-end is enough here."""
    return sqlite_url


def _assert_nothing_created(client, headers, redis_url):
    assert client.get("/api/v1/batches", headers=headers).json["total"] == 0
    assert queued_messages(redis_url, "preview") == []


@pytest.mark.parametrize(("recipe", "field"), [
    ({"edits": {"frowning": 0.5}}, "edits.frowning"),
    ({"edits": {"smiling": 1.5}}, "edits.smiling"),
    ({"edits": {"smiling": "lots"}}, "edits.smiling"),
    ({"preview": {"channels": 0.3}}, "preview.channels"),
    ({"final": {"resolution": 300}}, "final.resolution"),
    ({"preview": {"resolution": 2048}}, "preview.resolution"),
    ({"colour": "red"}, "colour"),
    ("{not json", "recipe"),
    ("[1, 2]", "recipe"),
])
def test_bad_recipe_is_400_naming_the_field(client, alice, redis_url, recipe, field):
    response = upload(client, alice["headers"], [(PNG, "a.png")], recipe)
    assert response.status_code == 400, response.json
    error = response.json["error"]
    assert error["code"] == "invalid_recipe" and error["field"] == field and error["message"]
    _assert_nothing_created(client, alice["headers"], redis_url)


def test_recipe_as_a_file_part(client, alice):
    data = {"files": [(io.BytesIO(PNG), "a.png")],
            "recipe": (io.BytesIO(b'{"edits": {"eyeglasses": 1}}'), "recipe.json")}
    response = client.post("/api/v1/batches", data=data, headers=alice["headers"])
    assert response.status_code == 201, response.json
    batch = client.get(response.json["url"], headers=alice["headers"]).json
    assert batch["recipe"]["edits"] == {"15_Eyeglasses": 1.0}


@pytest.mark.parametrize("payload", [
    b"hello, this is text",
    b"<html><body>not a photo</body></html>",
    b"%PDF-1.7\n...",
    b"BM not really a bitmap at all",
])
def test_non_image_is_415(client, alice, redis_url, payload):
    response = upload(client, alice["headers"], [(PNG, "ok.png"), (payload, "photo.jpg")])
    assert response.status_code == 415
    error = response.json["error"]
    assert error["code"] == "unsupported_format" and error["field"] == "files[1]"
    assert error["filename"] == "photo.jpg"
    _assert_nothing_created(client, alice["headers"], redis_url)


def test_missing_and_empty_files_are_400(client, alice, redis_url):
    no_files = client.post("/api/v1/batches", data={"recipe": "{}"}, headers=alice["headers"])
    assert no_files.status_code == 400 and no_files.json["error"]["field"] == "files"
    as_text = client.post("/api/v1/batches", data={"files": "abc"}, headers=alice["headers"])
    assert as_text.status_code == 400 and as_text.json["error"]["field"] == "files"
    no_name = upload(client, alice["headers"], [(PNG, "")])
    assert no_name.status_code == 400 and no_name.json["error"]["code"] == "empty_filename"
    empty = upload(client, alice["headers"], [(b"", "a.png")])
    assert empty.status_code == 400 and empty.json["error"]["code"] == "empty_file"
    json_body = client.post("/api/v1/batches", json={"files": []}, headers=alice["headers"])
    assert json_body.status_code == 400 and json_body.json["error"]["field"] == "files"
    _assert_nothing_created(client, alice["headers"], redis_url)


def test_limits_are_413(app_factory, alice, redis_url):
    client = app_factory(max_files_per_batch=2, max_file_mb=1, max_upload_mb=2).test_client()
    too_many = upload(client, alice["headers"], [(PNG, f"{i}.png") for i in range(3)])
    assert too_many.status_code == 413 and too_many.json["error"]["code"] == "too_many_files"
    big_file = PNG + b"\0" * (1024 * 1024)  # a PNG header, just over 1 MB
    too_big = upload(client, alice["headers"], [(PNG, "small.png"), (big_file, "big.png")])
    assert too_big.status_code == 413
    assert too_big.json["error"]["code"] == "file_too_large"
    assert too_big.json["error"]["field"] == "files[1]"
    chunk = PNG + b"\0" * (900 * 1024)
    request_too_big = upload(client, alice["headers"], [(chunk, "a.png"), (chunk, "b.png"),
                                                        (chunk, "c.png")])
    assert request_too_big.status_code == 413
    assert request_too_big.json["error"]["code"] == "too_large"
    _assert_nothing_created(client, alice["headers"], redis_url)


def test_user_filenames_are_kept_for_display_only(client, alice):
    hostile = "../../etc/\u202epasswd\x00\x1b[31m.png"
    created = upload(client, alice["headers"], [(PNG, hostile), (PNG, "x" * 300 + ".png")]).json
    names = [i["filename"] for i in created["items"]]
    assert names[0] == "passwd[31m.png"
    assert len(names[1]) == 200 and names[1].endswith(".png")


def test_display_filename():
    assert display_filename("C:\\Users\\me\\Photo 1.JPG", 0) == "Photo 1.JPG"
    assert display_filename("\x01\x02", 4) == "photo-5"
    assert display_filename("caf\u0065\u0301.png", 0) == "caf\u00e9.png"  # NFC
