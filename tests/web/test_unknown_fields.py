"""Unknown JSON keys are refused on every JSON body, as in a recipe: a misspelt field is a 400
``unknown_field`` naming it, never silently ignored (``{"label": ...}`` once made a token
without a name), and nothing is changed."""

from __future__ import annotations

import pytest
from web_api_helpers import image_bytes, upload

from web import openapi

MODEL = "anycost-ffhq-config-f"


@pytest.fixture
def database_url(sqlite_url):
    return sqlite_url  # refused before any SQL but the token's


def _refused(response, field: str) -> None:
    assert response.status_code == 400, (response.status_code, response.json)
    error = response.json["error"]
    assert error["code"] == "unknown_field" and error["field"] == field, error
    assert "known: " in error["message"]


def test_every_json_body_of_the_document_names_its_fields():
    described = 0
    for path, operations in openapi.PATHS.items():
        for method, operation in operations.items():
            content = (operation.get("requestBody") or {}).get("content", {})
            if "application/json" in content:
                described += 1
                rule = path.replace("{", "<").replace("}", ">")
                assert openapi.body_fields(rule, method), (method, path)
    assert described >= 9


def test_a_token_request_with_a_misspelt_key_makes_no_token(client, alice):
    h = alice["headers"]
    before = client.get("/api/v1/tokens", headers=h).json["tokens"]
    _refused(client.post("/api/v1/tokens", json={"label": "ci"}, headers=h), "label")
    assert client.get("/api/v1/tokens", headers=h).json["tokens"] == before
    made = client.post("/api/v1/tokens", json={"name": "ci"}, headers=h)
    assert made.status_code == 201 and made.json["name"] == "ci"


def test_an_edit_with_an_unknown_top_level_key_changes_nothing(client, alice):
    h = alice["headers"]
    item_id = upload(client, h, [(image_bytes(), "a.png")]).json["items"][0]["id"]
    before = client.get(f"/api/v1/items/{item_id}", headers=h).json
    for method in (client.patch, client.post):
        response = method(f"/api/v1/items/{item_id}/edits", headers=h,
                          json={"edits": {"smiling": 0.5}, "edit_version": 3})
        _refused(response, "edit_version")
    after = client.get(f"/api/v1/items/{item_id}", headers=h).json
    assert (after["edits"], after["edit_version"]) == (before["edits"], before["edit_version"])
    # A nested misspelling is the recipe parser's, as before.
    nested = client.patch(f"/api/v1/items/{item_id}/edits", headers=h,
                          json={"edits": {"smiling": 0.5}, "preview": {"channel": 0.5}})
    assert nested.status_code == 400 and nested.json["error"]["field"] == "preview.channel"


@pytest.mark.parametrize(("method", "path", "body", "field"), [
    ("patch", "/api/v1/batches/{batch}", {"name": "x", "title": "y"}, "title"),
    ("post", "/api/v1/batches", {"synthesis": {"count": 1}, "seed": 3}, "seed"),
    ("post", "/api/v1/directions", {"name": "turn", "source": "sefa_00", "gain": 2}, "gain"),
    ("post", "/api/v1/items/{item}/strips", {"direction": "smiling", "step": 3}, "step"),
    ("post", f"/api/v1/models/{MODEL}/evaluations", {"kind": "fid", "n": 2, "size": 1}, "size"),
    ("post", "/api/v1/me/password", {"current_password": "a", "new_password": "long enough",
                                     "confirm": "long enough"}, "confirm"),
])
def test_every_json_body_refuses_an_unknown_key(client, alice, method, path, body, field):
    h = alice["headers"]
    created = upload(client, h, [(image_bytes(), "a.png")]).json
    url = path.format(batch=created["id"], item=created["items"][0]["id"])
    _refused(getattr(client, method)(url, json=body, headers=h), field)


def test_unknown_keys_are_checked_after_the_token(client):
    response = client.post("/api/v1/tokens", json={"label": "ci"})
    assert response.status_code == 401
