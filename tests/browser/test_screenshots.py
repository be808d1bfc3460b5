"""Every portal page at a laptop's 1366x768 and a phone's 390x844, as a person first sees it,
written to tests/_output/screenshots/<page>-<width>x<height>.png for people to look at; and on
each, what a look would catch: nothing wider than the window (no sideways scrolling) and no text
cut off at the window's side. The editor's picture and its first sliders are on screen together.

One photo batch (the astronaut, one face) makes the batch page, the editor and the explorer."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import expect

from tests.browser.conftest import BATCH_PAGE, REPO, signed_in_page

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.slow]

SCREENSHOTS = REPO / "tests" / "_output" / "screenshots"
SIZES = ((1366, 768), (390, 844))
RENDER_TIMEOUT_MS = 300_000

#: Elements with text whose box runs past the window's right edge (cut off for a person).
CUT_OFF = """() => {
  const w = document.documentElement.clientWidth;
  return Array.from(document.querySelectorAll("body *")).filter(e => {
    if (!e.childNodes.length || !Array.from(e.childNodes).some(n => n.nodeType === 3 && n.textContent.trim())) return false;
    const r = e.getBoundingClientRect(), s = getComputedStyle(e);
    if (r.width <= 1 || s.visibility === "hidden" || s.display === "none") return false;
    let p = e;  // inside a box that scrolls sideways on purpose (the filmstrip) is fine
    while ((p = p.parentElement)) { if (/(auto|scroll)/.test(getComputedStyle(p).overflowX)) return false; }
    // Partly in the window (wholly outside is hidden on purpose: the skip link).
    return (r.left < w && r.right > w + 1) || (r.left < -1 && r.right > 0);
  }).map(e => e.tagName + "#" + e.id + "." + e.className + ": " + e.textContent.trim().slice(0, 40));
}"""
IMAGES_LOADED = "() => Array.from(document.images).every(i => !i.getAttribute('src') || (i.complete && i.naturalWidth > 0))"


def _look(page, name: str, width: int, height: int) -> None:
    """Screenshot the window as it is, then check what a person would see wrong."""
    page.wait_for_function(IMAGES_LOADED)
    path = SCREENSHOTS / f"{name}-{width}x{height}.png"
    page.screenshot(path=str(path))
    scroll_width = page.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= width, (name, width, scroll_width)
    assert page.evaluate(CUT_OFF) == [], name


@pytest.fixture
def astronaut(tmp_path) -> Path:
    from skimage import data

    path = tmp_path / "astronaut.png"
    Image.fromarray(data.astronaut()).save(path)
    return path


def test_every_portal_page_at_laptop_and_phone_sizes(web_server, worker_process, chromium,
                                                    astronaut):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    login = chromium.new_context(viewport={"width": 1366, "height": 768})
    for width, height in SIZES:
        page = login.new_page()
        page.set_viewport_size({"width": width, "height": height})
        page.goto(web_server + "/login")
        _look(page, "login", width, height)
    login.close()

    page, errors = signed_in_page(chromium, web_server)
    page.goto(web_server + "/batches/new")
    page.set_input_files("#files", [str(astronaut)])
    page.get_by_role("button", name="Upload and start").click()
    page.wait_for_url(BATCH_PAGE)
    batch_url = page.url
    expect(page.locator('#items img[data-kind="preview"]')).to_have_count(1, timeout=RENDER_TIMEOUT_MS)
    item_url = page.locator("#items").get_by_role("link", name="Edit").first.get_attribute("href")
    model_url = page.get_by_role("link", name="Model").get_attribute("href")
    pages = (("batches", "/batches"), ("new-batch", "/batches/new"), ("batch", batch_url),
             ("editor", item_url), ("explore", item_url + "/explore"), ("model", model_url),
             ("generate", "/generate"))
    for width, height in SIZES:
        page.set_viewport_size({"width": width, "height": height})
        for name, url in pages:
            page.goto(url if url.startswith("http") else web_server + url)
            if name == "editor":
                expect(page.locator("#editor")).to_have_attribute("data-status", "preview_ready")
                _editor_in_view(page, width, height)
            _look(page, name, width, height)
    assert not errors, errors
    page.context.close()


def _editor_in_view(page, width: int, height: int) -> None:
    """The picture's middle and the first slider on screen at once, without scrolling."""
    picture = page.locator("#preview-img").bounding_box()
    middle = (picture["x"] + picture["width"] / 2, picture["y"] + picture["height"] / 2)
    assert 0 <= middle[0] <= width and 0 <= middle[1] <= height, picture
    slider = page.get_by_label("Smiling").bounding_box()
    assert slider and 0 <= slider["y"] and slider["y"] + slider["height"] <= height, slider
    assert 0 <= slider["x"] and slider["x"] + slider["width"] <= width, slider
