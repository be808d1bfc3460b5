"""The Generate page end to end in headless Chromium against the real stack (web over HTTP,
Redis, PostgreSQL, a Celery worker process on tiny-random): generate faces from seeds, watch the
grid fill in, open one in the item editor, edit it, finalize, download the zip; and the
new-batch page's sample picker puts a sample photo into the file chooser."""

from __future__ import annotations

import io
import zipfile
from urllib.parse import urljoin

import pytest
from PIL import Image
from playwright.sync_api import expect

from tests.browser.conftest import signed_in_page

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.slow]

RENDER_TIMEOUT_MS = 120_000


def test_generate_open_in_editor_edit_finalize_download(web_server, worker_process, chromium,
                                                        output_dir, tmp_path):
    page, console_errors = signed_in_page(chromium, web_server, accept_downloads=True)
    context = page.context

    def shot(name: str) -> None:
        page.screenshot(path=str(output_dir / f"generate-{name}.png"), full_page=True)

    # The sample picker: a public-domain photo joins the chosen files.
    page.get_by_role("link", name="New batch").first.click()
    page.wait_for_url("**/batches/new")
    page.get_by_role("button", name="Astronaut (NASA)").click()
    expect(page.locator("#file-list li")).to_have_count(1)
    assert "astronaut.jpg" in page.locator("#file-list").inner_text()
    shot("01-sample-picker")

    # Generate two faces from seeds; the grid fills in as they render.
    page.get_by_role("link", name="Generate").first.click()
    page.wait_for_url("**/generate")
    expect(page.locator("#model option")).to_have_count(1)  # the live worker's config
    assert page.locator("#model").input_value() == "tiny-random"
    page.get_by_label("These seeds").check()
    page.get_by_label("Seeds, separated by commas").fill("85, 265")
    page.locator("#truncation").fill("0.5")
    page.get_by_label("Name (optional)").fill("Two seeds")
    page.get_by_role("button", name="Generate").click()
    samples = page.locator("#samples > li")
    expect(samples).to_have_count(2)
    assert samples.locator(".filename").all_inner_texts() == ["Seed 85", "Seed 265"]
    expect(page.locator("#samples .thumb-preview img")).to_have_count(2, timeout=RENDER_TIMEOUT_MS)
    expect(page.locator("#generate-status")).to_contain_text("2 of 2 rendered")
    shot("02-grid")

    # Open the first in the editor, edit it, see a new preview, finalize.
    samples.first.get_by_role("link", name="Open in the editor").click()
    page.wait_for_url("**/items/*")
    item_id = page.url.rsplit("/", 1)[1]
    expect(page.locator("#editor")).to_have_attribute("data-status", "preview_ready")
    preview = page.locator("#preview-img")
    old_src = preview.get_attribute("src")
    old_bytes = context.request.get(urljoin(web_server, old_src)).body()
    glasses = page.get_by_label("Eyeglasses")
    glasses.focus()
    page.keyboard.press("End")
    expect(page.locator("#editor")).to_have_attribute("data-shown-version", "1",
                                                      timeout=RENDER_TIMEOUT_MS)
    new_src = preview.get_attribute("src")
    assert new_src != old_src
    assert context.request.get(urljoin(web_server, new_src)).body() != old_bytes
    shot("03-editor-edited")
    page.get_by_role("button", name="Finalize").click()
    expect(page.locator("#editor")).to_have_attribute("data-status", "done",
                                                      timeout=RENDER_TIMEOUT_MS)
    api_item = context.request.get(f"{web_server}/api/v1/items/{item_id}").json()
    assert api_item["seed"] == 85 and api_item["status"] == "done"
    shot("04-editor-final")

    # The batch page: finalize the other, download both.
    page.goto(f"{web_server}/batches/{api_item['batch_id']}")
    expect(page.locator("#batch-title")).to_have_text("Two seeds")  # the Generate form's name
    page.get_by_role("button", name="Finalize all").click()
    expect(page.locator("#finals-count")).to_have_text("2", timeout=RENDER_TIMEOUT_MS)
    with page.expect_download() as info:
        page.locator("#download-zip").click()
    zip_path = tmp_path / "generated.zip"
    info.value.save_as(zip_path)
    with zipfile.ZipFile(zip_path) as archive:
        names = archive.namelist()
        assert len(names) == 2
        for name in names:
            with Image.open(io.BytesIO(archive.read(name))) as image:
                assert image.size == (64, 64)
    shot("05-batch-done")
    assert not console_errors, console_errors
    context.close()
