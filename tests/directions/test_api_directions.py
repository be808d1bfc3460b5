"""Directions through the REST API with the real worker code in-process on the same database:
the generator's directions listed and used in recipes, a direction learned from a user's items
(and only usable by that user), and the explorer's strip rendered by the worker's strip task."""

from __future__ import annotations

import io
import json

import numpy as np
import torch
from PIL import Image
from sqlalchemy import select

from shared.recipe.parse import Cost
from shared.store.tables import Item, UserDirection
from tests.directions.conftest import RECIPE, items_with_codes, mapped_codes
from web.extensions import services
from worker.render import pipeline, stages, strips
from worker.render.images import to_uint8

PREVIEW = Cost(**RECIPE["preview"])


def _upload(client, headers, recipe):
    photo = io.BytesIO()
    Image.new("RGB", (48, 48), (120, 90, 60)).save(photo, format="PNG")
    data = {"files": [(io.BytesIO(photo.getvalue()), "a.png")], "recipe": json.dumps(recipe)}
    return client.post("/api/v1/batches", data=data, headers=headers,
                       content_type="multipart/form-data")


def _png(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def test_attributes_list_the_generator_directions_with_their_slots(client):
    body = client.get("/api/v1/attributes").json
    assert len(body["attributes"]) == 40  # the built-ins are still there
    keys = [d["key"] for d in body["directions"]]
    assert keys == [f"sefa_{i:02d}" for i in range(10)] + [f"pca_{i:02d}" for i in range(10)]
    for d in body["directions"]:
        assert d["slots"] == list(range(10)) and d["gain"] > 0
        assert d["method"] == d["key"].split("_")[0]
    sefa = [d["eigenvalue"] for d in body["directions"] if d["method"] == "sefa"]
    assert sefa == sorted(sefa, reverse=True)


def test_recipes_accept_generator_directions_and_the_worker_applies_them(
        app, client, alice, runtime, tiny_bundle):
    bad = _upload(client, alice["headers"], {**RECIPE, "edits": {"sefa_99": 0.5}})
    assert bad.status_code == 400 and bad.json["error"]["field"] == "edits.sefa_99"
    assert "GET /api/v1/attributes" in bad.json["error"]["message"]

    [item_id] = items_with_codes(app, alice["id"], mapped_codes(tiny_bundle, 1, seed=5))
    edits = {"sefa_00": 0.8, "PCA_01": -0.5, "smiling": 0.3}
    answer = client.patch(f"/api/v1/items/{item_id}/edits", json={"edits": edits},
                          headers=alice["headers"])
    assert answer.status_code == 202, answer.json
    report = pipeline.run_previews(runtime, [(item_id, answer.json["edit_version"])])
    assert report.completed == [item_id], report.failed
    item = client.get(f"/api/v1/items/{item_id}", headers=alice["headers"]).json
    assert item["edits"] == {"sefa_00": 0.8, "pca_01": -0.5, "31_Smiling": 0.3}
    preview = _png(client.get(item["preview_url"], headers=alice["headers"]).data)
    projected = _png(client.get(item["projected_url"], headers=alice["headers"]).data)
    assert preview.shape == (32, 32, 3) and not np.array_equal(preview, projected)
    # The preview is exactly the slider formula along the installed directions, rendered.
    code = mapped_codes(tiny_bundle, 1, seed=5)
    with torch.no_grad():
        edited = stages.edit(tiny_bundle, code, item["edits"])
        expected = to_uint8(stages.render(tiny_bundle, edited, PREVIEW))[0]
    assert np.abs(preview.astype(int) - expected.astype(int)).max() <= 1


def test_a_learned_direction_separates_its_examples_and_edits_by_name(
        app, client, alice, bob, runtime, tiny_bundle):
    rng = torch.Generator().manual_seed(11)
    hidden = torch.randn(512, generator=rng)
    hidden /= hidden.norm()
    codes = mapped_codes(tiny_bundle, 12, seed=2)
    codes[:6] += 1.0 * hidden  # six items "have" the attribute
    codes[6:] -= 1.0 * hidden
    ids = items_with_codes(app, alice["id"], codes)
    pos, neg = ids[:6], ids[6:]

    few = client.post("/api/v1/directions", json={"name": "freckles", "positive": pos[:4],
                                                  "negative": neg}, headers=alice["headers"])
    assert few.status_code == 400 and "at least 5" in few.json["error"]["message"]
    builtin = client.post("/api/v1/directions", json={"name": "smiling", "positive": pos,
                                                      "negative": neg}, headers=alice["headers"])
    assert builtin.status_code == 400 and builtin.json["error"]["code"] == "invalid_name"
    stolen = client.post("/api/v1/directions", json={"name": "freckles", "positive": pos,
                                                     "negative": neg}, headers=bob["headers"])
    assert stolen.status_code == 400 and "not yours" in stolen.json["error"]["message"]

    made = client.post("/api/v1/directions", json={"name": "freckles", "positive": pos,
                                                   "negative": neg}, headers=alice["headers"])
    assert made.status_code == 201, made.json
    body = made.json
    assert body["key"] == "user:freckles" and body["method"] == "learned"
    assert body["accuracy"] == 1.0 and body["margin"] > 0 and body["slots"] == list(range(10))
    again = client.post("/api/v1/directions", json={"name": "freckles", "positive": pos,
                                                    "negative": neg}, headers=alice["headers"])
    assert again.status_code == 409

    # The stored unit vector separates the examples' W (mean over the edit slots).
    with services(app).sessions() as session:
        row = session.scalar(select(UserDirection).where(UserDirection.name == "freckles"))
        d = torch.tensor(row.vector, dtype=torch.float32)
    assert abs(float(d.norm()) - 1) < 1e-5
    proj = codes[:, :10].mean(1) @ d
    assert float(proj[:6].min()) > float(proj[6:].max())

    listing = client.get("/api/v1/directions", headers=alice["headers"]).json
    assert [u["key"] for u in listing["user"]] == ["user:freckles"]
    assert client.get("/api/v1/directions", headers=bob["headers"]).json["user"] == []

    # Alice edits by name; the worker applies it. Bob cannot name it.
    target = neg[0]
    answer = client.patch(f"/api/v1/items/{target}/edits", json={"edits": {"freckles": 1.0}},
                          headers=alice["headers"])
    assert answer.status_code == 202, answer.json
    [bob_item] = items_with_codes(app, bob["id"], codes[:1])
    refused = client.patch(f"/api/v1/items/{bob_item}/edits", json={"edits": {"freckles": 1.0}},
                           headers=bob["headers"])
    assert refused.status_code == 400 and refused.json["error"]["field"] == "edits.freckles"
    report = pipeline.run_previews(runtime, [(target, answer.json["edit_version"])])
    assert report.completed == [target], report.failed
    with services(app).sessions() as session:
        item = session.get(Item, target)
        assert item.edits == {"user:freckles": 1.0} and item.status == "preview_ready"
        preview, _ = services(app).blobs.get(session, item.preview_blob_id)
    with torch.no_grad():
        moved = codes[6:7].clone()
        moved[:, :10] += row.gain * d
        expected = to_uint8(stages.render(tiny_bundle, moved, PREVIEW))[0]
    assert np.abs(_png(preview).astype(int) - expected.astype(int)).max() <= 1

    assert client.delete("/api/v1/directions/freckles", headers=bob["headers"]).status_code == 404
    assert client.delete("/api/v1/directions/freckles", headers=alice["headers"]).status_code == 204
    gone = client.patch(f"/api/v1/items/{target}/edits", json={"edits": {"freckles": 1.0}},
                        headers=alice["headers"])
    assert gone.status_code == 400


def test_a_generator_direction_saved_under_a_name(client, alice):
    saved = client.post("/api/v1/directions", json={"name": "head_turn", "source": "sefa_01"},
                        headers=alice["headers"])
    assert saved.status_code == 201 and saved.json["source"] == "sefa_01"
    assert saved.json["method"] == "saved"
    unknown = client.post("/api/v1/directions", json={"name": "x", "source": "sefa_77"},
                          headers=alice["headers"])
    assert unknown.status_code == 400 and unknown.json["error"]["code"] == "unknown_direction"
    empty = client.post("/api/v1/directions", json={"name": "x"}, headers=alice["headers"])
    assert empty.status_code == 400


def test_the_explorer_strip_renders_frames_along_a_direction(app, client, alice, bob, runtime,
                                                             tiny_bundle):
    [item_id] = items_with_codes(app, alice["id"], mapped_codes(tiny_bundle, 1, seed=9))
    url = f"/api/v1/items/{item_id}/strips"
    assert client.post(url, json={"direction": "sefa_00", "steps": 2},
                       headers=alice["headers"]).status_code == 400
    assert client.post(url, json={"direction": "nonsense"},
                       headers=alice["headers"]).status_code == 400
    assert client.post(url, json={"direction": "sefa_00"},
                       headers=bob["headers"]).status_code == 404
    created = client.post(url, json={"direction": "sefa_00", "steps": 5}, headers=alice["headers"])
    assert created.status_code == 202, created.json
    strip = created.json
    assert strip["status"] == "queued" and strip["values"] == [-1.0, -0.5, 0.0, 0.5, 1.0]
    assert strip["image_url"] is None
    assert client.get(f"/api/v1/strips/{strip['id']}", headers=bob["headers"]).status_code == 404
    assert client.get(f"/api/v1/strips/{strip['id']}/image",
                      headers=alice["headers"]).status_code == 404

    assert strips.run_strip(runtime, strip["id"]) == "done"  # the worker task's body
    assert strips.run_strip(runtime, strip["id"]) == "skipped"  # a duplicate delivery
    done = client.get(f"/api/v1/strips/{strip['id']}", headers=alice["headers"]).json
    assert done["status"] == "done" and done["image_url"]
    image = client.get(done["image_url"], headers=alice["headers"])
    assert image.status_code == 200 and image.mimetype == "image/png"
    frames = _png(image.data)
    assert frames.shape == (32, 5 * 32, 3)
    tiles = [frames[:, i * 32:(i + 1) * 32] for i in range(5)]
    assert all(not np.array_equal(tiles[i], tiles[i + 1]) for i in range(4))
    code = mapped_codes(tiny_bundle, 1, seed=9)
    with torch.no_grad():
        unedited = to_uint8(stages.render(tiny_bundle, code, PREVIEW))[0]
    assert np.abs(tiles[2].astype(int) - unedited.astype(int)).max() <= 1  # value 0: the item


def test_a_strip_of_an_item_without_a_code_is_refused(app, client, alice):
    created = _upload(client, alice["headers"], RECIPE)
    assert created.status_code == 201
    item_id = created.json["items"][0]["id"]
    answer = client.post(f"/api/v1/items/{item_id}/strips", json={"direction": "pca_00"},
                         headers=alice["headers"])
    assert answer.status_code == 409 and answer.json["error"]["code"] == "not_ready"
