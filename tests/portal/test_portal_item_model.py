"""The item editor describes the item's own model, not the service's: a car item (a config with
no attribute boundaries, 512 px) gets no face-attribute sliders and the car's costs, while a face
item of the service's model keeps its attribute sliders."""

from __future__ import annotations

import html
import json
import re

from shared.commands.synthesis import create_synthesis_batch, parse_request
from shared.store.tables import Item, User
from web.extensions import services
from worker.process.heartbeat import Heartbeat

CAR = "anycost-car-config-f"


def _item_of_new_batch(app, username: str, body: dict) -> str:
    svc = services(app)
    with svc.sessions() as session:
        owner = session.query(User.id).filter(User.username == username).scalar()
        request = parse_request(body, svc.settings, session, owner)
    batch_id = create_synthesis_batch(svc.batches, owner, request)
    with svc.sessions() as session:
        return session.query(Item.id).filter(Item.batch_id == batch_id).scalar()


def test_editor_of_a_car_item_shows_the_cars_costs_and_no_face_attributes(app, browser):
    svc = services(app)
    for name, model in (("tiny-worker:1", "tiny-random"), ("car-worker:1", CAR)):
        Heartbeat(svc.sessions, name, interval=60, model_name=model).beat()
    car = _item_of_new_batch(app, "alice", {"synthesis": {"seeds": [3]}, "model": CAR})
    face = _item_of_new_batch(app, "alice", {"synthesis": {"seeds": [3]}})
    browser.sign_in("alice")

    car_page = browser.get(f"/items/{car}").get_data(as_text=True)
    assert 'data-attr="31_Smiling"' not in car_page
    assert _groups(car_page) == ["pose", "learned", "cost"]  # no attribute groups for a car
    assert _costs(car_page)["resolutions"] == [128, 256, 512]

    face_page = browser.get(f"/items/{face}").get_data(as_text=True)
    assert 'data-attr="31_Smiling"' in face_page
    assert _groups(face_page) == ["expression", "age", "hair", "accessories", "pose", "face",
                                  "learned", "cost"]
    # The face model's own costs (the page's data-costs attribute, parsed: the rest of the tag
    # holds random item ids, where any digits may turn up).
    assert max(_costs(face_page)["resolutions"]) < 512


def _costs(page: str) -> dict:
    """The editor's ``data-costs`` attribute, decoded."""
    match = re.search(r'data-costs="([^"]*)"', page)
    assert match, "no data-costs on the page"
    return json.loads(html.unescape(match.group(1)))


def _groups(page: str) -> list[str]:
    return re.findall(r'<details class="group" id="group-([a-z]+)"', page)
