"""The portal's pages as their scripts see them (Flask test client, real SQLite and Redis): the
page config the scripts read (the server's own labels, image kinds and URLs; no script keeps a
copy), the batch page's progress in words, the editor's slider groups and filmstrip, and uploads
that keep the good photos (the portal's JSON answers and the API's ``partial=true``)."""

from __future__ import annotations

import html
import io
import json
import re
from pathlib import Path

from sqlalchemy import func, select

from shared.codes.attributes import ATTRIBUTES
from shared.store.tables import Batch, Item
from tests.portal.conftest import png_bytes
from tests.portal.test_portal import create_batch, finish_item, item_ids
from web.api import serialize
from web.extensions import services
from web.portal import present
from web.portal.workspace import ATTRIBUTE_GROUPS

STATIC = Path(__file__).resolve().parents[2] / "web" / "static"


def _config(page: str) -> dict:
    match = re.search(r'<script type="application/json" id="portal-config">(.*?)</script>', page, re.S)
    assert match, "no page config"
    return json.loads(match.group(1))


def test_every_page_carries_the_servers_labels_kinds_and_urls(app, browser):
    browser.sign_in("alice")
    browser.get("/batches/new")
    batch_id = create_batch(browser, names=("a.png",))
    item = item_ids(app, batch_id)[0]
    for url in ("/batches", f"/batches/{batch_id}", f"/items/{item}", "/generate"):
        config = _config(browser.get(url).get_data(as_text=True))
        assert config["status_labels"] == present.STATUS_LABELS
        assert config["image_kinds"] == list(serialize.IMAGE_KINDS)
    urls = config["urls"]
    assert urls["batch"] == "/api/v1/batches/{id}" and urls["item_page"] == "/items/{id}"
    # The URLs work: the API answers the page's session for each.
    assert browser.get(urls["batch"].replace("{id}", batch_id)).status_code == 200
    assert browser.get(urls["item"].replace("{id}", item)).status_code == 200
    assert browser.get(urls["models"]).status_code == 200
    assert browser.get(urls["directions"]).status_code == 200


def test_no_script_keeps_its_own_labels_kinds_or_api_prefix():
    for path in STATIC.glob("*.js"):
        code = re.sub(r"/\*.*?\*/", "", path.read_text(), flags=re.S)  # comments may name them
        assert "/api/v1" not in code, path.name
        assert '["original", "projected"' not in code, path.name
        for status, label in present.STATUS_LABELS.items():
            assert f'"{label}"' not in code, (path.name, label)
            assert not re.search(rf"\b{status}\s*:\s*\"", code), (path.name, status)  # a labels map


def test_progress_in_words():
    assert present.progress_text({"preview_ready": 2, "queued": 0}) == "Previews 2/2 ready \u00b7 finals 0/2"
    assert present.progress_text({"done": 1, "finalizing": 1, "failed": 1, "queued": 1}) == (
        "Previews 2/4 ready \u00b7 finals 1/4 \u00b7 1 failed")
    assert present.progress_text({}) == "No photos"


def test_batch_page_shows_progress_in_words_and_follows_the_event_stream(app, browser):
    browser.sign_in("alice")
    browser.get("/batches/new")
    batch_id = create_batch(browser, names=("a.png", "b.png"))
    a, _ = item_ids(app, batch_id)
    finish_item(app, a, png_bytes(color=(9, 9, 9)))
    page = browser.get(f"/batches/{batch_id}").get_data(as_text=True)
    assert ">Previews 1/2 ready \u00b7 finals 1/2</p>" in page
    assert f'data-events-url="/api/v1/batches/{batch_id}/events"' in page
    # Timings and distances are on the page, behind the details toggle; the final beside the
    # preview; the original stands in (dimmed) for a preview not rendered yet.
    assert 'id="show-details" aria-pressed="false"' in page and 'data-role="timings"' in page
    card = page.split(f'id="item-{a}"')[1].split("</li>")[0]
    assert 'data-kind="preview"' in card and 'data-kind="final"' in card
    other = page.split('id="item-')[2].split("</li>")[0]
    assert 'class="standin"' in other and 'data-kind="original"' in other


def test_editor_groups_every_attribute_once():
    grouped = [key for _, _, keys in ATTRIBUTE_GROUPS for key in keys]
    assert sorted(grouped) == sorted(ATTRIBUTES)


def test_editor_filmstrip_links_the_batchs_photos_in_order(app, browser):
    browser.sign_in("alice")
    browser.get("/batches/new")
    batch_id = create_batch(browser, names=("a.png", "b.png", "c.png"))
    a, b, c = item_ids(app, batch_id)
    page = browser.get(f"/items/{b}").get_data(as_text=True)
    assert re.findall(r'class="frame[^"]*"><a href="/items/([0-9a-f]{32})"', page) == [a, b, c]
    assert re.search(rf'href="/items/{b}" data-item-id="{b}" data-status="[a-z_]+" title="b.png"\s+aria-current="page"', page)
    assert f'id="previous-item" href="/items/{a}"' in page and f'id="next-item" href="/items/{c}"' in page
    first = browser.get(f"/items/{a}").get_data(as_text=True)
    assert 'id="previous-item"' not in first and f'id="next-item" href="/items/{b}"' in first
    # Every edit slider has its own Reset.
    assert first.count('data-attr="') == first.count('class="reset" data-reset=') == 40


