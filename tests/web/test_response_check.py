"""Every answer of the API validates against the OpenAPI document: the document's components come
from the Pydantic models (enums from the code that defines them), the test apps check every JSON
answer (``VALIDATE_RESPONSES``), and the check fails on an answer the document does not describe."""

from __future__ import annotations

import pytest
from web_api_helpers import image_bytes, upload

from shared.codes.errors import ErrorCode, RequestErrorCode
from shared.codes.item_status import BATCH_STATUSES, ItemStatus
from shared.items.quality import PROJECTION_METHODS
from shared.recipe.schema import CHANNEL_RATIOS, FACE_MODES, OUTPUTS, Recipe
from shared.store.tables import Batch, Item
from web.extensions import services
from web.openapi_components import REF_TEMPLATE, OpenApiJsonSchema
from web.response_check import ResponseMismatch, check

PNG = image_bytes("PNG")


@pytest.fixture
def database_url(sqlite_url):
    return sqlite_url


def _components(client) -> dict:
    return client.get("/api/v1/openapi.json").json["components"]["schemas"]


def test_the_recipe_component_is_the_models_schema(client):
    components = _components(client)
    generated = Recipe.model_json_schema(ref_template=REF_TEMPLATE,
                                         schema_generator=OpenApiJsonSchema)
    assert {k: v for k, v in generated.items() if k != "$defs"} == components["Recipe"]
    assert generated["$defs"]["Cost"] == components["Cost"]
    assert generated["$defs"]["Edits"] == components["Edits"]
    assert "keep_format" in components["Recipe"]["properties"]


def test_enums_are_the_codes(client):
    components = _components(client)
    recipe = components["Recipe"]["properties"]
    assert recipe["output"]["enum"] == list(OUTPUTS)
    assert recipe["faces"]["enum"] == list(FACE_MODES)
    assert components["Cost"]["properties"]["channels"]["enum"] == list(CHANNEL_RATIOS)
    assert components["ItemStatus"]["enum"] == [s.value for s in ItemStatus]
    assert components["Batch"]["properties"]["status"]["enum"] == list(BATCH_STATUSES)
    assert components["Projection"]["properties"]["method"]["enum"] == list(PROJECTION_METHODS)
    codes = {c.value for c in ErrorCode} | {c.value for c in RequestErrorCode}
    assert set(components["ErrorDetail"]["properties"]["code"]["enum"]) == codes


def test_the_test_apps_check_every_answer(app):
    assert app.config["VALIDATE_RESPONSES"] is True


def _a_batch(client, alice) -> dict:
    created = upload(client, alice["headers"], [(PNG, "a.png")]).json
    return client.get(created["url"], headers=alice["headers"]).json


def test_a_real_batch_passes_and_a_broken_one_fails(client, alice):
    batch = _a_batch(client, alice)
    rule, status = "/api/v1/batches/<batch_id>", 200
    check(rule, "GET", status, batch)
    no_status = {**batch, "items": [{k: v for k, v in batch["items"][0].items() if k != "status"}]}
    with pytest.raises(ResponseMismatch, match="status"):
        check(rule, "GET", status, no_status)
    with pytest.raises(ResponseMismatch, match="sparkling"):
        check(rule, "GET", status, {**batch, "status": "sparkling"})
    with pytest.raises(ResponseMismatch, match="not list"):
        check(rule, "GET", 299, batch)
    with pytest.raises(ResponseMismatch):
        check(rule, "GET", 404, {"error": {"code": "no_such_code", "message": "x"}})


def test_an_undocumented_answer_fails_through_the_app(app_factory):
    app = app_factory()
    app.add_url_rule("/api/v1/undocumented", "undocumented", lambda: {"hello": "world"})
    with pytest.raises(ResponseMismatch, match="undocumented"):
        app.test_client().get("/api/v1/undocumented")
    app.config["VALIDATE_RESPONSES"] = False
    assert app.test_client().get("/api/v1/undocumented").json == {"hello": "world"}


def test_names_faces_and_face_edits_are_answered(app, client, alice):
    batch = _a_batch(client, alice)
    assert batch["name"] is None
    assert batch["items"][0]["faces"] is None and batch["items"][0]["face_edits"] == {}
    with services(app).sessions.begin() as session:
        session.get(Batch, batch["id"]).name = "holiday"
        item = session.get(Item, batch["items"][0]["id"])
        item.faces = [{"box": [0.1, 0.2, 0.5, 0.6]}, {"box": [0.6, 0.1, 0.9, 0.5]}]
        item.face_edits = {"1": {"31_Smiling": 0.5}}
    again = client.get(f"/api/v1/batches/{batch['id']}", headers=alice["headers"]).json
    assert again["name"] == "holiday"
    assert again["items"][0]["faces"][1] == {"box": [0.6, 0.1, 0.9, 0.5]}
    assert again["items"][0]["face_edits"] == {"1": {"31_Smiling": 0.5}}
    page = client.get("/api/v1/batches", headers=alice["headers"]).json
    assert page["batches"][0]["name"] == "holiday"
