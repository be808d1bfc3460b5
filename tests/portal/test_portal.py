"""The portal through the Flask test client: sign-in, CSRF refusals, per-user isolation, escaped
file names, the pages, and REST API v1 as the pages use it (session cookie, CSRF header): JSON,
images, zip. Real SQLite and Redis."""

from __future__ import annotations

import io
import re
import zipfile

from sqlalchemy import func, select

from shared.items import states
from shared.store.tables import Batch, Item
from tests.portal.conftest import png_bytes
from web.extensions import services

EVIL_NAME = "<script>alert('x')</script><img src=x onerror=alert(1)>.png"


def create_batch(browser, names=("a.png", "b.png"), **fields) -> str:
    data = {"files": [(io.BytesIO(png_bytes(color=(i * 40, 90, 90))), n) for i, n in enumerate(names)],
            "edit_31_Smiling": "40", "preview_channels": "0.5", "preview_res_log2": "5",
            "final_channels": "1", "final_res_log2": "6", "output": "photo", **fields}
    response = browser.post_form("/batches/new", data, content_type="multipart/form-data")
    assert response.status_code == 302, response.get_data(as_text=True)
    return response.headers["Location"].rsplit("/", 1)[1]


def item_ids(app, batch_id: str) -> list[str]:
    with services(app).sessions() as db:
        return list(db.scalars(select(Item.id).where(Item.batch_id == batch_id).order_by(Item.position)))


def finish_item(app, item_id: str, final: bytes) -> None:
    """Take an item through preview and final the way the worker does (same transitions)."""
    svc = services(app)
    with svc.sessions.begin() as db:
        version = db.get(Item, item_id).edit_version
        assert states.start_preview(db, item_id, version, "test-worker")
        blob = svc.blobs.put(db, png_bytes(color=(1, 2, 3)), "image/png")
        db.flush()
        assert states.complete_preview(db, item_id, version, preview_blob_id=blob.id,
                                       timings={"render_preview": 0.012},
                                       model_name="tiny-random")
        assert states.request_final(db, item_id)
        assert states.start_final(db, item_id, "test-worker")
        blob = svc.blobs.put(db, final, "image/png")
        db.flush()
        assert states.complete_final(db, item_id, final_blob_id=blob.id)


# --- signing in -----------------------------------------------------------------------------

def test_pages_need_sign_in(browser):
    for url in ("/batches", "/batches/new", "/batches/abc", "/items/abc"):
        response = browser.get(url)
        assert response.status_code == 302
        assert response.headers["Location"].startswith("/login?next=")
    assert browser.get("/api/v1/batches/abc").status_code == 401


def test_sign_in_wrong_password_then_right(browser):
    response = browser.sign_in("alice", "wrong")
    assert response.status_code == 401
    assert "Wrong username or password" in response.get_data(as_text=True)
    assert browser.sign_in("nobody", "whatever").status_code == 401
    response = browser.sign_in("alice")
    assert response.status_code == 302 and response.headers["Location"] == "/batches"
    page = browser.get("/batches").get_data(as_text=True)
    assert "alice" in page and "My batches" in page


def test_sign_in_goes_back_to_a_local_page_only(browser):
    browser.get("/login")
    response = browser.client.post("/login?next=//evil.example/x", data={
        "username": "alice", "password": "correct horse battery", "csrf_token": browser.token})
    assert response.headers["Location"] == "/batches"
    browser.get("/batches")
    browser.post_form("/logout")
    browser.get("/login")
    response = browser.client.post("/login?next=/batches/new", data={
        "username": "alice", "password": "correct horse battery", "csrf_token": browser.token})
    assert response.headers["Location"] == "/batches/new"


def test_sign_out(browser):
    browser.sign_in("alice")
    browser.get("/batches")
    assert browser.post_form("/logout").status_code == 302
    assert browser.get("/batches").status_code == 302


# --- CSRF -----------------------------------------------------------------------------------

