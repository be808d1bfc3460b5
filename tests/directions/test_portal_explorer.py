"""The portal's direction explorer: the page lists the directions and drives the REST API with
the signed-in session (CSRF header), like its script does; the worker renders the strip."""

from __future__ import annotations

import re

from tests.directions.conftest import items_with_codes, mapped_codes
from web.auth import create_user
from web.extensions import services
from worker.render import strips

PASSWORD = "correct horse battery"


def _csrf(html: str) -> str:
    return re.search(r'<meta name="csrf-token" content="([^"]+)"', html).group(1)


def test_explorer_page_renders_a_strip_and_names_a_direction(app, runtime, tiny_bundle):
    with services(app).sessions.begin() as session:
        user_id = create_user(session, "carol", PASSWORD).id
    [item_id] = items_with_codes(app, user_id, mapped_codes(tiny_bundle, 1, seed=4))
    client = app.test_client()
    token = _csrf(client.get("/login").get_data(as_text=True))
    signed = client.post("/login", data={"username": "carol", "password": PASSWORD,
                                         "csrf_token": token})
    assert signed.status_code == 302

    page = client.get(f"/items/{item_id}/explore")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'value="sefa_00"' in html and 'value="pca_09"' in html and 'value="smiling"' in html
    assert "explore.js" in html and "explore-not-ready" not in html
    assert f'data-strips-url="/api/v1/items/{item_id}/strips"' in html
    assert f"/items/{item_id}/explore" in client.get(f"/items/{item_id}").get_data(as_text=True)
    csrf = _csrf(html)

    no_csrf = client.post(f"/api/v1/items/{item_id}/strips", json={"direction": "pca_00"})
    assert no_csrf.status_code in (401, 403)
    created = client.post(f"/api/v1/items/{item_id}/strips", json={"direction": "pca_00"},
                          headers={"X-CSRF-Token": csrf})
    assert created.status_code == 202, created.json
    assert strips.run_strip(runtime, created.json["id"]) == "done"
    done = client.get(created.json["url"]).json
    assert done["status"] == "done" and len(done["values"]) == 7
    assert client.get(done["image_url"]).mimetype == "image/png"

    saved = client.post("/api/v1/directions", json={"name": "pose", "source": "pca_00"},
                        headers={"X-CSRF-Token": csrf})
    assert saved.status_code == 201
    again = client.get(f"/items/{item_id}/explore").get_data(as_text=True)
    assert 'value="user:pose"' in again
    # The item editor has sliders for them, and its edits endpoint takes them.
    editor = client.get(f"/items/{item_id}").get_data(as_text=True)
    assert 'data-attr="user:pose"' in editor and 'data-attr="sefa_00"' in editor
    edited = client.post(f"/api/v1/items/{item_id}/edits", json={"edits": {"user:pose": 0.5,
                                                                        "sefa_02": -0.2}},
                         headers={"X-CSRF-Token": csrf})
    assert edited.status_code == 202, edited.json
    assert client.get("/items/0123456789abcdef0123456789abcdef/explore").status_code == 404
