"""The item editor's tools in headless Chromium against the real stack (tiny-random worker):
undo, before/after, finalize pressed while a preview renders (queued after it, no refusal), the
final shown in place, Retry on a failed item with the code's human text, the batch's truthful
status ("Done, 1 failed")."""

from __future__ import annotations

import time

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import expect

from shared.codes.errors import message_for
from tests.browser.conftest import BATCH_PAGE, signed_in_page

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.slow]

RENDER_TIMEOUT_MS = 300_000


def test_undo_before_after_finalize_during_preview_and_retry(web_server, worker_process, chromium,
                                                            tmp_path, output_dir):
    from skimage import data

    face = tmp_path / "astronaut.png"
    Image.fromarray(data.astronaut()).save(face)
    blank = tmp_path / "blank.png"  # no face in it: fails with no_face
    Image.fromarray(np.full((200, 200, 3), 128, np.uint8)).save(blank)

    page, errors = signed_in_page(chromium, web_server)
    context = page.context
    page.goto(web_server + "/batches/new")
    page.set_input_files("#files", [str(face), str(blank)])
    page.get_by_role("button", name="Upload and start").click()
    page.wait_for_url(BATCH_PAGE)
    batch_url = page.url
    expect(page.locator('#items [data-status="failed"]')).to_have_count(1, timeout=RENDER_TIMEOUT_MS)
    expect(page.locator('#items [data-status="preview_ready"]')).to_have_count(
        1, timeout=RENDER_TIMEOUT_MS)
    expect(page.locator("#batch-status")).to_contain_text("1 failed")

    # Retry on the failed item: the request goes out, the error is the code's words.
    page.locator('#items [data-status="failed"]').get_by_role("link", name="Edit").click()
    page.wait_for_url("**/items/*")
    expect(page.locator("#item-error")).to_have_text(message_for("no_face"))
    with page.expect_response(lambda r: r.url.endswith("/retry")) as answer:
        page.get_by_role("button", name="Retry").click()
    assert answer.value.status == 202
    expect(page.locator("#editor")).to_have_attribute("data-status", "failed",
                                                      timeout=RENDER_TIMEOUT_MS)
    expect(page.locator("#item-error")).to_have_text(message_for("no_face"))

    # The photo with a face.
    page.goto(batch_url)
    page.locator('#items [data-status="preview_ready"]').get_by_role("link", name="Edit").click()
    page.wait_for_url("**/items/*")
    editor = page.locator("#editor")
    preview = page.locator("#preview-img")
    expect(editor).to_have_attribute("data-status", "preview_ready")
    start = int(preview.get_attribute("data-version"))
    glasses = page.get_by_label("Eyeglasses")
    glasses.focus()
    page.keyboard.press("End")
    expect(editor).to_have_attribute("data-shown-version", str(start + 1), timeout=RENDER_TIMEOUT_MS)
    assert glasses.input_value() == "100"

    # Undo puts the slider back and asks for that preview.
    page.get_by_role("button", name="Undo").click()
    assert glasses.input_value() == "0"
    expect(editor).to_have_attribute("data-shown-version", str(start + 2), timeout=RENDER_TIMEOUT_MS)
    expect(page.get_by_role("button", name="Undo")).to_be_disabled()

    # Before shows the original in place of the edit, and back.
    edited_src = preview.get_attribute("src")
    page.get_by_role("button", name="Before", exact=True).click()
    expect(page.locator("#before-img")).to_be_visible()
    assert "/original" in page.locator("#before-img").get_attribute("src")
    expect(preview).to_have_css("visibility", "hidden")
    expect(editor).to_have_attribute("data-showing", "before")
    page.get_by_role("button", name="Before", exact=True).click()
    expect(page.locator("#before-img")).to_be_hidden()
    expect(preview).to_be_visible()
    assert preview.get_attribute("src") == edited_src

    # Finalize pressed while a new preview renders: queued after it, no error, the final in place.
    # The edit's request is held at the browser until Finalize was pressed: with the preview
    # lane a tiny model's preview can be back before a click lands.
    held = []
    page.route("**/api/v1/items/*/edits", lambda route: held.append(route))
    page.get_by_label("Smiling").focus()
    page.keyboard.press("Home")
    deadline = time.monotonic() + 10
    while not held:
        assert time.monotonic() < deadline, "the edit's request never went out"
        page.wait_for_timeout(20)
    page.get_by_role("button", name="Finalize").click()  # before the edit has been answered
    expect(editor).to_have_attribute("data-final-queued", "true")
    expect(page.locator("#status-line")).to_contain_text("final starts when this preview is ready")
    for route in held:
        route.continue_()
    page.unroute("**/api/v1/items/*/edits")
    expect(editor).to_have_attribute("data-status", "done", timeout=RENDER_TIMEOUT_MS)
    expect(page.locator("#item-error")).to_be_hidden()
    expect(editor).to_have_attribute("data-showing", "final")
    assert "/final" in preview.get_attribute("src")
    state = context.request.get(f"{web_server}/api/v1/items/{page.url.rsplit('/', 1)[1]}").json()
    assert state["edits"].get("31_Smiling") == -1.0  # the final has the edit made before it
    page.screenshot(path=str(output_dir / "editor-tools-final.png"), full_page=True)
    assert not errors, errors
    context.close()
