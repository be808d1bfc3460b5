"""The editor workspace and the batch page in headless Chromium against the real stack
(tiny-random worker): the batch page's cards (whole photos, preview and final side by side,
progress in words, details behind a toggle, pushed events and no polling), then the editor at
1366x768 and on a 390x844 phone (the face and the focused slider both on screen, no page
scrolling), keyboard undo/redo, slider nudges and Reset, the split view, zoom that keeps the
face in view, and the filmstrip's keyboard navigation. Screenshots go to tests/_output/browser/."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import expect

from tests.browser.conftest import BATCH_PAGE, settled, signed_in_page

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.slow]

RENDER_TIMEOUT_MS = 300_000

#: Where the first face of the item is on the screen (its box mapped through the letterboxed,
#: zoomed preview), and the rectangles it must be inside.
GEOMETRY = """() => {
  const img = document.getElementById("preview-img");
  const item = JSON.parse(document.getElementById("editor").dataset.item);
  const r = img.getBoundingClientRect();
  const k = Math.min(r.width / img.naturalWidth, r.height / img.naturalHeight);
  const w = img.naturalWidth * k, h = img.naturalHeight * k;
  const box = item.faces[0].box;
  const left = r.left + (r.width - w) / 2, top = r.top + (r.height - h) / 2;
  const face = { x: left + (box[0] + box[2]) / 2 * w, y: top + (box[1] + box[3]) / 2 * h };
  const v = document.getElementById("viewport").getBoundingClientRect();
  const focused = document.activeElement.getBoundingClientRect();
  return { face: face, viewport: { left: v.left, top: v.top, right: v.right, bottom: v.bottom },
           focused: { top: focused.top, bottom: focused.bottom, left: focused.left, right: focused.right },
           window: { width: innerWidth, height: innerHeight },
           scroll: { height: document.documentElement.scrollHeight, width: document.documentElement.scrollWidth } };
}"""


def _inside(point: dict, rect: dict) -> bool:
    return rect["left"] <= point["x"] <= rect["right"] and rect["top"] <= point["y"] <= rect["bottom"]


def _assert_workspace_fits(page, name: str) -> None:
    """The face in the picture and the focused slider on screen at once, without scrolling."""
    g = page.evaluate(GEOMETRY)
    window = {"left": 0, "top": 0, "right": g["window"]["width"], "bottom": g["window"]["height"]}
    assert _inside(g["face"], g["viewport"]) and _inside(g["face"], window), (name, g)
    f = g["focused"]
    assert 0 <= f["top"] and f["bottom"] <= g["window"]["height"], (name, g)
    assert 0 <= f["left"] and f["right"] <= g["window"]["width"], (name, g)
    assert g["scroll"]["height"] <= g["window"]["height"], (name, g)  # the page itself does not scroll
    assert g["scroll"]["width"] <= g["window"]["width"], (name, g)
    # The picture is no stamp: at least half the window's height.
    assert g["viewport"]["bottom"] - g["viewport"]["top"] >= (0.4 if g["window"]["width"] < 500 else 0.6) * g["window"]["height"], (name, g)


@pytest.fixture
def photos(tmp_path) -> list[Path]:
    from matplotlib.cbook import get_sample_data
    from skimage import data

    astronaut = tmp_path / "astronaut.png"
    Image.fromarray(data.astronaut()).save(astronaut)
    hopper = tmp_path / "grace_hopper.jpg"
    hopper.write_bytes(Path(get_sample_data("grace_hopper.jpg", asfileobj=False)).read_bytes())
    return [astronaut, hopper]


def test_batch_page_and_editor_workspace(web_server, worker_process, chromium, photos, output_dir):
    page, errors = signed_in_page(chromium, web_server)
    page.set_viewport_size({"width": 1366, "height": 768})
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(web_server + "/batches/new")
    page.set_input_files("#files", [str(p) for p in photos])
    page.get_by_role("button", name="Upload and start").click()
    page.wait_for_url(BATCH_PAGE)
    batch_id = page.url.rsplit("/", 1)[1]

    # --- the batch page -------------------------------------------------------------------
    def json_gets() -> list[str]:
        return [u for u in requests if f"/api/v1/batches/{batch_id}?" in u]

    expect(page.locator('#items img[data-kind="preview"]')).to_have_count(2, timeout=RENDER_TIMEOUT_MS)
    expect(page.locator("#batch")).to_have_attribute("data-stream", "open")  # pushed events
    progress = page.locator("#batch-progress-text")
    expect(progress).to_have_text("Previews 2/2 ready \u00b7 finals 0/2")
    # Nothing renders now: a pushed page sends no request at all while it waits.
    seen = len(json_gets())
    page.wait_for_timeout(4000)
    assert len(json_gets()) == seen, json_gets()[seen:]
    # Thumbnails large enough to judge a face, whole photos (contain), preview beside final.
    first = page.locator("#items > li").first
    box = first.locator('img[data-kind="preview"]').bounding_box()
    assert box["width"] >= 150 and box["height"] >= 150, box
    assert first.locator('img[data-kind="preview"]').evaluate("e => getComputedStyle(e).objectFit") == "contain"
    final_box = first.locator(".thumb-final").bounding_box()
    assert abs(final_box["y"] - box["y"]) < 2 and final_box["x"] > box["x"] + box["width"] - 1
    # Developer output only on request.
    quality = first.locator('[data-role="quality"]')
    expect(quality).to_be_hidden()
    page.screenshot(path=str(output_dir / "batch-page-1366x768.png"))
    page.get_by_role("button", name="Show details").click()
    expect(quality).to_contain_text("Projected by encoder")
    expect(first.locator('[data-role="timings"]')).to_contain_text("render preview")
    page.get_by_role("button", name="Hide details").click()
    expect(quality).to_be_hidden()

    # --- the editor at 1366x768 ------------------------------------------------------------
    first.get_by_role("link", name="Edit").click()
    page.wait_for_url("**/items/*")
    editor = page.locator("#editor")
    expect(editor).to_have_attribute("data-status", "preview_ready")
    first_item = page.url
    start = int(page.locator("#preview-img").get_attribute("data-version"))
    glasses = page.get_by_label("Eyeglasses")
    glasses.focus()
    _assert_workspace_fits(page, "1366x768")
    page.screenshot(path=str(output_dir / "editor-1366x768.png"))

    # Keyboard: End, then undo and redo with Ctrl+Z / Ctrl+Shift+Z; each a new preview.
    page.keyboard.press("End")
    expect(editor).to_have_attribute("data-shown-version", str(start + 1), timeout=RENDER_TIMEOUT_MS)
    assert glasses.input_value() == "100"
    page.keyboard.press("Control+z")
    assert glasses.input_value() == "0"
    expect(editor).to_have_attribute("data-shown-version", str(start + 2), timeout=RENDER_TIMEOUT_MS)
    page.keyboard.press("Control+Shift+z")
    assert glasses.input_value() == "100"
    expect(editor).to_have_attribute("data-shown-version", str(start + 3), timeout=RENDER_TIMEOUT_MS)
    expect(page.get_by_role("button", name="Redo")).to_be_disabled()
    # Arrows nudge the focused slider (Shift: ten steps); Reset puts it back.
    page.keyboard.press("ArrowLeft")
    assert glasses.input_value() == "99"
    page.keyboard.press("Shift+ArrowLeft")
    assert glasses.input_value() == "89"
    page.get_by_role("button", name="Reset Eyeglasses").click()
    assert glasses.input_value() == "0"
    item_id = first_item.rsplit("/", 1)[1]
    settled(page)
    state = page.context.request.get(f"{web_server}/api/v1/items/{item_id}").json()
    assert "15_Eyeglasses" not in state["edits"]
    assert editor.get_attribute("data-shown-version") == str(state["edit_version"])
    expect(page.locator("#status-line")).to_contain_text("Preview ready")

    # Split view: the original left of a line dragged across the picture, the edit right of it.
    page.get_by_role("button", name="Split").click()
    handle = page.get_by_role("slider", name="Before and after split")
    expect(handle).to_be_visible()
    expect(page.locator("#before-img")).to_be_visible()
    view = page.locator("#viewport").bounding_box()
    grip = handle.bounding_box()
    page.mouse.move(grip["x"] + grip["width"] / 2, grip["y"] + grip["height"] / 2)
    page.mouse.down()
    page.mouse.move(view["x"] + view["width"] * 0.25, grip["y"] + grip["height"] / 2, steps=5)
    page.mouse.up()
    assert 23 <= int(handle.get_attribute("aria-valuenow")) <= 27
    clip = page.locator("#preview-img").evaluate("e => e.style.clipPath")
    assert clip.startswith("inset(0px 0px 0px ") and float(clip.split()[-1][:-3]) > 0, clip
    handle.focus()
    page.keyboard.press("End")  # the handle moves with the keyboard too
    assert handle.get_attribute("aria-valuenow") == "100"
    page.keyboard.press("Shift+ArrowLeft")
    assert handle.get_attribute("aria-valuenow") == "90"
    page.screenshot(path=str(output_dir / "editor-split-1366x768.png"))
    page.get_by_role("button", name="Split").click()
    expect(handle).to_be_hidden()

    # Zoom in on the face: it stays in view at every level; Fit goes back.
    for level in ("1.5", "2", "3"):
        page.get_by_role("button", name="Zoom in").click()
        expect(editor).to_have_attribute("data-zoom", level)
        g = page.evaluate(GEOMETRY)
        assert _inside(g["face"], g["viewport"]), (level, g)
    page.screenshot(path=str(output_dir / "editor-zoom-1366x768.png"))
    page.get_by_role("button", name="Fit").click()
    expect(editor).to_have_attribute("data-zoom", "1")

    # Filmstrip: the arrow keys (outside the sliders) go to the next and previous photo.
    frames = page.locator(".filmstrip .frame a")
    expect(frames).to_have_count(2)
    second = frames.nth(1).get_attribute("href")
    page.locator("#status-line").click()  # focus out of the panel
    page.keyboard.press("ArrowRight")
    page.wait_for_url("**" + second)
    expect(page.locator('.filmstrip a[aria-current="page"]')).to_have_attribute("href", second)
    page.keyboard.press("ArrowLeft")
    page.wait_for_url(first_item)

    # --- on a phone: stacked, the face and the focused slider on screen together -------------
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    expect(editor).to_have_attribute("data-status", "preview_ready")
    page.get_by_label("Necktie").focus()  # far down the panel: it scrolls, the picture stays
    _assert_workspace_fits(page, "390x844")
    page.screenshot(path=str(output_dir / "editor-390x844.png"))
    page.goto(f"{web_server}/batches/{batch_id}")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.screenshot(path=str(output_dir / "batch-page-390x844.png"), full_page=True)
    assert not errors, errors
    page.context.close()
