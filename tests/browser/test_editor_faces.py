"""Per-face editing in headless Chromium against the real stack (tiny-random worker, the default
detector): a photo with two faces uploaded with "Every face of each photo", the editor's face
outlines, "Face 2" picked and a slider moved: a new preview arrives and the API holds that
face's override only; the other face and "All faces" keep the shared edits; Undo removes the
override again."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import BATCH_PAGE, signed_in_page
from tests.pipeline_faces.test_face_edits import two_faces

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.slow]

RENDER_TIMEOUT_MS = 300_000


def test_pick_a_face_and_edit_it_alone(web_server, worker_process, chromium, tmp_path, output_dir):
    from PIL import Image

    photo = tmp_path / "two-faces.png"
    Image.fromarray(two_faces()).save(photo)

    page, errors = signed_in_page(chromium, web_server)
    context = page.context
    page.goto(web_server + "/batches/new")
    page.set_input_files("#files", [str(photo)])
    page.get_by_label("Every face of each photo").check()
    page.get_by_role("button", name="Upload and start").click()
    page.wait_for_url(BATCH_PAGE)
    ready = page.locator('#items [data-status="preview_ready"]')
    expect(ready).to_have_count(1, timeout=RENDER_TIMEOUT_MS)
    ready.get_by_role("link", name="Edit").click()
    page.wait_for_url("**/items/*")
    item_url = f"{web_server}/api/v1/items/{page.url.rsplit('/', 1)[1]}"

    editor = page.locator("#editor")
    expect(editor).to_have_attribute("data-status", "preview_ready")
    face1 = page.get_by_role("button", name="Face 1", exact=True)
    face2 = page.get_by_role("button", name="Face 2", exact=True)
    all_faces = page.get_by_role("button", name="All faces")
    expect(face2).to_be_visible()
    expect(face1).to_be_visible()
    expect(all_faces).to_have_attribute("aria-pressed", "true")
    start = int(page.locator("#preview-img").get_attribute("data-version"))

    # Face 2 alone: its outline is highlighted, a slider move is its override.
    face2.click()
    expect(face2).to_have_attribute("aria-pressed", "true")
    expect(face1).to_have_attribute("aria-pressed", "false")
    expect(all_faces).to_have_attribute("aria-pressed", "false")
    expect(page.locator("#face-scope")).to_contain_text("Editing face 2")
    glasses = page.get_by_label("Eyeglasses")
    glasses.focus()
    page.keyboard.press("End")
    expect(editor).to_have_attribute("data-shown-version", str(start + 1), timeout=RENDER_TIMEOUT_MS)
    state = context.request.get(item_url).json()
    assert state["face_edits"] == {"1": {"15_Eyeglasses": 1.0}}
    assert state["edits"] == {}  # the shared edits (face 1's) are untouched
    page.screenshot(path=str(output_dir / "editor-face-2.png"), full_page=True)

    # The other face and "All faces" show the shared edits; face 2 its own.
    face1.click()
    assert glasses.input_value() == "0"
    all_faces.click()
    assert glasses.input_value() == "0"
    face2.click()
    assert glasses.input_value() == "100"

    # Undo: face 2 goes back to no override (the shared edits), in a new preview.
    page.get_by_role("button", name="Undo").click()
    assert glasses.input_value() == "0"
    expect(editor).to_have_attribute("data-face", "1")
    expect(editor).to_have_attribute("data-shown-version", str(start + 2), timeout=RENDER_TIMEOUT_MS)
    state = context.request.get(item_url).json()
    assert state["face_edits"] == {} and state["edits"] == {}
    expect(page.get_by_role("button", name="Undo")).to_be_disabled()
    assert not errors, errors
    context.close()
