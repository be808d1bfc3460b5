"""The portal end to end in headless Chromium against the real stack (web over HTTP, Redis,
PostgreSQL, a Celery worker process on tiny-random): sign in, upload two photos, watch previews
appear, move a slider in the item editor and see the preview change, finalize, download the zip.
A screenshot of every page goes to tests/_output/browser/."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from urllib.parse import urljoin

import pytest
from PIL import Image
from playwright.sync_api import expect

from tests.browser.conftest import BATCH_PAGE, PASSWORD, USERNAME, settled

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.slow]

RENDER_TIMEOUT_MS = 300_000  # previews on a busy 2-core CPU, face detection included


@pytest.fixture
def photos(tmp_path) -> list[Path]:
    """skimage's astronaut and matplotlib's grace_hopper.jpg, written to files."""
    from matplotlib.cbook import get_sample_data
    from skimage import data

    astronaut = tmp_path / "astronaut.png"
    Image.fromarray(data.astronaut()).save(astronaut)
    hopper = tmp_path / "grace_hopper.jpg"
    hopper.write_bytes(Path(get_sample_data("grace_hopper.jpg", asfileobj=False)).read_bytes())
    return [astronaut, hopper]


def test_sign_in_upload_edit_finalize_download(web_server, worker_process, chromium, photos,
                                               output_dir, tmp_path):
    context = chromium.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(30_000)
    console_errors: list[str] = []
    page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)

    def shot(name: str) -> None:
        page.screenshot(path=str(output_dir / f"{name}.png"), full_page=True)

    # Sign in.
    page.goto(web_server + "/batches")
    assert "/login" in page.url
    page.get_by_label("Username").fill(USERNAME)
    page.get_by_label("Password").fill(PASSWORD)
    shot("01-login")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/batches")
    assert page.locator("#model-notice").is_visible()  # tiny-random: random weights, said plainly
    shot("02-my-batches-empty")

    # New batch: two photos, a smile, the default costs.
    page.get_by_role("link", name="New batch").first.click()
    page.wait_for_url("**/batches/new")
    page.set_input_files("#files", [str(p) for p in photos])
    assert page.locator("#file-list li").count() == 2
    assert page.locator("#files-problems").inner_text().strip() == ""
    smile = page.get_by_label("Smiling")
    smile.focus()
    for _ in range(30):  # the keyboard moves sliders too
        page.keyboard.press("ArrowRight")
    assert smile.input_value() == "30"
    assert "MACs" in page.locator("#preview-cost-info").inner_text()
    page.get_by_label("Name (optional)").fill("Browser batch")
    page.get_by_label("Keep original format").check()  # finals: a PNG and a JPEG, as uploaded
    shot("03-new-batch")
    page.get_by_role("button", name="Upload and start").click()
    page.wait_for_url(BATCH_PAGE)
    batch_url = page.url
    batch_id = batch_url.rsplit("/", 1)[1]
    expect(page.locator("#batch-title")).to_have_text("Browser batch")
    assert page.title().startswith("Browser batch")
    items = page.locator("#items > li")
    assert items.count() == 2
    assert sorted(items.locator(".filename").all_inner_texts()) == ["astronaut.png", "grace_hopper.jpg"]

    # Previews appear without reloading the page (pushed by the batch's event stream).
    expect(page.locator('#items .thumb-preview img[data-kind="preview"]')).to_have_count(
        2, timeout=RENDER_TIMEOUT_MS)
    expect(page.locator("#items .thumb-projected img")).to_have_count(2)
    assert page.locator('#items [data-status="failed"]').count() == 0
    expect(page.locator("#batch-progress-text")).to_have_text("Previews 2/2 ready \u00b7 finals 0/2")
    # Timings and distances wait behind the details toggle.
    timings = items.first.locator('[data-role="timings"]')
    expect(timings).to_be_hidden()
    page.get_by_role("button", name="Show details").click()
    expect(timings).to_contain_text("render preview")
    # The quality line arrives with the preview (tiny-random has an encoder, no discriminator).
    expect(items.first.locator('[data-role="quality"]')).to_contain_text("Projected by encoder")
    shot("04-batch-previews")

    # Item editor: move a slider, a new preview replaces the old one.
    items.first.get_by_role("link", name="Edit").click()
    page.wait_for_url("**/items/*")
    preview = page.locator("#preview-img")
    expect(page.locator("#editor")).to_have_attribute("data-status", "preview_ready")
    old_src = preview.get_attribute("src")
    assert old_src
    old_bytes = context.request.get(urljoin(web_server, old_src)).body()
    old_version = int(preview.get_attribute("data-version"))
    shot("05-editor-before")
    glasses = page.get_by_label("Eyeglasses")
    glasses.focus()
    page.keyboard.press("End")  # +100
    # The page swaps the picture only for the newest version it asked for.
    expect(page.locator("#editor")).to_have_attribute("data-shown-version", str(old_version + 1),
                                                      timeout=RENDER_TIMEOUT_MS)
    assert int(preview.get_attribute("data-version")) == old_version + 1
    new_src = preview.get_attribute("src")
    assert new_src != old_src
    new_bytes = context.request.get(urljoin(web_server, new_src)).body()
    assert new_bytes != old_bytes
    expect(page.locator("#status-line")).to_contain_text("Preview ready")
    expect(page.locator("#status-line")).to_contain_text("last render took")
    shot("06-editor-after-edit")

    # Quick moves: the page ends on the newest position's preview, never a late older one (moves
    # made while a preview renders go out as one request once it is on screen).
    for key in ("Home", "End", "Home"):  # -100, +100, -100
        glasses.press(key)
        page.wait_for_timeout(150)
    item_id = page.url.rsplit("/", 1)[1]
    expect(page.locator("#editor")).to_have_attribute("data-status", "preview_ready",
                                                      timeout=RENDER_TIMEOUT_MS)
    settled(page)
    state = context.request.get(f"{web_server}/api/v1/items/{item_id}").json()
    newest = state["edit_version"]
    assert old_version + 2 <= newest <= old_version + 4
    assert state["edits"] == {"31_Smiling": 0.3, "15_Eyeglasses": -1.0}
    # The newest version's picture (loaded by the editor's long-poll: "&wait=" follows).
    assert preview.get_attribute("src").split("&")[0] == state["preview_url"]
    expect(page.locator("#status-line")).to_contain_text("Preview ready")

    # Finalize this item from the editor, the rest from the batch page.
    page.get_by_role("button", name="Finalize").click()
    expect(page.locator("#editor")).to_have_attribute("data-status", "done",
                                                      timeout=RENDER_TIMEOUT_MS)
    expect(page.locator("#final-link")).to_be_visible()
    expect(page.locator("#status-line")).to_contain_text("Final ready")
    shot("07-editor-final")
    page.goto(batch_url)
    page.get_by_role("button", name="Finalize all").click()
    page.wait_for_url(batch_url)
    assert "Finals queued for 1 photo" in page.locator(".flashes").inner_text()
    expect(page.locator("#finals-count")).to_have_text("2", timeout=RENDER_TIMEOUT_MS)
    expect(page.locator("#batch-status")).to_have_text("Done")
    expect(page.locator("#batch-progress-text")).to_have_text("Previews 2/2 ready \u00b7 finals 2/2")
    expect(page.locator("#items .thumb-final img")).to_have_count(2)
    # Rename from the batch page (PATCH through the API): the heading and the title follow.
    page.locator("#batch-name").fill("Zoë's finals")
    page.get_by_role("button", name="Rename").click()
    expect(page.locator("#rename-status")).to_have_text("Renamed.")
    expect(page.locator("#batch-title")).to_have_text("Zoë's finals")
    assert page.title().startswith("Zoë's finals")
    shot("08-batch-done")

    # Download the zip: two images.
    with page.expect_download() as info:
        page.locator("#download-zip").click()
    assert info.value.suggested_filename == f"zoë-s-finals-{batch_id[:8]}.zip"
    zip_path = tmp_path / "finals.zip"
    info.value.save_as(zip_path)
    with zipfile.ZipFile(zip_path) as archive:
        names = archive.namelist()
        assert sorted(names) == ["astronaut.png", "grace_hopper.jpg"]  # keep_format
        for name in names:
            with Image.open(io.BytesIO(archive.read(name))) as image:
                image.load()
                assert min(image.size) >= 64

    page.goto(web_server + "/batches")
    assert page.locator("table.batches tbody tr").count() == 1
    assert "Done" in page.locator("table.batches").inner_text()
    assert "Zoë's finals" in page.locator("table.batches").inner_text()
    shot("09-my-batches-done")

    # On a phone-sized screen the pages fit the width (no sideways scrolling).
    page.set_viewport_size({"width": 390, "height": 844})
    for url, name in ((batch_url, "10-phone-batch"), (web_server + f"/items/{item_id}", "11-phone-editor"),
                      (web_server + "/batches/new", "12-phone-new-batch")):
        page.goto(url)
        assert page.evaluate("document.documentElement.scrollWidth") <= 390, name
        shot(name)
    assert not console_errors, console_errors
    context.close()
