"""Events from a real system: photos go through a real Celery worker process (auto-finalized),
the worker's transitions write the outbox, a real ``flask --app web webhooks deliver`` process
POSTs every event to a signature-checking receiver on 127.0.0.1, and the server-sent event stream
over real HTTP follows the batch to ``batch.completed``; SQLite and PostgreSQL."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections import Counter

import pytest
import requests
from sqlalchemy import select

from shared.store.tables import WebhookDelivery
from tests.support.stack import REPO, real_photos, settled, worker_env
from tests.support.webhook_receiver import Receiver

pytestmark = [pytest.mark.integration, pytest.mark.slow]

RECIPE = {"output": "crop", "edits": {"smiling": 0.5}, "auto_finalize": True,
          "preview": {"channels": 0.5, "resolution": 32},
          "final": {"channels": 1.0, "resolution": 64}}


def _read_stream(url: str, headers: dict, out: list) -> None:
    with requests.get(url, headers=headers, stream=True, timeout=120) as response:
        for line in response.iter_lines(decode_unicode=True):
            if line.startswith("event: "):
                out.append(line[len("event: "):])


def test_worker_events_reach_the_webhook_and_the_stream(stack):
    import dataclasses

    api = stack.api
    receiver = Receiver(failures=1)
    # The receiver is on 127.0.0.1: the web side must admit private URLs (as the sender does).
    web_settings = stack.services.settings
    stack.services.settings = dataclasses.replace(web_settings, webhook_allow_private=True)
    env = {**worker_env(stack.settings), "ANYCOST_WEBHOOK_ALLOW_PRIVATE": "true",
           "ANYCOST_WEBHOOK_BACKOFF_SECONDS": "0.1"}
    sender = subprocess.Popen([sys.executable, "-m", "flask", "--app", "web", "webhooks",
                               "deliver"], cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE)
    try:
        secret = api.http.post(f"{api.base}/webhooks/secret")
        assert secret.status_code == 201
        receiver.secret = secret.json()["secret"]
        parts = [("files", (name, data, ctype)) for name, data, ctype in real_photos()]
        created = api.http.post(f"{api.base}/batches", files=parts, data={
            "recipe": json.dumps(RECIPE), "webhook_url": receiver.url})
        assert created.status_code == 201, created.text
        batch_id = created.json()["id"]
        kinds: list[str] = []
        reader = threading.Thread(target=_read_stream, args=(
            f"{api.base}/batches/{batch_id}/events?timeout=150", dict(api.http.headers), kinds))
        reader.start()
        batch = api.wait(batch_id, settled("done", "failed"))
        reader.join(timeout=60)
        assert not reader.is_alive()  # the stream ended by itself at batch.completed
        assert kinds[0] == "snapshot" and kinds[-1] == "batch.completed"
        assert batch["status"] == "done"

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with stack.services.sessions() as session:
                rows = session.scalars(select(WebhookDelivery)).all()
            if len(rows) == 7 and all(r.status == "delivered" for r in rows):
                break
            time.sleep(0.2)
        assert sorted(r.status for r in rows) == ["delivered"] * 7, [(r.status, r.last_error)
                                                                     for r in rows]
        assert all(r.attempts == 2 for r in rows)  # the receiver refused each first try
        assert receiver.received and all(r["verified"] for r in receiver.received)
        firsts = {r["id"]: json.loads(r["body"]) for r in receiver.received if r["try"] == 1}
        assert Counter(e["type"] for e in firsts.values()) == {
            "item.preview_ready": 3, "item.done": 3, "batch.completed": 1}
        assert Counter(kinds[1:]) == Counter(e["type"] for e in firsts.values())
    finally:
        sender.terminate()
        sender.wait(timeout=20)
        receiver.close()
        stack.services.settings = web_settings
