"""The Celery tasks: thin, explicitly named, one queue message = one group of items.

Each task hands its ids to ``worker.render.pipeline`` with this process's runtime; all the work and all
the state changes happen there. Results go to SQL, never to a Celery result backend.

A task that dies (the database stayed away longer than the store's retries, a bug) gives its
items back (``store.release``: unheld and unsent, so the reconciler sends them again) and is then
acked as failed. When even that cannot be written, the message is rejected back into the queue
instead: a task is never acked while its items' state says a worker holds them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from celery import Celery
from celery.exceptions import Reject

from shared.platform.queue import EVALUATE_TASK, FINAL_TASK, PREVIEW_TASK, STRIP_TASK
from shared.platform.settings import Settings, get_settings
from worker.render import pipeline, store, strips
from worker.render.runtime import Runtime, get_runtime

log = logging.getLogger(__name__)


def render_previews(items: list[list]) -> dict:
    """``items``: ``[[item_id, edit_version], ...]`` -> previews stored, items preview_ready.
    An edit's entry carries the state the edit wrote as a third element
    (``states.NewPreview.render_state``)."""
    rt = get_runtime()
    pairs, render_states = preview_entries(items)
    return _run(rt, lambda: pipeline.run_previews(rt, pairs, render_states),
                [i for i, _ in pairs])


def preview_entries(items: list[list]) -> tuple[list[tuple[str, int]], dict[str, object]]:
    """A preview message's ``[(item_id, edit_version), ...]`` and its edits' states by item."""
    pairs = [(str(entry[0]), int(entry[1])) for entry in items]
    return pairs, {str(entry[0]): entry[2] for entry in items if len(entry) > 2}


def render_finals(item_ids: list[str]) -> dict:
    """``item_ids``: items that are finalizing -> finals stored, items done."""
    rt = get_runtime()
    ids = [str(i) for i in item_ids]
    return _run(rt, lambda: pipeline.run_finals(rt, ids), ids)


def _run(rt: Runtime, work: Callable[[], pipeline.Report], item_ids: list[str]) -> dict:
    try:
        return _summary(work())
    except Exception as exc:
        log.error("task over %d items died: %s", len(item_ids), exc, exc_info=exc)
        try:
            released = store.release(rt, item_ids)
        except Exception as release_exc:
            log.error("items not released (%s): the message goes back to the queue",
                      release_exc)
            raise Reject(str(exc), requeue=True) from exc
        log.warning("%d items released; they are sent again", released)
        raise


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
    """Bind the tasks to ``app`` under their shared names (shared.platform.queue)."""
    settings = settings or get_settings()
    # shared=False: Celery would otherwise hand these (with this app's limits) to every app
    # created later in the process.
    app.task(name=PREVIEW_TASK, ignore_result=True, shared=False)(render_previews)
    app.task(name=FINAL_TASK, ignore_result=True, shared=False)(render_finals)
    app.task(name=STRIP_TASK, ignore_result=True, shared=False)(render_strip)
    # Evaluations run for minutes to hours: their own limits, not a render's.
    app.task(name=EVALUATE_TASK, ignore_result=True, shared=False,
             soft_time_limit=settings.eval_time_limit,
             time_limit=settings.eval_time_limit + 60)(evaluate)
