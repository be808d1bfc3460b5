"""Measured preview costs on the web side (torch-free): the API and the editor's cost control
show every cost's measured PSNR and mark those below ANYCOST_PREVIEW_MIN_PSNR untrained; the
default preview follows the measurements; an item whose recipe picks an untrained cost says so.

The sidecar is written here in the layout ``worker.anycost.preview_consistency`` writes (its
own tests measure real generators); this checks what the web side makes of it."""

from __future__ import annotations

import json

import pytest
from web_api_helpers import image_bytes, upload

from shared.recipe.parse import CHANNEL_RATIOS, allowed_resolutions
from tests.web.conftest import add_user
from web.extensions import services
from web.portal.costs import cost_options

#: Made-up measurements of a 1024 px model: wider and larger previews agree better.
PSNR = {(c, r): round(12 + 14 * c + 2 * (r // 256), 2)
        for c in CHANNEL_RATIOS for r in allowed_resolutions(1024)}
PSNR[(1.0, 1024)] = 100.0


@pytest.fixture
def measured(tmp_path):
    (tmp_path / "consistency_anycost-ffhq-config-f.json").write_text(json.dumps({
        "version": 1, "config": "anycost-ffhq-config-f", "resolution": 1024, "n": 8, "seed": 0,
        "lpips": None, "costs": [{"channels": c, "resolution": r, "psnr": p, "lpips": None}
                                 for (c, r), p in PSNR.items()]}))
    return str(tmp_path)


def _cheapest_meeting(costs: list[dict], bar: float) -> dict:
    ok = [c for c in costs if c["psnr"] >= bar and c["resolution"] >= 256]
    return min(ok, key=lambda c: c["macs"])


@pytest.mark.parametrize("bar", [24.0, 30.0])
def test_current_model_shows_measured_costs_and_default(app_factory, measured, bar):
    client = app_factory(weights_dir=measured, preview_min_psnr=bar).test_client()
    body = client.get("/api/v1/models/current").json
    assert body["preview_min_psnr"] == bar
    for cost in body["costs"]:
        assert cost["psnr"] == PSNR[(cost["channels"], cost["resolution"])]
        assert cost["untrained"] is (cost["psnr"] < bar)
    best = _cheapest_meeting(body["costs"], bar)
    assert body["default_costs"]["preview"] == {"channels": best["channels"],
                                                "resolution": best["resolution"]}
    assert body["default_costs"]["preview"] != {"channels": 0.5, "resolution": 256}


def test_unmeasured_model_keeps_the_old_default(client):
    body = client.get("/api/v1/models/current").json
    assert body["default_costs"]["preview"] == {"channels": 0.5, "resolution": 256}
    assert all(c["psnr"] is None and c["untrained"] is None for c in body["costs"])


def test_recipe_defaults_and_untrained_flag_on_items(app_factory, measured):
    app = app_factory(weights_dir=measured)
    client = app.test_client()
    _, token = add_user(app, "carol")
    headers = {"Authorization": f"Bearer {token}"}
    default = client.get("/api/v1/models/current").json["default_costs"]["preview"]
    plain = upload(client, headers, [(image_bytes(), "a.png")], {"edits": {}})
    assert plain.status_code == 201, plain.json
    item = plain.json["items"][0]
    got = client.get(f"/api/v1/items/{item['id']}", headers=headers).json
    assert got["preview_cost"] == default and got["preview_untrained"] is False
    cheap = upload(client, headers, [(image_bytes(), "b.png")],
                   {"preview": {"channels": 0.25, "resolution": 256}})
    assert cheap.status_code == 201, cheap.json  # an untrained cost still runs ...
    got = client.get(f"/api/v1/items/{cheap.json['items'][0]['id']}", headers=headers).json
    assert got["preview_untrained"] is True  # ... and the item says so


def test_portal_cost_control_data(app_factory, measured):
    app = app_factory(weights_dir=measured)
    with app.app_context():
        svc = services(app)
        options = cost_options(svc.model, None, svc.settings)
    assert options["preview_min_psnr"] == 24.0
    assert options["consistency"]["0.25@256"] == {"psnr": PSNR[(0.25, 256)], "lpips": None,
                                                  "untrained": True}
    assert options["consistency"]["1@1024"]["untrained"] is False
    assert options["default_preview"] != {"channels": 0.5, "resolution": 256}
