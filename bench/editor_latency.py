"""The editor as a person sees it: time from a slider move to the new preview on screen, measured
by the page itself in headless Chromium.

    python -m bench.editor_latency                    # tiny-random, 10 moves
    python -m bench.editor_latency --model 1024       # the 1024 px architecture, random weights

The page (web/static/item.js) records ``performance.measure("slider-to-preview")`` from the
slider's input event to the second animation frame after the new preview is in the <img> (so
the frame that shows it), through everything in between: the edit request, the worker's render,
the pushed event, the image download and decode. Each move waits for the one before to be on
screen. System: the portal in a werkzeug thread of this process, a private Redis, SQLite, one
Celery worker process on the CPU (``--threads`` torch threads), Debian's Chromium.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from shared.platform.settings import Settings
from tests.support.stack import WebServer, WorkerProcess

REPO = Path(__file__).resolve().parent.parent

CHROMIUM = "/usr/bin/chromium"
USERNAME, PASSWORD = "bench", "a long bench password"
TIMEOUT_MS = 600_000

#: The page's measures so far: each move's total (ms) and, from the marks of the version it
#: shows, when the edit request was answered, the pushed event came and the image was loaded
#: (ms after the move).
READ = """() => performance.getEntriesByName("slider-to-preview").map(m => {
  const at = name => {
    const mark = performance.getEntriesByName(name).filter(e => e.detail === m.detail).pop();
    return mark ? mark.startTime - m.startTime : null;
  };
  return { total: m.duration, answered: at("edit-answered"), event: at("preview-event"),
           loaded: at("preview-loaded") };
})"""
PHASES = ("answered", "event", "loaded", "total")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", choices=("tiny-random", "1024"), default="tiny-random")
    p.add_argument("--moves", type=int, default=10, help="timed moves (after two warm-up moves)")
    p.add_argument("--threads", type=int, default=1, help="the worker's torch threads (1: on a shared, busy CPU more threads only wait for each other)")
    p.add_argument("--screenshot", default=None, help="save the editor here at the end")
    return p.parse_args(argv)


def sample_photo(workdir: Path) -> Path:
    """skimage's astronaut (public domain, NASA) as a PNG."""
    from PIL import Image
    from skimage import data

    path = workdir / "astronaut.png"
    Image.fromarray(data.astronaut()).save(path)
    return path


def open_editor(page, base: str, photo: Path) -> None:
    """Sign in, upload the photo through the portal, wait for its preview, open the editor."""
    page.goto(base + "/login")
    page.get_by_label("Username").fill(USERNAME)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/batches")
    page.goto(base + "/batches/new")
    page.set_input_files("#files", [str(photo)])
    page.get_by_role("button", name="Upload and start").click()
    page.wait_for_url("**/batches/*")
    page.locator('#items img[data-kind="preview"]').wait_for(timeout=TIMEOUT_MS)
    page.locator("#items").get_by_role("link", name="Edit").first.click()
    page.wait_for_url("**/items/*")
    page.wait_for_selector('#editor[data-status="preview_ready"]', timeout=TIMEOUT_MS)


def timed_moves(page, n: int) -> list[dict]:
    """``n`` slider moves (End and Home in turn on the focused Smiling slider), each after the
    one before is on screen; the page's own measures of them (``READ``)."""
    slider = page.get_by_label("Smiling")
    slider.focus()
    out = []
    for i in range(n):
        before = len(page.evaluate(READ))
        page.keyboard.press("End" if i % 2 == 0 else "Home")
        page.wait_for_function(f"() => performance.getEntriesByName('slider-to-preview').length > {before}",
                               timeout=TIMEOUT_MS, polling=20)
        time.sleep(0.2)  # let the page fetch the item's JSON before the next move
        move = page.evaluate(READ)[-1]
        move["worker"] = item_timings(page)
        out.append(move)
    return out


def item_timings(page) -> dict:
    """The item's stage timings (seconds) as the API has them: the newest of each stage, so the
    first preview's decode, faces and encode stay there after every edit."""
    return page.evaluate(
        "async () => (await Portal.request('GET', document.getElementById('editor').dataset.jsonUrl)).timings")


def edit_stages(before: dict, moves: list[dict]) -> list[str]:
    """The stages the timed previews ran: those whose time changed during the moves (not the
    first preview's decode, faces and encode, which an edit does not run again)."""
    keys = sorted({k for m in moves for k in m["worker"]})
    return [k for k in keys if any(m["worker"].get(k) != before.get(k) for m in moves)]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from playwright.sync_api import sync_playwright

    from shared.store.migrate import upgrade
    from tests.support.redis_server import session_server
    from web import create_app
    from web.auth import create_user
    from web.extensions import services

    workdir = Path(tempfile.mkdtemp(prefix="anycost-editor-latency-"))
    weights_dir = str(workdir / "weights")
    model = "tiny-random"
    if args.model == "1024":
        from bench.random_weights import install_random_1024

        model = install_random_1024(weights_dir)
    redis_url = session_server().url(0)  # private: never flush a Redis someone else uses
    database_url = f"sqlite:///{workdir / 'bench.db'}"
    upgrade(database_url)
    settings = Settings(database_url=database_url, redis_url=redis_url, model=model,
                        weights_dir=weights_dir, torch_threads=args.threads, render_batch_size=1,
                        task_soft_time_limit=3000, task_hard_time_limit=3600, secret_key="bench")
    worker = WorkerProcess(settings, "editor-latency", workdir / "worker.log")
    app = create_app(settings)
    server = WebServer(app)
    try:
        with services(app).sessions.begin() as session:
            create_user(session, USERNAME, PASSWORD)
        worker.wait_ready(timeout=1800)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=[
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
            page = browser.new_page(viewport={"width": 1366, "height": 768})
            page.set_default_timeout(60_000)
            open_editor(page, server.url, sample_photo(workdir))
            timed_moves(page, 2)  # warm-up: the worker's caches, the browser's connections
            before = item_timings(page)
            moves = timed_moves(page, args.moves)
            cost = page.evaluate("async () => (await Portal.request('GET', "
                                 "document.getElementById('editor').dataset.jsonUrl)).preview_cost")
            if args.screenshot:
                page.screenshot(path=args.screenshot)
            browser.close()
    finally:
        server.stop()
        worker.stop()
        services(app).close()
    print(f"model {model}, preview at {cost['channels']:g} channels and {cost['resolution']} px, "
          f"{args.threads} torch threads, {args.moves} moves, Chromium at 1366x768")
    totals = [m["total"] for m in moves]
    print("slider move -> preview on screen, ms: " + ", ".join(f"{t:.0f}" for t in totals))
    print(f"p50 {statistics.median(totals):.0f} ms, min {min(totals):.0f} ms, max {max(totals):.0f} ms")
    print("p50 ms after the move: " + ", ".join(
        f"{phase} {statistics.median(v):.0f}" for phase in PHASES
        if (v := [m[phase] for m in moves if m[phase] is not None])))
    stages = edit_stages(before, moves)
    print("worker's stages of those previews, p50 ms: " + ", ".join(
        f"{k} {1000 * statistics.median(m['worker'][k] for m in moves if k in m['worker']):.0f}"
        for k in stages))
    return 0


if __name__ == "__main__":
    sys.exit(main())
