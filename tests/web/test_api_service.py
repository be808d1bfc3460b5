"""The service descriptions (attributes, model and costs, OpenAPI), JSON errors for anything under
/api, and the web process's imports (never torch, never the worker)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from web_api_helpers import image_bytes, upload

from shared.codes.attributes import ALIASES, ATTRIBUTES
from web.openapi import document

REPO = __import__("pathlib").Path(__file__).resolve().parents[2]


@pytest.fixture
def database_url(sqlite_url):
    """Nothing here depends on the database back-end."""
    return sqlite_url


def _openapi_path(rule: str) -> str:
    return rule.replace("<", "{").replace(">", "}")


def test_openapi_covers_every_api_route(app, client):
    spec = client.get("/api/v1/openapi.json").json
    assert spec["openapi"].startswith("3.1")
    routes = [r for r in app.url_map.iter_rules() if r.rule.startswith("/api/v1")]
    assert len(routes) >= 18
    for rule in routes:
        path = _openapi_path(rule.rule)
        assert path in spec["paths"], f"{rule.rule} is missing from the OpenAPI document"
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert method.lower() in spec["paths"][path], f"{method} {rule.rule} is not described"
    # And nothing is described that does not exist.
    described = {(p, m.upper()) for p, ops in spec["paths"].items() for m in ops}
    registered = {(_openapi_path(r.rule), m) for r in routes for m in r.methods}
    assert described <= registered
    # Every $ref points at a schema that exists.
    refs = set(__import__("re").findall(r'"#/components/schemas/(\w+)"', str(spec).replace("'", '"')))
    assert refs and refs <= set(spec["components"]["schemas"])
    assert document() == document() and document() is not document()


def test_attributes(client):
    body = client.get("/api/v1/attributes").json
    assert [a["key"] for a in body["attributes"]] == list(ATTRIBUTES) and len(ATTRIBUTES) == 40
    assert body["aliases"] == ALIASES
    smiling = next(a for a in body["attributes"] if a["key"] == "31_Smiling")
    assert smiling["name"] == "Smiling" and smiling["aliases"] == ["smiling"]
    assert body["range"] == [-1.0, 1.0]


def test_current_model_and_costs(client):
    body = client.get("/api/v1/models/current").json
    assert body["name"] == "anycost-ffhq-config-f" and body["resolution"] == 1024
    assert body["pretrained"] is True and body["edits_available"] is True
    assert body["channel_ratios"] == [0.25, 0.5, 0.75, 1.0]
    assert body["resolutions"] == [128, 256, 512, 1024]
    assert body["default_costs"]["final"] == {"channels": 1.0, "resolution": 1024}
    costs = {(c["channels"], c["resolution"]): c for c in body["costs"]}
    assert len(costs) == 16
    # The paper's figures: 144 GMACs full, 28.9 G at half channels and 256 px.
    assert costs[(1.0, 1024)]["macs"] == pytest.approx(144.37e9, rel=2e-3)
    assert costs[(0.5, 256)]["macs"] == pytest.approx(28.9e9, rel=2e-3)
    assert costs[(1.0, 1024)]["relative"] == 1.0 and costs[(0.5, 256)]["relative"] < 0.25


def test_tiny_model_is_marked_not_pretrained(app_factory):
    client = app_factory(model="tiny-random").test_client()
    body = client.get("/api/v1/models/current").json
    assert body["pretrained"] is False and body["resolutions"] == [32, 64]
    assert body["costs"] and all(c["macs"] > 0 for c in body["costs"])


def test_errors_under_api_are_json(client, alice):
    unknown = client.get("/api/v1/nothing-here", headers=alice["headers"])
    assert unknown.status_code == 404 and unknown.json["error"]["code"] == "not_found"
    wrong_method = client.delete("/api/v1/batches", headers=alice["headers"])
    assert wrong_method.status_code == 405 and wrong_method.json["error"]["code"]
    assert "POST" in wrong_method.headers["Allow"]
    item_id = upload(client, alice["headers"], [(image_bytes(), "a.png")]).json["items"][0]["id"]
    for body in (b"\xff\xfe", b"{", b"[]", b'{"edits": 5}', b'{"edits": {"smiling": null}}'):
        garbage = client.patch(f"/api/v1/items/{item_id}/edits", data=body,
                               headers=alice["headers"], content_type="application/json")
        assert garbage.status_code == 400, body
        assert garbage.json["error"]["field"].startswith("edits"), body


@pytest.mark.slow
def test_web_never_imports_torch_or_the_worker(tmp_path):
    code = (
        "import sys\n"
        "from web import create_app\n"
        f"app = create_app({{'database_url': 'sqlite:///{tmp_path}/x.db',"
        " 'model': 'anycost-ffhq-config-f'})\n"
        "app.test_client().get('/api/v1/models/current')\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'worker', 'torchvision'))\n"
        "print(bad)\n"
        "sys.exit(1 if bad else 0)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
