"""The batch page's cards and the editor's filmstrip follow the batch's pushed events: both pages
are open before any worker runs, stay quiet (no request at all) while nothing happens, and
then, without a reload, show each photo's preview as it renders and a final as it is made.

The upload is accepted before the worker starts thanks to a registered heartbeat
(tests.support.workers); the real Celery worker process starts mid-test (``worker_process``
asked for late), so the previews are rendered strictly after the pages are watching."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import signed_in_page
from tests.support.workers import register_live_worker

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.slow]

RENDER_TIMEOUT_MS = 300_000
SETTLE_MS = 4_000  # the loads a page makes as it opens (before and as its stream opens)
QUIET_MS = 6_000  # longer than any timer a page could poll on while its stream is open


def _json_loads(requests: list[str]) -> list[str]:
    """The pages' reads of the batch's or an item's JSON (not images, not the event stream)."""
    json_url = re.compile(r"/api/v1/(batches|items)/[0-9a-f]{32}(\?.*)?$")
    return [u for u in requests if json_url.search(u)]


def test_cards_and_filmstrip_refresh_as_previews_and_finals_arrive(request, stack_env, web_server,
                                                                   chromium, output_dir):
    from shared.store.db import make_engine, make_session_factory

    engine = make_engine(stack_env["DATABASE_URL"])
    register_live_worker(make_session_factory(engine), "tiny-random")
    engine.dispose()
    batch_page, errors = signed_in_page(chromium, web_server)
    made = batch_page.evaluate("Portal.request('POST', Portal.url('batches'), "
                               "{synthesis: {seeds: [11, 12, 13]}, name: 'Live'})")
    batch_id = made["id"]
    assert made["status"] == "queued"
    item_ids = [i["id"] for i in made["items"]]
    batch_page.goto(f"{web_server}/batches/{batch_id}")
    editor = batch_page.context.new_page()
    editor.set_default_timeout(30_000)
    editor.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    editor.set_viewport_size({"width": 1366, "height": 768})
    editor.goto(f"{web_server}/items/{item_ids[0]}")
    for page in (batch_page, editor):
        expect(page.locator("#batch, #editor")).to_have_attribute("data-stream", "open")
        page.evaluate("window.notReloaded = true")
    frames = editor.locator(".filmstrip .frame a")
    expect(frames).to_have_count(3)
    expect(editor.locator(".filmstrip .frame img")).to_have_count(0)  # nothing rendered yet
    expect(batch_page.locator('#items img[data-kind="preview"]')).to_have_count(0)

    # Nothing happens: once the loads of the pages' start are over, neither page asks for
    # anything (no polling behind the stream, busy as the batch is).
    editor.wait_for_timeout(SETTLE_MS)
    requests: list[str] = []
    for page in (batch_page, editor):
        page.on("request", lambda r: requests.append(r.url))
    editor.wait_for_timeout(QUIET_MS)
    assert _json_loads(requests) == [], requests

    request.getfixturevalue("worker_process")  # the worker starts: previews render now
    for item_id in item_ids[1:]:
        frame = editor.locator(f'.filmstrip a[data-item-id="{item_id}"]')
        expect(frame.locator("img")).to_have_attribute(
            "src", re.compile(rf"/api/v1/items/{item_id}/preview\?v=\d+$"), timeout=RENDER_TIMEOUT_MS)
        expect(frame).to_have_attribute("data-status", "preview_ready")
    expect(editor.locator("#editor")).to_have_attribute("data-status", "preview_ready",
                                                        timeout=RENDER_TIMEOUT_MS)
    own = editor.locator(f'.filmstrip a[data-item-id="{item_ids[0]}"]')
    expect(own.locator("img")).to_have_count(1)  # the editor's own photo too
    expect(batch_page.locator('#items img[data-kind="preview"]')).to_have_count(
        3, timeout=RENDER_TIMEOUT_MS)
    expect(batch_page.locator("#batch-progress-text")).to_have_text(
        "Previews 3/3 ready \u00b7 finals 0/3")
    editor.screenshot(path=str(output_dir / "filmstrip-live-1366x768.png"))

    # A final made elsewhere (the API) appears on the batch page and in the filmstrip.
    answer = editor.evaluate(
        f"fetch('/api/v1/items/{item_ids[2]}/finalize', {{method: 'POST', headers: "
        "{'X-CSRF-Token': Portal.csrfToken(), 'Content-Type': 'application/json'}, body: '{}'})"
        ".then(r => r.status)")
    assert answer == 202, answer
    card = batch_page.locator(f"#item-{item_ids[2]}")
    expect(card.locator('.thumb-final img[data-kind="final"]')).to_have_count(
        1, timeout=RENDER_TIMEOUT_MS)
    expect(batch_page.locator("#batch-progress-text")).to_have_text(
        "Previews 3/3 ready \u00b7 finals 1/3")
    finalized = editor.locator(f'.filmstrip a[data-item-id="{item_ids[2]}"]')
    expect(finalized).to_have_attribute("data-status", "done", timeout=RENDER_TIMEOUT_MS)
    expect(editor.locator(".filmstrip .frame.status-done")).to_have_count(1)
    for page in (batch_page, editor):  # all of it without a reload
        assert page.evaluate("window.notReloaded === true")
    assert not errors, errors
    batch_page.context.close()
