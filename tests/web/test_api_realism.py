"""Quality in the REST API: each item's realism (logit and 0..1 score), projection and
consistency, and ``GET /api/v1/batches/<id>?sort=realism`` (documented in the OpenAPI text)."""

from __future__ import annotations

import math

from sqlalchemy import update
from web_api_helpers import image_bytes, upload

from shared.items.quality import PROJECTION_METHODS
from shared.store.tables import Item
from web.extensions import services


def _set(app, item_id: str, **values) -> None:
    with services(app).sessions.begin() as session:
        session.execute(update(Item).where(Item.id == item_id).values(**values))


def test_items_carry_quality_and_sort_by_realism(app, client, alice):
    files = [(image_bytes("PNG", color=(10 * i, 80, 90)), f"{i}.png") for i in range(4)]
    created = upload(client, alice["headers"], files).json
    ids = [i["id"] for i in created["items"]]
    _set(app, ids[0], preview_realism=-1.5)
    _set(app, ids[1], preview_realism=0.25, final_realism=2.0,
         projection={"method": "optimisation", "error": 0.12, "steps": 100, "resolution": 256},
         consistency={"psnr": 31.5, "lpips": None, "resolution": 256})
    _set(app, ids[3], preview_realism=0.5)
    url = f"/api/v1/batches/{created['id']}"

    batch = client.get(url, headers=alice["headers"]).json
    assert [i["id"] for i in batch["items"]] == ids  # upload order by default
    first, second = batch["items"][0], batch["items"][1]
    assert first["realism"]["final"] is None
    assert first["realism"]["preview"] == {
        "logit": -1.5, "score": round(1 / (1 + math.exp(1.5)), 4)}
    assert second["realism"]["final"]["score"] == round(1 / (1 + math.exp(-2.0)), 4)
    assert second["projection"]["method"] == "optimisation"
    assert second["consistency"] == {"psnr": 31.5, "lpips": None, "resolution": 256}
    assert batch["items"][2]["realism"] == {"preview": None, "final": None}
    assert batch["items"][2]["projection"] is None and batch["items"][2]["consistency"] is None

    ranked = client.get(f"{url}?sort=realism", headers=alice["headers"]).json["items"]
    # The final's score counts once there is one; unscored items last.
    assert [i["id"] for i in ranked] == [ids[1], ids[3], ids[0], ids[2]]
    worst = client.get(f"{url}?sort=realism&order=asc", headers=alice["headers"]).json["items"]
    assert [i["id"] for i in worst] == [ids[0], ids[3], ids[1], ids[2]]

    for bad in ("sort=colour", "sort=realism&order=up"):
        r = client.get(f"{url}?{bad}", headers=alice["headers"])
        assert r.status_code == 400
        assert r.json["error"]["code"] == "invalid_parameter"
        assert r.json["error"]["field"] == bad.split("&")[-1].split("=")[0]


def test_openapi_documents_quality_and_sort(client):
    spec = client.get("/api/v1/openapi.json").json
    params = spec["paths"]["/api/v1/batches/{batch_id}"]["get"]["parameters"]
    sort = next(p for p in params if p["name"] == "sort")
    assert set(sort["schema"]["enum"]) == {"position", "realism"}
    item = spec["components"]["schemas"]["Item"]["properties"]
    assert {"realism", "projection", "consistency"} <= set(item)
    methods = spec["components"]["schemas"]["Projection"]["properties"]["method"]
    assert methods["enum"] == list(PROJECTION_METHODS)