def test_forms_without_a_valid_csrf_token_are_refused(app, browser):
    browser.get("/login")
    assert browser.client.post("/login", data={"username": "alice", "password": "x"}).status_code == 400
    assert browser.client.post("/login", data={
        "username": "alice", "password": "correct horse battery", "csrf_token": "forged"}).status_code == 400
    browser.sign_in("alice")
    browser.get("/batches/new")
    good = browser.token
    for token in (None, "", "forged", good[:-1]):
        data = {"files": [(io.BytesIO(png_bytes()), "a.png")]}
        if token is not None:
            data["csrf_token"] = token
        response = browser.client.post("/batches/new", data=data, content_type="multipart/form-data")
        assert response.status_code == 400
    with services(app).sessions() as db:
        assert db.scalar(select(func.count()).select_from(Batch)) == 0
    batch_id = create_batch(browser)
    assert browser.client.post(f"/batches/{batch_id}/cancel").status_code == 400
    assert browser.client.post(f"/batches/{batch_id}/finalize", data={"csrf_token": "x"}).status_code == 400
    item = item_ids(app, batch_id)[0]
    # Script POSTs need the header; the cookie alone changes nothing.
    response = browser.client.post(f"/api/v1/items/{item}/edits", json={"edits": {"smiling": 0.3}})
    assert response.status_code == 403 and response.get_json()["error"]["code"] == "csrf"
    assert browser.client.post("/logout").status_code == 400
    with services(app).sessions() as db:
        assert db.get(Item, item).edit_version == 0
        assert db.get(Item, item).status == "queued"


# --- isolation ------------------------------------------------------------------------------

def test_one_user_cannot_see_another_users_batches_or_images(app):
    from tests.portal.conftest import Browser

    alice, bob = Browser(app.test_client()), Browser(app.test_client())
    alice.sign_in("alice")
    alice.get("/batches/new")
    batch_id = create_batch(alice, names=("alice-secret.png",))
    item = item_ids(app, batch_id)[0]
    finish_item(app, item, png_bytes(color=(9, 9, 9)))
    assert alice.get(f"/api/v1/items/{item}/final").status_code == 200

    bob.sign_in("bob")
    assert "alice-secret" not in bob.get("/batches").get_data(as_text=True)
    for url in (f"/batches/{batch_id}", f"/api/v1/batches/{batch_id}", f"/items/{item}",
                f"/api/v1/items/{item}", f"/api/v1/batches/{batch_id}/download",
                *(f"/api/v1/items/{item}/{k}" for k in ("original", "preview", "final"))):
        response = bob.get(url)
        assert response.status_code == 404, url
        assert b"alice-secret" not in response.data
    for url in (f"/batches/{batch_id}/finalize", f"/batches/{batch_id}/cancel"):
        assert bob.post_form(url).status_code == 404
    assert bob.post_json(f"/api/v1/items/{item}/edits", {"edits": {}}).status_code == 404
    assert bob.post_json(f"/api/v1/items/{item}/finalize", {}).status_code == 404
    with services(app).sessions() as db:
        assert db.get(Item, item).status == "done"


# --- pages ----------------------------------------------------------------------------------

def test_filename_with_html_is_shown_as_text(app, browser):
    browser.sign_in("alice")
    browser.get("/batches/new")
    batch_id = create_batch(browser, names=(EVIL_NAME,))
    item = item_ids(app, batch_id)[0]
    for url in (f"/batches/{batch_id}", f"/items/{item}"):
        page = browser.get(url).get_data(as_text=True)
        assert "<script>alert" not in page and "<img src=x" not in page
        # The one upload check cleans the name (last path part: "script>..."), then it is escaped.
        assert "script&gt;&lt;img src=x onerror=alert(1)&gt;.png" in page
    data = browser.get(f"/api/v1/batches/{batch_id}").get_json()
    # JSON keeps the cleaned name as it is; scripts set textContent.
    assert data["items"][0]["filename"] == "script><img src=x onerror=alert(1)>.png"


def test_new_batch_page_has_the_controls(browser):
    browser.sign_in("alice")
    page = browser.get("/batches/new").get_data(as_text=True)
    assert '<input type="file" id="files" name="files" multiple' in page
    assert page.count('data-attr="') == 40
    for label in ("Smiling", "Young", "Wavy hair", "Gray hair", "Blonde hair", "Eyeglasses", "Mustache"):
        assert f">{label}</label>" in page
    assert "All 40 attributes" in page
    assert "MACs</span> per image" in page and "rough estimate" in page
    assert 'name="preview_channels"' in page and 'name="final_res_log2"' in page
    assert 'name="auto_finalize"' in page and 'value="crop"' in page
    # Every range input has a label.
    for input_id in re.findall(r'<input type="range" id="([^"]+)"', page):
        assert f'<label for="{input_id}">' in page
    assert "Random weights." in page  # tiny-random is not pretrained


