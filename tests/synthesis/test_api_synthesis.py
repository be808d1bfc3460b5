"""Synthesis batches through the REST API: seeds and counts, determinism, the exact render of a
seed's z, truncation to w_avg, style mixing, 400s naming the field, the models list and 409s.
A real worker runtime renders in the test's process (tests/synthesis/conftest.py)."""

from __future__ import annotations

import numpy as np
import torch

from shared.catalog.configs import get_model_config
from shared.recipe.parse import model_default_costs
from tests.synthesis.conftest import image, run_worker
from worker.render.images import to_uint8
from worker.render.synthesis import z_for_seed


def _preview_default(weights_dir: str):
    """tiny-random's measured default preview (its untrained sub-networks: the full network)."""
    return model_default_costs(get_model_config("tiny-random"), weights_dir, 24.0)[0]


def _make(client, headers, body) -> dict:
    response = client.post("/api/v1/batches", json=body, headers=headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def _previews(client, headers, batch_id) -> list[np.ndarray]:
    batch = client.get(f"/api/v1/batches/{batch_id}", headers=headers).get_json()
    assert [i["status"] for i in batch["items"]] == ["preview_ready"] * len(batch["items"])
    return [image(client, i["preview_url"], headers) for i in batch["items"]]


def _own_render(bundle, wplus: torch.Tensor, cost) -> np.ndarray:
    with torch.no_grad():
        out = bundle.generator.synthesis(wplus, channels=cost.channels,
                                         resolution=cost.resolution, noise_mode="const")
    return to_uint8(out.float())[0]


def test_seeds_make_items_that_carry_them_and_render_the_seeds_z(client, headers, worker, app,
                                                                 synth_redis, tiny_bundle, tiny_weights_dir):
    made = _make(client, headers, {"synthesis": {"seeds": [85, 265, 297]}, "truncation": 0.5})
    assert made["seeds"] == [85, 265, 297] and made["model"] == "tiny-random"
    assert [i["seed"] for i in made["items"]] == [85, 265, 297]
    assert run_worker(worker, synth_redis) >= 1
    batch = client.get(f"/api/v1/batches/{made['id']}", headers=headers).get_json()
    item = batch["items"][1]
    assert item["seed"] == 265 and item["synthesis"]["truncation"] == 0.5
    assert item["projection"]["method"] == "synthesis" and item["original_url"] is None
    got = _previews(client, headers, made["id"])
    g, w_avg = tiny_bundle.generator, tiny_bundle.w_avg().reshape(1, -1)
    preview_cost = _preview_default(tiny_weights_dir)
    for seed, picture in zip([85, 265, 297], got, strict=True):
        with torch.no_grad():
            w = g.mapping(z_for_seed(seed))
        wplus = (w_avg + 0.5 * (w - w_avg)).reshape(1, 1, -1).expand(1, g.n_style, -1)
        own = _own_render(tiny_bundle, wplus, preview_cost)
        assert picture.shape == own.shape
        assert np.abs(picture.astype(int) - own.astype(int)).max() <= 1, seed
    assert not np.array_equal(got[0], got[1])


def test_the_same_request_twice_gives_identical_images(client, headers, worker, synth_redis):
    body = {"synthesis": {"seeds": [7, 8]}, "truncation": 0.7,
            "mix": {"seed": 1000, "from_slot": 3}, "recipe": {"edits": {"sefa_00": 0.5}}}
    first, second = _make(client, headers, body), _make(client, headers, body)
    run_worker(worker, synth_redis)
    a, b = _previews(client, headers, first["id"]), _previews(client, headers, second["id"])
    for x, y in zip(a, b, strict=True):
        assert np.array_equal(x, y)


def test_count_picks_seeds_and_reports_them(client, headers, worker, synth_redis):
    made = _make(client, headers, {"synthesis": {"count": 5}})
    seeds = made["seeds"]
    assert len(seeds) == 5 and all(isinstance(s, int) and 0 <= s < 2**32 for s in seeds)
    run_worker(worker, synth_redis)
    again = _make(client, headers, {"synthesis": {"seeds": seeds}})
    run_worker(worker, synth_redis)
    for x, y in zip(_previews(client, headers, made["id"]),
                    _previews(client, headers, again["id"]), strict=True):
        assert np.array_equal(x, y), "a reported seed gives the same image again"


def test_truncation_zero_gives_w_avgs_image_for_every_seed(client, headers, worker, synth_redis,
                                                           tiny_bundle, tiny_weights_dir):
    made = _make(client, headers, {"synthesis": {"seeds": [1, 2, 3]}, "truncation": 0})
    run_worker(worker, synth_redis)
    g = tiny_bundle.generator
    avg = tiny_bundle.w_avg().reshape(1, 1, -1).expand(1, g.n_style, -1)
    own = _own_render(tiny_bundle, avg, _preview_default(tiny_weights_dir))
    for picture in _previews(client, headers, made["id"]):
        assert np.abs(picture.astype(int) - own.astype(int)).max() <= 1


def test_mixing_changes_only_the_slots_it_names(client, headers, worker, synth_redis, app):
    from shared.store.tables import Item, Latent
    from web.extensions import services

    n_style = worker.bundle.generator.n_style
    plain = _make(client, headers, {"synthesis": {"seeds": [297]}})
    mixed = _make(client, headers, {"synthesis": {"seeds": [297]},
                                    "mix": {"seed": 1000, "from_slot": 4}})
    other = _make(client, headers, {"synthesis": {"seeds": [1000]}})
    none = _make(client, headers, {"synthesis": {"seeds": [297]},
                                   "mix": {"seed": 1000, "from_slot": n_style}})
    run_worker(worker, synth_redis)
    codes = {}
    with services(app).sessions() as session:
        for name, made in (("plain", plain), ("mixed", mixed), ("other", other), ("none", none)):
            latent = session.get(Latent, made["items"][0]["id"])
            assert session.get(Item, latent.item_id).synthesis["seed"] in (297, 1000)
            codes[name] = np.frombuffer(latent.data, np.float32).reshape(latent.shape)
    assert np.array_equal(codes["mixed"][:, :4], codes["plain"][:, :4])
    assert np.array_equal(codes["mixed"][:, 4:], codes["other"][:, 4:])
    images = {k: _previews(client, headers, m["id"])[0]
              for k, m in (("plain", plain), ("mixed", mixed), ("none", none))}
    assert np.array_equal(images["none"], images["plain"]), "mixing from the last slot: no change"
    assert not np.array_equal(images["mixed"], images["plain"])


def test_previews_edit_finalize_and_download_as_for_photos(client, headers, worker, synth_redis):
    made = _make(client, headers, {"synthesis": {"seeds": [5, 6]}})
    run_worker(worker, synth_redis)
    item_id = made["items"][0]["id"]
    before = _previews(client, headers, made["id"])[0]
    edited = client.patch(f"/api/v1/items/{item_id}/edits", json={"edits": {"sefa_01": 1.0}},
                          headers=headers)
    assert edited.status_code in (200, 202), edited.get_json()
    run_worker(worker, synth_redis)
    assert not np.array_equal(_previews(client, headers, made["id"])[0], before)
    assert client.post(f"/api/v1/batches/{made['id']}/finalize",
                       headers=headers).status_code in (200, 202)
    run_worker(worker, synth_redis)
    batch = client.get(f"/api/v1/batches/{made['id']}", headers=headers).get_json()
    assert [i["status"] for i in batch["items"]] == ["done", "done"]
    final = image(client, batch["items"][0]["final_url"], headers)
    assert final.shape == (64, 64, 3)
    zipped = client.get(f"/api/v1/batches/{made['id']}/download", headers=headers)
    assert zipped.status_code == 200 and zipped.data[:2] == b"PK"


def _error(client, headers, body) -> tuple[int, dict]:
    response = client.post("/api/v1/batches", json=body, headers=headers)
    return response.status_code, response.get_json()["error"]


def test_bad_requests_are_400s_naming_the_field(client, headers, worker):
    cases = [
        ({"synthesis": {"seeds": [1, -1]}}, "synthesis.seeds[1]"),
        ({"synthesis": {"seeds": [2**32]}}, "synthesis.seeds[0]"),
        ({"synthesis": {"seeds": ["7"]}}, "synthesis.seeds[0]"),
        ({"synthesis": {"seeds": list(range(65))}}, "synthesis.seeds"),
        ({"synthesis": {"seeds": []}}, "synthesis.seeds"),
        ({"synthesis": {"count": 0}}, "synthesis.count"),
        ({"synthesis": {"count": 10_000}}, "synthesis.count"),
        ({"synthesis": {"seeds": [1], "count": 2}}, "synthesis"),
        ({"synthesis": {"seeds": [1]}, "truncation": -0.1}, "truncation"),
        ({"synthesis": {"seeds": [1]}, "truncation": "high"}, "truncation"),
        ({"synthesis": {"seeds": [1]}, "model": "no-such-model"}, "model"),
        ({"synthesis": {"seeds": [1]}, "mix": {"seed": -5}}, "mix.seed"),
        ({"synthesis": {"seeds": [1]}, "mix": {"seed": 5, "from_slot": 99}}, "mix.from_slot"),
        ({"synthesis": {"seeds": [1]}, "recipe": {"edits": {"nonsense": 1}}}, "edits.nonsense"),
        ({"synthesis": {"seeds": [1]}, "colour": 1}, "colour"),
        ({"seeds": [1]}, "seeds"),
    ]
    for body, field in cases:
        status, error = _error(client, headers, body)
        assert status == 400 and error.get("field") == field, (body, error)


def test_models_lists_live_configs_and_a_model_without_a_worker_is_409(client, headers, worker,
                                                                        app):
    from shared.store.tables import WorkerHeartbeat
    from web.extensions import services

    listed = client.get("/api/v1/models", headers=headers).get_json()
    [entry] = listed["models"]
    assert entry["name"] == "tiny-random" and entry["resolution"] == 64 and entry["default"]
    assert entry["pretrained"] is False and entry["costs"] and entry["costs"][0]["macs"] > 0
    assert set(entry["files"]) == {"encoder", "boundary", "discriminator", "directions"}
    assert entry["files"]["directions"] and "sefa_00" in entry["directions"]
    # anycost-car-config-f is in the catalogue, but no worker serves it here
    status, error = _error(client, headers, {"synthesis": {"seeds": [1]},
                                             "model": "anycost-car-config-f"})
    assert status == 409 and error["code"] == "model_unavailable"
    assert "anycost-car-config-f" in error["message"]
    with services(app).sessions.begin() as session:
        session.query(WorkerHeartbeat).delete()
    assert client.get("/api/v1/models", headers=headers).get_json()["models"] == []
    status, error = _error(client, headers, {"synthesis": {"seeds": [1]}})
    assert status == 409 and error["code"] == "model_unavailable"


def _check(doc: dict, name: str, value) -> None:
    import jsonschema_rs  # schemathesis' validator

    schema = {"$ref": f"#/components/schemas/{name}", "components": doc["components"]}
    jsonschema_rs.validator_for(schema).validate(value)


def test_answers_match_the_openapi_document(client, headers, worker, synth_redis):
    doc = client.get("/api/v1/openapi.json").get_json()
    post = doc["paths"]["/api/v1/batches"]["post"]
    assert "application/json" in post["requestBody"]["content"]
    assert "/api/v1/models" in doc["paths"]
    body = {"synthesis": {"seeds": [3]}, "truncation": 0.6, "mix": {"seed": 9, "from_slot": 2}}
    _check(doc, "SynthesisRequest", body)
    made = _make(client, headers, body)
    _check(doc, "SynthesisCreated", made)
    run_worker(worker, synth_redis)
    batch = client.get(f"/api/v1/batches/{made['id']}", headers=headers).get_json()
    _check(doc, "Batch", batch)
    _check(doc, "ServedModels", client.get("/api/v1/models", headers=headers).get_json())


def test_an_idempotency_key_replays_the_first_batch(client, headers, worker):
    body = {"synthesis": {"count": 3}}
    keyed = {**headers, "Idempotency-Key": "gen-1"}
    first = client.post("/api/v1/batches", json=body, headers=keyed)
    again = client.post("/api/v1/batches", json=body, headers=keyed)
    assert first.status_code == 201 and again.status_code == 200
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json()["id"] == first.get_json()["id"]
    assert again.get_json()["seeds"] == first.get_json()["seeds"]
    other = client.post("/api/v1/batches", json={"synthesis": {"count": 4}}, headers=keyed)
    assert other.status_code == 422
