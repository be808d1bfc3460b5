"""A worker process that cannot load its model: say why where the web side reads it (a heartbeat
row with ``load_error`` and ``load_fix``, see ``shared.commands.availability``), then stop the
worker, since a worker without a model must not take its queues' messages.

Celery only logs an exception raised in ``worker_process_init``; the pool process would live on
without a model and fail every task it took. ``worker.process.celery_app`` calls :func:`report`
and :func:`stop_worker` instead.
"""

from __future__ import annotations

import logging
import os
import signal

from shared.catalog.configs import UnknownConfigError
from shared.platform.settings import Settings
from shared.store.db import make_engine, make_session_factory
from worker.anycost.bundle import WeightsNotInstalledError
from worker.anycost.checkpoints import CheckpointError
from worker.anycost.weights import WeightsError
from worker.anycost.weights.routes import fix_for
from worker.process.heartbeat import report_load_failure
from worker.render.runtime import WorkerStartupError

log = logging.getLogger(__name__)

READ_THE_LOG = "read the worker's log (under make run: var/log/worker.log), fix the cause, restart it"


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def describe(exc: BaseException, settings: Settings) -> tuple[str, str]:
    """``(reason, fix)`` for a model that did not load: one line each."""
    if isinstance(exc, WeightsNotInstalledError):
        return exc.reason, exc.fix
    if isinstance(exc, CheckpointError | UnknownConfigError | WeightsError):
        return _one_line(exc), fix_for(settings.served_model, settings.weights_dir)
    if isinstance(exc, WorkerStartupError):
        return _one_line(exc), ("correct the worker's settings (ANYCOST_DEVICE, ANYCOST_PRECISION) "
                                "and restart it")
    return f"{type(exc).__name__}: {_one_line(exc)}", READ_THE_LOG


def report(settings: Settings, node: str, queues: str, exc: BaseException) -> None:
    """Write node ``node``'s failure row (own connection: the runtime never came to be)."""
    reason, fix = describe(exc, settings)
    engine = make_engine(settings.database_url)
    try:
        report_load_failure(make_session_factory(engine), node, model_name=settings.served_model,
                            queues=queues, reason=reason, fix=fix, device=settings.device)
    finally:
        engine.dispose()
    log.error("model %s not loaded: %s. Fix: %s", settings.served_model, reason, fix)


def stop_worker() -> None:
    """Ask the worker's main process (this pool process's parent) for a warm shutdown."""
    os.kill(os.getppid(), signal.SIGTERM)