def test_server_checks_the_files_again(app, browser):
    browser.sign_in("alice")
    browser.get("/batches/new")
    response = browser.post_form("/batches/new", {
        "files": [(io.BytesIO(b"<html>not a photo</html>"), "notes.png"),
                  (io.BytesIO(b""), "empty.jpg")]}, content_type="multipart/form-data")
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "notes.png: not a photo we can read" in page
    assert "empty.jpg: the file is empty" in page
    response = browser.post_form("/batches/new", {"edit_31_Smiling": "500"},
                                 content_type="multipart/form-data")
    assert response.status_code == 400
    assert "Choose at least one photo" in response.get_data(as_text=True)
    assert "outside [-1, 1]" in response.get_data(as_text=True)
    with services(app).sessions() as db:
        assert db.scalar(select(func.count()).select_from(Batch)) == 0


def test_new_batch_stores_the_recipe(app, browser):
    browser.sign_in("alice")
    browser.get("/batches/new")
    batch_id = create_batch(browser, edit_15_Eyeglasses="-25", auto_finalize="on", output="crop")
    with services(app).sessions() as db:
        batch = db.get(Batch, batch_id)
        assert batch.recipe["edits"] == {"31_Smiling": 0.4, "15_Eyeglasses": -0.25}
        assert batch.recipe["preview"] == {"channels": 0.5, "resolution": 32}
        assert batch.recipe["final"] == {"channels": 1.0, "resolution": 64}
        assert batch.recipe["auto_finalize"] is True and batch.recipe["output"] == "crop"
        assert [i.filename for i in batch.items] == ["a.png", "b.png"]


def test_batch_page_json_and_list_pagination(app, browser):
    browser.sign_in("alice")
    browser.get("/batches/new")
    ids = [create_batch(browser, names=(f"p{i}.png",)) for i in range(21)]
    first = browser.get("/batches").get_data(as_text=True)
    assert first.count("<progress") == 20 and "Page 1 of 2" in first and 'rel="next"' in first
    second = browser.get("/batches?page=2").get_data(as_text=True)
    assert second.count("<progress") == 1 and ids[0] in second
    data = browser.get(f"/api/v1/batches/{ids[0]}").get_json()
    assert data["status"] == "queued" and data["progress"] == 0
    assert data["counts"]["queued"] == 1
    assert data["items"][0]["original_url"].startswith(
        f"http://localhost/api/v1/items/{data['items'][0]['id']}/original?v=")
    assert data["items"][0]["preview_url"] is None
    original = browser.get(data["items"][0]["original_url"])
    assert original.status_code == 200 and original.mimetype == "image/png"
    assert original.data == png_bytes(color=(0, 90, 90))
    assert "private" in original.headers["Cache-Control"]


def test_item_edits_bump_the_version_and_validate(app, browser):
    browser.sign_in("alice")
    browser.get("/batches/new")
    batch_id = create_batch(browser)
    item = item_ids(app, batch_id)[0]
    page = browser.get(f"/items/{item}").get_data(as_text=True)
    assert 'id="preview-img"' in page and 'id="status-line"' in page and "Reset" in page
    answer = browser.post_json(f"/api/v1/items/{item}/edits",
                               {"edits": {"31_Smiling": 0.7}, "preview": {"channels": 0.25, "resolution": 64}})
    assert answer.status_code == 202 and answer.get_json()["edit_version"] == 1
    answer = browser.post_json(f"/api/v1/items/{item}/edits", {"edits": {"smiling": -0.2}})
    assert answer.get_json()["edit_version"] == 2
    data = browser.get(f"/api/v1/items/{item}").get_json()
    assert data["edit_version"] == 2 and data["status"] == "previewing"
    assert data["edits"] == {"31_Smiling": -0.2}
    assert data["preview_cost"] == {"channels": 0.25, "resolution": 64}
    bad = browser.post_json(f"/api/v1/items/{item}/edits", {"edits": {"not_an_attribute": 0.1}})
    assert bad.status_code == 400 and "not_an_attribute" in bad.get_json()["error"]["message"]
    bad = browser.post_json(f"/api/v1/items/{item}/edits", {"edits": {}, "preview": {"channels": 0.3}})
    assert bad.status_code == 400
    # Only a preview_ready item can be finalized.
    assert browser.post_json(f"/api/v1/items/{item}/finalize", {}).status_code == 409


