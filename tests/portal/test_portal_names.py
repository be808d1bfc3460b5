"""Batch names and "Keep original format" in the portal (Flask test client, real SQLite and
Redis): the new-batch form's fields, the list and the batch page showing the name, renaming
through REST API v1 with the session cookie and the CSRF header, the Generate page's field."""

from __future__ import annotations

import io

from sqlalchemy import func, select

from shared.store.tables import Batch
from tests.portal.conftest import png_bytes
from tests.portal.test_portal import create_batch
from web.extensions import services


def _batch(app, batch_id: str) -> Batch:
    with services(app).sessions() as db:
        batch = db.get(Batch, batch_id)
        db.expunge(batch)
        return batch


def test_new_batch_form_has_a_name_field_and_a_keep_format_box(browser):
    browser.sign_in("alice")
    page = browser.get("/batches/new").get_data(as_text=True)
    assert 'id="name" name="name" maxlength="200"' in page
    assert 'id="keep_format" name="keep_format"' in page and "Keep original format" in page


def test_the_form_stores_the_name_and_keep_format(app, browser):
    browser.sign_in("alice")
    browser.get("/batches/new")
    named = create_batch(browser, name="  Team portraits ", keep_format="on")
    batch = _batch(app, named)
    assert batch.name == "Team portraits" and batch.recipe["keep_format"] is True
    plain = _batch(app, create_batch(browser))
    assert plain.name is None and plain.recipe["keep_format"] is False
    assert "finals in the original format" in browser.get(f"/batches/{named}").get_data(as_text=True)
    assert "finals in the original format" not in browser.get(
        f"/batches/{plain.id}").get_data(as_text=True)


def test_a_bad_name_is_refused_with_the_choices_kept(app, browser):
    browser.sign_in("alice")
    browser.get("/batches/new")
    response = browser.post_form("/batches/new", {
        "files": [(io.BytesIO(png_bytes()), "a.png")], "name": "x" * 201, "keep_format": "on",
    }, content_type="multipart/form-data")
    page = response.get_data(as_text=True)
    assert response.status_code == 400 and "Name: the name is 201 characters long" in page
    assert 'value="' + "x" * 201 + '"' in page  # shown again to be shortened
    with services(app).sessions() as db:
        assert db.scalar(select(func.count()).select_from(Batch)) == 0


def test_list_and_page_show_the_name_escaped_or_untitled(app, browser):
    browser.sign_in("alice")
    browser.get("/batches/new")
    named = create_batch(browser, name="<b>Bold</b> & co")
    untitled = create_batch(browser)
    listing = browser.get("/batches").get_data(as_text=True)
    assert "&lt;b&gt;Bold&lt;/b&gt; &amp; co" in listing and "<b>Bold</b>" not in listing
    assert "Untitled" in listing and untitled[:8] in listing
    page = browser.get(f"/batches/{named}").get_data(as_text=True)
    assert "<title>&lt;b&gt;Bold&lt;/b&gt; &amp; co · Anycost</title>" in page
    assert '<h1 id="batch-title" data-untitled="Batch ' in page
    assert f'data-url="/api/v1/batches/{named}"' in page and 'id="rename-button"' in page
    assert "rename_batch.js" in page
    assert f"<h1 id=\"batch-title\" data-untitled=\"Batch {untitled[:8]}\">Batch {untitled[:8]}</h1>" \
        in browser.get(f"/batches/{untitled}").get_data(as_text=True)


def test_the_list_searches_names(browser):
    browser.sign_in("alice")
    browser.get("/batches/new")
    create_batch(browser, name="Summer holiday")
    create_batch(browser, name="Office")
    found = browser.get("/batches?q=SUMMER").get_data(as_text=True)
    assert "Summer holiday" in found and "Office" not in found and 'value="SUMMER"' in found
    none = browser.get("/batches?q=zebra").get_data(as_text=True)
    assert "No batch has a name containing" in none


def test_rename_goes_through_the_api_with_the_csrf_header(app, browser):
    browser.sign_in("alice")
    browser.get("/batches/new")
    batch_id = create_batch(browser, name="Old")
    browser.get(f"/batches/{batch_id}")  # the page's token, as rename_batch.js sends it
    url = f"/api/v1/batches/{batch_id}"
    refused = browser.client.patch(url, json={"name": "New"})  # no CSRF header
    assert refused.status_code == 403 and refused.get_json()["error"]["code"] == "csrf"
    assert _batch(app, batch_id).name == "Old"
    renamed = browser.client.patch(url, json={"name": "New"},
                                   headers={"X-CSRF-Token": browser.token})
    assert renamed.status_code == 200 and renamed.get_json()["name"] == "New"
    assert "<title>New · Anycost</title>" in browser.get(f"/batches/{batch_id}").get_data(as_text=True)


def test_generate_page_has_a_name_field(browser):
    browser.sign_in("alice")
    page = browser.get("/generate").get_data(as_text=True)
    assert 'id="batch-name" name="name" maxlength="200"' in page
