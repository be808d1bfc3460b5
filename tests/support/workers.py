"""A live worker's heartbeat for tests that create batches with no worker process beside them.

Uploads and seeds need a live worker of their model (``shared.commands.availability``: 409
``model_unavailable`` otherwise). Tests of other things (the API, the portal, the queue, recovery
with an in-process pipeline) register one with :func:`register_live_worker`; the tests of
availability itself use real worker processes and real heartbeats.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker

from shared.store.tables import utcnow
from worker.process.heartbeat import Heartbeat

LIVE_WORKER = "live@tests:0"


def register_live_worker(sessions: sessionmaker[Session], model: str,
                         name: str = LIVE_WORKER) -> str:
    """The heartbeat row of a worker that loaded ``model`` and takes its previews. Stamped a year
    ahead, so it stays live however long the test runs and whatever its ``heartbeat_timeout``;
    it holds no items (nothing is reaped for it) and takes no finals (finals' group sizes count
    the final queue's workers, so they are those of a test without it). Returns its name."""
    Heartbeat(sessions, name, interval=60, queues="preview", model_name=model,
              pretrained=False).beat(now=utcnow() + timedelta(days=365))
    return name
