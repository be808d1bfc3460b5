"""Hostile input gets a 4xx, never a 500: JSON nested a thousand deep in a recipe or an edit, NUL
and control characters in paths, query strings, headers and JSON strings."""

from __future__ import annotations

import json

import pytest
from web_api_helpers import image_bytes, queued_messages, upload

from tests.conftest import private_redis

PNG = image_bytes("PNG")
DEEP = "[" * 5000 + "]" * 5000


@pytest.fixture
def database_url(sqlite_url):
    """Refused before any SQL runs: one back-end is enough."""
    return sqlite_url


@pytest.fixture
def redis_url():
    with private_redis("webhard") as url:
        yield url


def _error(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)[:300]
    error = response.json["error"]
    assert error["message"]
    if code:
        assert error["code"] == code
    return error


@pytest.mark.parametrize("recipe", [
    DEEP, '{"edits": ' + "{\"a\": " * 3000 + "1" + "}" * 3000 + "}",
    json.dumps({"edits": {"smiling": 0.5}, "output": "photo\u0000"}),
    json.dumps({"edits": {"smi\u0001ling": 0.5}}),
])
def test_hostile_recipes_are_400_and_store_nothing(client, alice, redis_url, recipe):
    response = upload(client, alice["headers"], [(PNG, "a.png")], recipe)
    error = _error(response, 400)
    assert error["code"] in {"json_too_deep", "invalid_characters"}
    assert error["field"].startswith("recipe")
    assert client.get("/api/v1/batches", headers=alice["headers"]).json["total"] == 0
    assert queued_messages(redis_url, "preview") == []


def test_hostile_edit_bodies_are_400(client, alice):
    item_id = upload(client, alice["headers"], [(PNG, "a.png")]).json["items"][0]["id"]
    url = f"/api/v1/items/{item_id}/edits"
    deep_edits = '{"edits": ' + '{"x": ' * 2000 + "0" + "}" * 2000 + "}"
    for body, code in ((DEEP, "json_too_deep"), (deep_edits, "json_too_deep"),
                       ('{"edits": {"smiling\\u0000": 0.5}}', "invalid_characters")):
        response = client.patch(url, data=body, headers=alice["headers"],
                                content_type="application/json")
        _error(response, 400, code)
    # The item is untouched and still takes a good edit.
    good = client.patch(url, json={"edits": {"smiling": 0.5}}, headers=alice["headers"])
    assert good.status_code == 202, good.json


@pytest.mark.parametrize("path", [
    "/api/v1/batches/%00", "/api/v1/items/abc%00def", "/api/v1/items/%01/preview",
    "/api/v1/batches?page=1%00", "/api/v1/batches?x%00=1", "/api/v1/batches/%C2%85",
])
def test_control_characters_in_paths_and_queries_are_400(client, alice, path):
    _error(client.get(path, headers=alice["headers"]), 400, "invalid_characters")


def test_control_characters_in_headers_are_400(client, alice):
    for name, value in (("X-Anything", "a\x00b"), ("Idempotency-Key", "k\x01"),
                        ("User-Agent", "bad\x7f")):
        response = client.get("/api/v1/me", headers={**alice["headers"], name: value})
        _error(response, 400, "invalid_characters")
    # A NUL inside the bearer token itself.
    response = client.get("/api/v1/me", headers={"Authorization": "Bearer abc\x00def"})
    _error(response, 400, "invalid_characters")


def test_portal_pages_refuse_control_characters_too(client):
    assert client.get("/batches/%00").status_code == 400