def _files(*names_and_bytes):
    return [(io.BytesIO(data), name) for name, data in names_and_bytes]


def _batches(app) -> int:
    with services(app).sessions() as db:
        return db.scalar(select(func.count()).select_from(Batch))


def test_portal_upload_names_each_refused_file_and_makes_the_batch_of_the_good_ones(app, browser):
    browser.sign_in("alice")
    browser.get("/batches/new")
    files = (("good.png", png_bytes()), ("notes.png", b"<html>not a photo</html>"), ("b.png", png_bytes()))
    sent = {"files": _files(*files), "output": "photo", "csrf_token": browser.token}
    answer = browser.client.post("/batches/new", data=sent, content_type="multipart/form-data",
                                 headers={"Accept": "application/json"})
    assert answer.status_code == 400
    error = answer.get_json()["error"]
    assert error["code"] == "files_refused" and error["accepted"] == 2 and error["problems"] == []
    assert [(r["index"], r["filename"]) for r in error["refused"]] == [(1, "notes.png")]
    assert error["refused"][0]["reason"].startswith("notes.png: not a photo we can read")
    assert _batches(app) == 0  # all or nothing unless asked

    sent = {"files": _files(*files), "output": "photo", "partial": "on", "csrf_token": browser.token}
    answer = browser.client.post("/batches/new", data=sent, content_type="multipart/form-data",
                                 headers={"Accept": "application/json"})
    assert answer.status_code == 201
    batch_id = answer.get_json()["url"].rsplit("/", 1)[1]
    with services(app).sessions() as db:
        assert [i.filename for i in db.get(Batch, batch_id).items] == ["good.png", "b.png"]
    page = browser.get(f"/batches/{batch_id}").get_data(as_text=True)
    assert "Batch created with 2 photo(s). 1 left out: notes.png: not a photo we can read" in html.unescape(page)

    # The files the page itself left out come along by name ("left_out"): the message names
    # them first, each on one line and clipped.
    left_out = ["huge.png: 30.0 MB is more than the 20.0 MB allowed per photo.",
                "list.txt:\n not a photo <b>" + "x" * 500]
    sent = {"files": _files(*files), "output": "photo", "partial": "on", "left_out": left_out,
            "csrf_token": browser.token}
    answer = browser.client.post("/batches/new", data=sent, content_type="multipart/form-data",
                                 headers={"Accept": "application/json"})
    assert answer.status_code == 201
    page = browser.get(answer.get_json()["url"]).get_data(as_text=True)
    flash = re.search(r'<ul class="flashes"[^>]*>\s*<li>(.*?)</li>', page, re.S).group(1)
    assert "<b>" not in flash  # the user's text is escaped
    said = html.unescape(flash)
    assert said.startswith("Batch created with 2 photo(s). 3 left out: huge.png: 30.0 MB is more "
                           "than the 20.0 MB allowed per photo. list.txt: not a photo <b>xxx")
    assert "x" * 300 not in said and "notes.png: not a photo we can read" in said


def test_api_upload_is_all_or_nothing_unless_partial(app, browser):
    browser.sign_in("alice")
    browser.get("/batches/new")
    headers = {"X-CSRF-Token": browser.token}
    files = (("good.png", png_bytes()), ("empty.png", b""), ("notes.png", b"not a photo"))
    answer = browser.client.post("/api/v1/batches", data={"files": _files(*files)}, headers=headers,
                                 content_type="multipart/form-data")
    assert answer.status_code == 400 and answer.get_json()["error"]["code"] == "empty_file"
    assert _batches(app) == 0

    answer = browser.client.post("/api/v1/batches", data={"files": _files(*files), "partial": "true"},
                                 headers=headers, content_type="multipart/form-data")
    assert answer.status_code == 201, answer.get_json()  # checked against the OpenAPI document
    made = answer.get_json()
    assert [i["filename"] for i in made["items"]] == ["good.png"]
    assert made["refused"] == [
        {"field": "files[1]", "filename": "empty.png", "code": "empty_file", "message": "'empty.png' is empty"},
        {"field": "files[2]", "filename": "notes.png", "code": "unsupported_format",
         "message": "'notes.png' is not an image we accept (JPEG, PNG, WebP, BMP, TIFF, GIF, HEIC, AVIF)"},
    ]
    with services(app).sessions() as db:
        assert db.scalar(select(func.count()).select_from(Item)) == 1

    # Nothing passes: the first refusal, as without the flag.
    answer = browser.client.post("/api/v1/batches", data={"files": _files(files[2]), "partial": "true"},
                                 headers=headers, content_type="multipart/form-data")
    assert answer.status_code == 415 and answer.get_json()["error"]["field"] == "files[0]"
    assert _batches(app) == 1
