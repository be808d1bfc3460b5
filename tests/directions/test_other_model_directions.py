"""Directions of a batch on another served model than the service's default (the car config
beside tiny-random): learned from that model's items and stored for it, listed and deleted under
``?model=``, usable in its items' edits and strips, and kept apart from the default model's (the
same name may exist for both; examples of two models are refused)."""

from __future__ import annotations

import numpy as np
import torch

from shared.commands.synthesis import create_synthesis_batch, parse_request
from shared.store.tables import Item, Latent
from tests.directions.conftest import items_with_codes, mapped_codes
from tests.support.workers import register_live_worker
from web.extensions import services

CAR = "anycost-car-config-f"  # 512 px: 16 W+ slots


def _separable(n: int, n_style: int, seed: int) -> np.ndarray:
    """``n`` codes [n, n_style, 512], the first half on one side of a hidden direction."""
    rng = np.random.default_rng(seed)
    hidden = rng.standard_normal(512)
    hidden /= np.linalg.norm(hidden)
    codes = rng.standard_normal((n, n_style, 512)).astype(np.float32)
    codes[: n // 2] += 2 * hidden.astype(np.float32)
    codes[n // 2:] -= 2 * hidden.astype(np.float32)
    return codes


def _car_items(app, owner_id: int, codes: np.ndarray) -> list[str]:
    """A batch of the car model (from seeds) whose items have ``codes`` stored, as its worker
    would store them."""
    svc = services(app)
    register_live_worker(svc.sessions, CAR, name="car@tests:0")
    with svc.sessions() as session:
        request = parse_request({"synthesis": {"seeds": list(range(len(codes)))}, "model": CAR},
                                svc.settings, session, owner_id)
    batch_id = create_synthesis_batch(svc.batches, owner_id, request)
    with svc.sessions.begin() as session:
        items = session.query(Item).filter(Item.batch_id == batch_id).order_by(Item.position).all()
        for item, code in zip(items, codes, strict=True):
            arr = np.ascontiguousarray(code[None])
            session.add(Latent(item_id=item.id, shape=list(arr.shape), data=arr.tobytes(),
                               model_name=CAR, meta={"faces": [{}]}))
        return [item.id for item in items]


def test_a_direction_learned_from_another_models_items_belongs_to_that_model(
        app, client, alice, tiny_bundle):
    headers = alice["headers"]
    cars = _car_items(app, alice["id"], _separable(10, 16, seed=4))
    body = {"name": "shiny", "positive": cars[:5], "negative": cars[5:]}

    # Examples of two models, or a model the examples are not of: refused, by name.
    faces = items_with_codes(app, alice["id"], mapped_codes(tiny_bundle, 5, seed=8))
    mixed = client.post("/api/v1/directions", json={**body, "negative": faces}, headers=headers)
    assert mixed.status_code == 400 and mixed.json["error"]["code"] == "invalid_examples"
    assert CAR in mixed.json["error"]["message"] and "tiny-random" in mixed.json["error"]["message"]
    other = client.post("/api/v1/directions", json={**body, "model": "tiny-random"}, headers=headers)
    assert other.status_code == 400 and "not tiny-random" in other.json["error"]["message"]
    unknown = client.post("/api/v1/directions", json={**body, "model": "no-such-model"},
                          headers=headers)
    assert unknown.status_code == 400 and unknown.json["error"]["field"] == "model"

    made = client.post("/api/v1/directions", json=body, headers=headers)
    assert made.status_code == 201, made.json
    assert made.json["model"] == CAR and made.json["accuracy"] == 1.0

    # Listed under its model, not the service's.
    listed = client.get(f"/api/v1/directions?model={CAR}", headers=headers).json
    assert listed["model"] == CAR and [u["key"] for u in listed["user"]] == ["user:shiny"]
    default = client.get("/api/v1/directions", headers=headers).json
    assert default["model"] == "tiny-random" and default["user"] == []
    bad = client.get("/api/v1/directions?model=no-such-model", headers=headers)
    assert bad.status_code == 400 and bad.json["error"]["field"] == "model"

    # A slider of the car's items: their edits and strips name it.
    edited = client.patch(f"/api/v1/items/{cars[0]}/edits", json={"edits": {"shiny": 0.5}},
                          headers=headers)
    assert edited.status_code == 202, edited.json
    strip = client.post(f"/api/v1/items/{cars[0]}/strips", json={"direction": "shiny"},
                        headers=headers)
    assert strip.status_code == 202 and strip.json["direction"] == "user:shiny", strip.json
    face_edit = client.patch(f"/api/v1/items/{faces[0]}/edits", json={"edits": {"shiny": 0.5}},
                             headers=headers)
    assert face_edit.status_code == 400  # not a direction of the face model

    # The same name for the face model is another direction; deleting one leaves the other.
    codes = mapped_codes(tiny_bundle, 10, seed=6)
    codes[:5] += 0.5 * torch.ones(512) / 512 ** 0.5
    more = items_with_codes(app, alice["id"], codes)
    face_dir = client.post("/api/v1/directions", json={"name": "shiny", "positive": more[:5],
                                                       "negative": more[5:]}, headers=headers)
    assert face_dir.status_code == 201 and face_dir.json["model"] == "tiny-random", face_dir.json
    assert client.delete(f"/api/v1/directions/shiny?model={CAR}", headers=headers).status_code == 204
    assert client.get(f"/api/v1/directions?model={CAR}", headers=headers).json["user"] == []
    assert [u["key"] for u in client.get("/api/v1/directions", headers=headers).json["user"]] == [
        "user:shiny"]
