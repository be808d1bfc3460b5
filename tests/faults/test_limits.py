"""Limits that cannot be raced or walked around, against the real app on a real HTTP port with
PostgreSQL and its own redis-server: parallel uploads against the quota, a parallel sign-in
burst against the limiter, the portal's new-batch form after the API's 429."""

from __future__ import annotations

import io
import re
import threading
import time

import pytest
import requests
from PIL import Image
from sqlalchemy import func, select

from shared.store.tables import Batch, Item
from tests.faults.web_stack import PASSWORD, QUOTA

pytestmark = [pytest.mark.faults, pytest.mark.integration, pytest.mark.slow]

def _png(seed: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (16, 16), (seed % 256, 90, 40)).save(out, format="PNG")
    return out.getvalue()


def _upload(url: str, token: str, n: int) -> requests.Response:
    files = [("files", (f"p{i}.png", _png(i), "image/png")) for i in range(n)]
    return requests.post(f"{url}/api/v1/batches", files=files,
                         headers={"Authorization": f"Bearer {token}"}, timeout=60)


def test_parallel_uploads_cannot_pass_the_quota_together(limit_stack):
    """8 threads upload 50 files each at once against a quota of 200: at most 4 get 201."""
    user_id, token = limit_stack.user("racer")
    start = threading.Barrier(8)
    answers: list[int] = []

    def one() -> None:
        start.wait()
        answers.append(_upload(limit_stack.url, token, 50).status_code)

    threads = [threading.Thread(target=one) for _ in range(8)]
    began = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    with limit_stack.sessions() as session:
        waiting = session.scalar(select(func.count()).select_from(Item).join(Batch)
                                 .where(Batch.owner_id == user_id))
    print(f"\n8 parallel uploads x 50 files, quota {QUOTA}: answers {sorted(answers)}, "
          f"{waiting} items stored, {time.monotonic() - began:.1f} s")
    assert sorted(answers) == [201] * 4 + [429] * 4
    assert waiting == QUOTA


def _csrf(page: requests.Response) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text)[1]


def _portal_sign_in(url: str, username: str, password: str = PASSWORD) -> requests.Session:
    browser = requests.Session()
    page = browser.get(f"{url}/login", timeout=10)
    answer = browser.post(f"{url}/login", data={"username": username, "password": password,
                                                "csrf_token": _csrf(page)},
                          allow_redirects=False, timeout=10)
    assert answer.status_code == 302, answer.status_code
    return browser


def _portal_new_batch(url: str, browser: requests.Session) -> requests.Response:
    page = browser.get(f"{url}/batches/new", timeout=10)
    return browser.post(f"{url}/batches/new", data={"csrf_token": _csrf(page), "name": "form"},
                        files=[("files", ("a.png", _png(1), "image/png"))],
                        allow_redirects=False, timeout=30)


def test_the_portal_form_counts_against_the_api_submission_limit(limit_stack):
    """12 new batches an hour per user: one from the portal's form, 11 from the API, then the API
    and the form alike answer 429 and nothing more is stored."""
    user_id, token = limit_stack.user("former")
    browser = _portal_sign_in(limit_stack.url, "former")
    assert _portal_new_batch(limit_stack.url, browser).status_code in (302, 303)
    api = [_upload(limit_stack.url, token, 1).status_code for _ in range(12)]
    form = _portal_new_batch(limit_stack.url, browser)
    with limit_stack.sessions() as session:
        stored = session.scalar(select(func.count()).select_from(Batch)
                                .where(Batch.owner_id == user_id))
    print(f"\nsubmissions (12/hour): API answers {api}; the form after the 429: "
          f"{form.status_code} (Retry-After {form.headers.get('Retry-After')}); {stored} stored")
    assert api == [201] * 11 + [429]
    assert form.status_code == 429 and int(form.headers["Retry-After"]) >= 1
    assert stored == 12


def test_a_parallel_sign_in_burst_gets_no_more_than_the_limit(limit_stack):
    """30 wrong passwords at once from one address (default limit: 10 a minute, 100 a day):
    no more than 10 are checked (401), the others answer 429 without a check. Each attempt is
    counted for the address and for the account, one after the other, so in a burst an attempt
    can be 10th of one count and 11th of the other: fewer than 10 may be checked (how many
    depends on the threads' order), never more."""
    limit_stack.user("victim")
    start = threading.Barrier(30)
    answers: list[int] = []

    def guess(i: int) -> None:
        browser = requests.Session()
        page = browser.get(f"{limit_stack.url}/login", timeout=10)
        start.wait()
        answers.append(browser.post(f"{limit_stack.url}/login", timeout=30, data={
            "username": "victim", "password": f"guess{i}", "csrf_token": _csrf(page)}).status_code)

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    print(f"\nparallel sign-in burst of 30: {answers.count(401)} checked (401), "
          f"{answers.count(429)} refused (429)")
    checked = answers.count(401)
    assert len(answers) == 30 and 1 <= checked <= 10
    assert answers.count(429) == 30 - checked
