"""The Celery tasks: thin, explicitly named, one queue message = one group of items.

Each task hands its ids to ``worker.pipeline`` with this process's runtime; all the work and all
the state changes happen there. Results go to SQL, never to a Celery result backend.
"""

from __future__ import annotations

import logging

from celery import Celery

from shared.queue import EVALUATE_TASK, FINAL_TASK, PREVIEW_TASK, STRIP_TASK
from shared.settings import Settings, get_settings
from worker import pipeline, strips
from worker.runtime import get_runtime

log = logging.getLogger(__name__)


def render_previews(items: list[list]) -> dict:
    """``items``: ``[[item_id, edit_version], ...]`` -> previews stored, items preview_ready."""
    report = pipeline.run_previews(get_runtime(), [(i, v) for i, v in items])
    return _summary(report)


def render_finals(item_ids: list[str]) -> dict:
    """``item_ids``: items that are finalizing -> finals stored, items done."""
    report = pipeline.run_finals(get_runtime(), list(item_ids))
    return _summary(report)


def render_strip(strip_id: str) -> str:
    """``strip_id``: a queued direction strip -> its image stored, the strip done (or failed)."""
    return strips.run_strip(get_runtime(), str(strip_id))


def evaluate(evaluation_id: str) -> dict:
    """``evaluation_id``: a queued evaluation -> its result (or error code) stored."""
    from worker.evaluate.jobs import run_evaluation  # torch-heavy metrics load on first use

    return {"evaluation": evaluation_id, "status": run_evaluation(get_runtime(), evaluation_id)}


def _summary(report: pipeline.Report) -> dict:
    # Celery logs the return value of a task: a one-line account of what the message did.
    return {
        "completed": len(report.completed),
        "failed": report.failed,
        "skipped": len(report.skipped),
    }


def register(app: Celery, settings: Settings | None = None) -> None:
    """Bind the tasks to ``app`` under their shared names (shared.queue)."""
    settings = settings or get_settings()
    app.task(name=PREVIEW_TASK, ignore_result=True)(render_previews)
    app.task(name=FINAL_TASK, ignore_result=True)(render_finals)
    app.task(name=STRIP_TASK, ignore_result=True)(render_strip)
    # Evaluations run for minutes to hours: their own limits, not a render's.
    app.task(name=EVALUATE_TASK, ignore_result=True, soft_time_limit=settings.eval_time_limit,
             time_limit=settings.eval_time_limit + 60)(evaluate)
