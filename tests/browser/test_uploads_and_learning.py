"""Partial uploads and the learned-direction picker in headless Chromium against the real stack.

Uploads (no worker process: a registered heartbeat): files the browser already refuses and one
only the server refuses (a text file named .jpg) are each listed with their reason, the chosen
files stay chosen after every refusal, and the batch is made from the good ones on request, its
message naming every file left out (the browser's and the server's). Learning (tiny-random worker): ten generated faces,
five marked "Has it" and five "Lacks it" on the batch page, named and learned; the direction is
then a slider of the editor's "Learned directions" and moving it renders a new preview."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import expect

from tests.browser.conftest import BATCH_PAGE, signed_in_page
from tests.support.workers import register_live_worker

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.slow]

RENDER_TIMEOUT_MS = 300_000


def test_refused_files_are_named_and_the_good_ones_make_the_batch(stack_env, web_server, chromium,
                                                                 tmp_path, output_dir):
    from shared.store.db import make_engine, make_session_factory

    # Uploads need a live worker of the model (else 409 model_unavailable); none renders here.
    engine = make_engine(stack_env["DATABASE_URL"])
    register_live_worker(make_session_factory(engine), "tiny-random")
    engine.dispose()
    good = tmp_path / "good.png"
    Image.fromarray(np.full((64, 64, 3), 90, np.uint8)).save(good)
    fake = tmp_path / "holiday.jpg"  # a JPEG by name only: the server sniffs the bytes
    fake.write_bytes(b"these are notes, not a photo")
    notes = tmp_path / "notes.txt"  # the browser knows this one already
    notes.write_text("not a photo either")
    empty = tmp_path / "empty.png"  # and this one
    empty.write_bytes(b"")

    page, errors = signed_in_page(chromium, web_server)
    page.goto(web_server + "/batches/new")
    files = page.locator("#file-list li")

    def chosen() -> int:
        return page.evaluate("document.getElementById('files').files.length")

    # Nothing good: the browser refuses notes.txt, the server holiday.jpg; both are named with
    # their reasons and both stay chosen.
    page.set_input_files("#files", [str(fake), str(notes)])
    expect(files.nth(1)).to_have_attribute("data-state", "refused")
    expect(files.nth(1)).to_contain_text("not a photo (text/plain)")
    with page.expect_response(lambda r: r.url.endswith("/batches/new")) as answer:
        page.get_by_role("button", name="Create the batch from the 1 good photo").click()
    assert answer.value.status == 400
    expect(files.nth(0)).to_have_attribute("data-state", "refused")
    expect(files.nth(0)).to_contain_text("holiday.jpg")
    expect(files.nth(0)).to_contain_text("not a photo we can read")
    expect(files.nth(1)).to_contain_text("notes.txt")
    expect(page.locator("#files-problems")).to_have_text(
        "None of the 2 chosen files can be used (the reasons are above).")
    expect(page.locator("#partial-offer")).to_be_hidden()
    assert chosen() == 2

    # All or nothing on "Upload and start": the server refuses holiday.jpg, nothing is made,
    # the files stay chosen and the batch can be made of the good one.
    page.set_input_files("#files", [str(good), str(fake)])
    expect(page.locator('#file-list li[data-state="refused"]')).to_have_count(0)
    with page.expect_response(lambda r: r.url.endswith("/batches/new")) as answer:
        page.get_by_role("button", name="Upload and start").click()
    assert answer.value.status == 400
    expect(files.nth(1)).to_have_attribute("data-state", "refused")
    expect(files.nth(1)).to_contain_text("not a photo we can read")
    expect(files.nth(0)).to_have_attribute("data-state", "ok")
    expect(page.get_by_role("button", name="Create the batch from the 1 good photo")).to_be_visible()
    assert chosen() == 2

    # The browser refuses two, the server a third: the batch is made of the good photo and its
    # message names every file left out, with its reason.
    page.set_input_files("#files", [str(good), str(fake), str(notes), str(empty)])
    expect(page.locator('#file-list li[data-state="refused"]')).to_have_count(2)
    expect(files.nth(3)).to_contain_text("the file is empty")
    page.get_by_role("button", name="Upload and start").click()  # refused until the user chooses
    assert "/batches/new" in page.url
    page.screenshot(path=str(output_dir / "upload-refused.png"), full_page=True)
    page.get_by_role("button", name="Create the batch from the 2 good photos").click()
    page.wait_for_url(BATCH_PAGE)
    expect(page.locator("#items > li")).to_have_count(1)
    expect(page.locator("#items .filename")).to_have_text("good.png")
    flash = page.locator(".flashes")
    expect(flash).to_contain_text("Batch created with 1 photo(s). 3 left out:")
    expect(flash).to_contain_text("notes.txt: not a photo (text/plain)")
    expect(flash).to_contain_text("empty.png: the file is empty.")
    expect(flash).to_contain_text("holiday.jpg: not a photo we can read")
    assert not [e for e in errors if "400" not in e], errors  # the refusals' 400s are expected
    page.context.close()


def test_teach_a_direction_from_the_batch_page_and_use_it(web_server, worker_process, chromium,
                                                         output_dir):
    page, errors = signed_in_page(chromium, web_server)
    page.set_viewport_size({"width": 1366, "height": 900})
    made = page.evaluate("Portal.request('POST', Portal.url('batches'), "
                         "{synthesis: {seeds: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]}, name: 'Ten faces'})")
    page.goto(f"{web_server}/batches/{made['id']}")
    expect(page.locator('#items img[data-kind="preview"]')).to_have_count(10, timeout=RENDER_TIMEOUT_MS)

    page.get_by_role("button", name="Teach a direction").click()
    learn = page.get_by_role("button", name="Learn the direction")
    expect(learn).to_be_disabled()
    cards = page.locator("#items > li")
    for i in range(10):
        cards.nth(i).get_by_label("Has it" if i < 5 else "Lacks it").check()
    page.locator("#learn-name").fill("sunny")
    expect(page.locator("#learn-counts")).to_contain_text("With it: 5 \u00b7 without it: 5")
    cards.nth(4).get_by_label("Not used").check()
    expect(learn).to_be_disabled()  # four are not enough
    cards.nth(4).get_by_label("Has it").check()
    expect(learn).to_be_enabled()
    page.screenshot(path=str(output_dir / "batch-learn-direction.png"))
    learn.click()
    expect(page.locator("#learn-status")).to_contain_text("Learned \u201csunny\u201d from 5 + 5 photos")

    # The new direction is a slider of the editor; moving it renders a preview with it.
    page.locator("#learn-status").get_by_role("link", name="open one").click()
    page.wait_for_url("**/items/*")
    editor = page.locator("#editor")
    expect(editor).to_have_attribute("data-status", "preview_ready")
    group = page.locator("#group-learned")
    slider = group.get_by_label("sunny")
    expect(slider).to_be_visible()
    start = int(page.locator("#preview-img").get_attribute("data-version"))
    slider.focus()
    page.keyboard.press("End")
    expect(editor).to_have_attribute("data-shown-version", str(start + 1), timeout=RENDER_TIMEOUT_MS)
    item_id = page.url.rsplit("/", 1)[1]
    state = page.context.request.get(f"{web_server}/api/v1/items/{item_id}").json()
    assert [(k, v) for k, v in state["edits"].items() if "sunny" in k] == [(k, 1.0) for k in state["edits"]]
    assert len(state["edits"]) == 1
    assert not errors, errors
    page.context.close()
