"""Queue names, task names, the Celery settings both sides must agree on, and the dispatcher
that sends item ids to the workers (web and worker both send; only the worker executes).

Messages carry ids only; the database holds the truth. Previews and finals have their own
queues so a worker can serve either or both, and workers read ``preview`` before ``final``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import cached_property

from celery import Celery

from shared.settings import Settings

log = logging.getLogger(__name__)

PREVIEW_QUEUE = "preview"
FINAL_QUEUE = "final"
EVALUATE_QUEUE = "evaluate"  # model evaluations (FID, PPL, consistency): long, low priority
QUEUES = (PREVIEW_QUEUE, FINAL_QUEUE, EVALUATE_QUEUE)

PREVIEW_TASK = "anycost.render_previews"  # args: [[item_id, edit_version], ...]
FINAL_TASK = "anycost.render_finals"  # args: [item_id, ...]
EVALUATE_TASK = "anycost.evaluate"  # args: [evaluation_id]


def celery_config(settings: Settings) -> dict:
    """Celery settings shared by producers and consumers.

    Late ack + reject on worker lost: a render whose worker dies is delivered again. The Redis
    visibility timeout must exceed the hard time limit, or Redis redelivers a long render while it
    is still running; Celery reads it from the broker options (and the result backend's, unused).
    """
    visibility = settings.task_hard_time_limit * 2 + 60
    transport = {
        "visibility_timeout": visibility,
        # Strict order: a worker on both queues takes previews before finals.
        "queue_order_strategy": "priority",
    }
    return {
        "broker_url": settings.redis_url,
        "result_backend": None,
        "task_ignore_result": True,
        "task_serializer": "json",
        "accept_content": ["json"],
        "result_serializer": "json",
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "task_acks_on_failure_or_timeout": True,
        "worker_prefetch_multiplier": 1,
        "task_soft_time_limit": settings.task_soft_time_limit,
        "task_time_limit": settings.task_hard_time_limit,
        "broker_transport_options": transport,
        "result_backend_transport_options": {"visibility_timeout": visibility},
        "visibility_timeout": visibility,
        "broker_connection_retry_on_startup": True,
        "task_default_queue": PREVIEW_QUEUE,
        "task_routes": {PREVIEW_TASK: {"queue": PREVIEW_QUEUE}, FINAL_TASK: {"queue": FINAL_QUEUE},
                        EVALUATE_TASK: {"queue": EVALUATE_QUEUE}},
        "task_create_missing_queues": True,
        "worker_hijack_root_logger": False,
        "broker_connection_timeout": 5,
    }


def make_celery(settings: Settings, name: str = "anycost") -> Celery:
    app = Celery(name)
    app.conf.update(celery_config(settings))
    return app


def chunks(values: Sequence, size: int) -> list[list]:
    return [list(values[i:i + size]) for i in range(0, len(values), max(1, size))]


class Dispatcher:
    """Sends render tasks. Groups items (up to ``render_batch_size``) into one message so a worker
    can render them in one forward pass. Raises kombu/redis errors to the caller, which decides
    (the item stays queued in SQL and the reaper sends it again later)."""

    def __init__(self, settings: Settings, celery: Celery | None = None):
        self.settings = settings
        self._celery = celery

    @cached_property
    def celery(self) -> Celery:
        return self._celery or make_celery(self.settings, name="anycost-producer")

    def send_previews(self, items: Sequence[tuple[str, int]], group_size: int | None = None) -> int:
        """``items``: (item_id, edit_version) pairs. Returns the number of messages sent."""
        size = min(group_size or self.settings.render_batch_size, self.settings.render_batch_size)
        groups = chunks([list(pair) for pair in items], size)
        for group in groups:
            self.celery.send_task(PREVIEW_TASK, args=[group], queue=PREVIEW_QUEUE)
        return len(groups)

    def send_evaluation(self, evaluation_id: str) -> None:
        self.celery.send_task(EVALUATE_TASK, args=[evaluation_id], queue=EVALUATE_QUEUE)

    def send_finals(self, item_ids: Sequence[str], group_size: int | None = None) -> int:
        size = min(group_size or self.settings.render_batch_size, self.settings.render_batch_size)
        groups = chunks(list(item_ids), size)
        for group in groups:
            self.celery.send_task(FINAL_TASK, args=[group], queue=FINAL_QUEUE)
        return len(groups)