def test_finalize_cancel_and_zip(app, browser):
    browser.sign_in("alice")
    browser.get("/batches/new")
    batch_id = create_batch(browser, names=("one.png", "two.png", "three.png"))
    ids = item_ids(app, batch_id)
    finals = [png_bytes(color=(10, 20, 30)), png_bytes(color=(40, 50, 60))]
    for item, data in zip(ids[:2], finals, strict=True):
        finish_item(app, item, data)
    browser.get(f"/batches/{batch_id}")
    response = browser.post_form(f"/batches/{batch_id}/cancel")
    assert response.status_code == 302
    assert "Canceled 1 photo" in browser.get(f"/batches/{batch_id}").get_data(as_text=True)
    page = browser.get(f"/batches/{batch_id}").get_data(as_text=True)
    assert f'href="/api/v1/batches/{batch_id}/download"' in page
    response = browser.get(f"/api/v1/batches/{batch_id}/download")
    assert response.status_code == 200 and response.mimetype == "application/zip"
    with zipfile.ZipFile(io.BytesIO(response.data)) as archive:
        assert archive.namelist() == ["one.png", "two.png"]
        assert [archive.read(n) for n in archive.namelist()] == finals
    data = browser.get(f"/api/v1/batches/{batch_id}").get_json()
    assert data["counts"]["done"] == 2 and data["counts"]["canceled"] == 1
    assert sum(1 for i in data["items"] if i["final_url"]) == 2


def test_time_estimates_use_measured_render_times(app, browser):
    browser.sign_in("alice")
    page = browser.get("/batches/new").get_data(as_text=True)
    assert "on a typical GPU (rough estimate)" in page
    batch_id = create_batch(browser, names=("one.png",))
    finish_item(app, item_ids(app, batch_id)[0], png_bytes())
    page = browser.get("/batches/new").get_data(as_text=True)
    assert "at the speed the workers measured (rough estimate)" in page
    # 50% channels at 32 px, measured at 12 ms per image: the same cost is estimated at 12 ms.
    assert re.search(r'id="preview-cost-info"[^>]*>\s*<span class="macs">[^<]+</span> per image,\s*'
                     r'about <span class="eta">12 ms</span>', page)


def test_cost_table_matches_the_papers_numbers():
    from shared.catalog.configs import get_model_config
    from web.portal.costs import cost_table, format_macs

    table = cost_table(get_model_config("anycost-ffhq-config-f"))
    assert format_macs(table["1@1024"]) == "144 GMACs"
    assert format_macs(table["0.5@256"]) == "28.9 GMACs"
    assert len(table) == 4 * 4  # 4 channel ratios x 128..1024 px


def test_zip_without_finals_is_refused(app, browser):
    browser.sign_in("alice")
    browser.get("/batches/new")
    batch_id = create_batch(browser)
    response = browser.get(f"/api/v1/batches/{batch_id}/download")
    assert response.status_code == 409 and response.get_json()["error"]["code"] == "not_ready"


def test_api_accepts_the_portal_session_for_reads(app, browser):
    browser.sign_in("alice")
    browser.get("/batches/new")
    batch_id = create_batch(browser)
    response = browser.get(f"/api/v1/batches/{batch_id}")
    assert response.status_code == 200 and response.get_json()["id"] == batch_id


def test_new_batch_form_takes_faces_and_refine_steps(app, browser):
    browser.sign_in("alice")
    page = browser.get("/batches/new").get_data(as_text=True)
    assert 'name="faces" value="all"' in page and 'id="refine_steps"' in page
    batch_id = create_batch(browser, faces="all", refine_steps="12")
    with services(app).sessions() as db:
        recipe = db.get(Batch, batch_id).recipe
        assert recipe["faces"] == "all" and recipe["refine_steps"] == 12
    bad = browser.post_form("/batches/new", {"files": [(io.BytesIO(png_bytes()), "a.png")],
                                             "refine_steps": "2.5"},
                            content_type="multipart/form-data")
    assert bad.status_code == 400 and "refine_steps" in bad.get_data(as_text=True)


def test_delete_batch_from_its_page(app, browser):
    browser.sign_in("alice")
    browser.get("/batches/new")
    batch_id = create_batch(browser)
    page = browser.get(f"/batches/{batch_id}").get_data(as_text=True)
    assert 'id="delete-batch"' in page
    assert browser.client.post(f"/batches/{batch_id}/delete").status_code == 400  # no CSRF token
    response = browser.post_form(f"/batches/{batch_id}/delete")
    assert response.status_code == 302 and response.headers["Location"] == "/batches"
    with services(app).sessions() as db:
        assert db.get(Batch, batch_id) is None
    assert browser.get(f"/batches/{batch_id}").status_code == 404
