"""Queue names, task names, the Celery settings both sides must agree on, and the dispatcher
that sends item ids to the workers (web and worker both send; only the worker executes).

Messages carry ids only; the database holds the truth. Previews and finals have their own
queues so a worker can serve either or both, and workers read ``preview`` before ``final``.

Several model configs in one deployment: each worker serves one config. The deployment's
default config (``ANYCOST_MODEL``) keeps the plain queue names; any other config's queues are
suffixed ``@CONFIG`` (``preview@stylegan2-car``): :func:`queue_for`. A message goes to the queue
of its item's batch's model, so only that model's workers take it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from functools import cached_property

from celery import Celery

from shared.platform.settings import Settings

log = logging.getLogger(__name__)

PREVIEW_QUEUE = "preview"
FINAL_QUEUE = "final"
EVALUATE_QUEUE = "evaluate"  # model evaluations (FID, PPL, consistency): long, low priority
QUEUES = (PREVIEW_QUEUE, FINAL_QUEUE, EVALUATE_QUEUE)
MODEL_SEPARATOR = "@"


def queue_for(base: str, model: str | None, default_model: str) -> str:
    """The queue of ``base`` (preview, final, evaluate) for ``model``: the plain name for the
    deployment's default config (and for None), ``base@model`` for any other."""
    if not model or model == default_model:
        return base
    return f"{base}{MODEL_SEPARATOR}{model}"

PREVIEW_TASK = "anycost.render_previews"  # args: [[item_id, edit_version(, edit state)], ...]
FINAL_TASK = "anycost.render_finals"  # args: [item_id, ...]
STRIP_TASK = "anycost.render_strip"  # args: [strip_id] (the direction explorer, preview cost)
EVALUATE_TASK = "anycost.evaluate"  # args: [evaluation_id]


def celery_config(settings: Settings, socket_timeout: float | None = None) -> dict:
    """Celery settings shared by producers and consumers.

    Late ack + reject on worker lost: a render whose worker dies is delivered again. The Redis
    visibility timeout must exceed the hard time limit, or Redis redelivers a long render while it
    is still running; Celery reads it from the broker options (and the result backend's, unused).
    Every Redis connection has a connect and a socket timeout, so a hung Redis (stopped, half-open
    connection) raises instead of blocking; workers' must exceed kombu's 1 s BRPOP.
    """
    visibility = settings.message_visibility
    transport = {
        "visibility_timeout": visibility,
        # Strict order: a worker on both queues takes previews before finals.
        "queue_order_strategy": "priority",
        "socket_connect_timeout": settings.redis_connect_timeout,
        "socket_timeout": socket_timeout or settings.redis_socket_timeout,
        "socket_keepalive": True,
        "health_check_interval": 10,
        # Unacked messages of dead workers come back within a few seconds of their timeout.
        "unacked_restore_interval": min(10, max(1, visibility // 4)),
        "unacked_restore_throttle": 1,
    }
    if socket_timeout is not None:  # a web producer: one connection attempt, no retry loop
        transport["max_retries"] = 0
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
                        STRIP_TASK: {"queue": PREVIEW_QUEUE}, EVALUATE_TASK: {"queue": EVALUATE_QUEUE}},
        "task_create_missing_queues": True,
        "worker_hijack_root_logger": False,
        "broker_connection_timeout": settings.redis_connect_timeout,
    }


def make_celery(settings: Settings, name: str = "anycost",
                socket_timeout: float | None = None) -> Celery:
    app = Celery(name)
    app.conf.update(celery_config(settings, socket_timeout))
    return app


class BrokerUnavailable(ConnectionError):
    """Redis failed a send a moment ago; sends are skipped until ``retry_at`` (the items stay
    unsent in SQL and the reconciler sends them)."""


def chunks(values: Sequence, size: int) -> list[list]:
    return [list(values[i:i + size]) for i in range(0, len(values), max(1, size))]


class Dispatcher:
    """Sends render tasks. Groups items (up to ``render_batch_size``) into one message so a worker
    can render them in one forward pass. Raises kombu/redis errors to the caller, which decides
    (the item stays unsent in SQL and the reconciler sends it later).

    A producer of its own (web) sends with ``redis_publish_timeout`` and no retries, and after a
    failure skips sending for ``BREAKER_SECONDS`` (raising :class:`BrokerUnavailable` at once),
    so requests during an outage or a hang answer in about one timeout, not one per message."""

    BREAKER_SECONDS = 5.0

    def __init__(self, settings: Settings, celery: Celery | None = None):
        self.settings = settings
        self._celery = celery
        self._down_until = 0.0
        self._lock = threading.Lock()

    @cached_property
    def celery(self) -> Celery:
        return self._celery or make_celery(self.settings, name="anycost-producer",
                                           socket_timeout=self.settings.redis_publish_timeout)

    def _send(self, task: str, args: list, queue: str) -> None:
        if time.monotonic() < self._down_until:
            raise BrokerUnavailable(
                f"Redis failed a send less than {self.BREAKER_SECONDS:.0f}s ago")
        try:
            self.celery.send_task(task, args=args, queue=queue, retry=False)
        except Exception:
            with self._lock:
                self._down_until = time.monotonic() + self.BREAKER_SECONDS
            raise

    def queue(self, base: str, model: str | None = None) -> str:
        return queue_for(base, model, self.settings.model)

    def send_previews(self, items: Sequence[tuple], group_size: int | None = None,
                      model: str | None = None) -> int:
        """``items``: (item_id, edit_version) pairs of ``model``'s batches (None: the default
        config), an edit's with the state it wrote as a third element
        (``states.NewPreview.render_state``). Returns the number of messages sent."""
        size = min(group_size or self.settings.render_batch_size, self.settings.render_batch_size)
        groups = chunks([list(pair) for pair in items], size)
        for group in groups:
            self._send(PREVIEW_TASK, [group], self.queue(PREVIEW_QUEUE, model))
        return len(groups)

    def send_evaluation(self, evaluation_id: str) -> None:
        self.celery.send_task(EVALUATE_TASK, args=[evaluation_id], queue=EVALUATE_QUEUE)

    def send_finals(self, item_ids: Sequence[str], group_size: int | None = None,
                    model: str | None = None) -> int:
        size = min(group_size or self.settings.render_batch_size, self.settings.render_batch_size)
        groups = chunks(list(item_ids), size)
        for group in groups:
            self._send(FINAL_TASK, [group], self.queue(FINAL_QUEUE, model))
        return len(groups)

    def send_strip(self, strip_id: str, model: str | None = None) -> None:
        """One direction strip (previews along a direction); it rides the preview queue."""
        self.celery.send_task(STRIP_TASK, args=[strip_id], queue=self.queue(PREVIEW_QUEUE, model))
