"""One bad item fails alone: per-item failure handling, batched passes that fall back to one by
one when a group fails, and the grouping of a task's items by cost. A soft time limit and a
database outage are not an item's fault: they go up to the task.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from celery.exceptions import SoftTimeLimitExceeded

from shared.codes.errors import ErrorCode
from shared.items.states import ItemStatus
from shared.platform.logging import bind
from shared.platform.queue import chunks
from shared.store.db import is_transient
from worker.render import store
from worker.render.imaging.errors import ImageError
from worker.render.job import RenderJob
from worker.render.runtime import Runtime

log = logging.getLogger(__name__)

INTERNAL_ERROR = str(ErrorCode.INTERNAL_ERROR)


@dataclass
class Report:
    """What one task did, for logs and tests."""

    completed: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # item id -> error code
    skipped: list[str] = field(default_factory=list)  # not taken, or dropped at the end
    finals_queued: list[str] = field(default_factory=list)

    def absorb(self, other: Report) -> None:
        """Add what a second run over some of the same message's items did."""
        self.completed += other.completed
        self.failed.update(other.failed)
        self.skipped += other.skipped
        self.finals_queued += other.finals_queued


class Timer:
    def __init__(self) -> None:
        self.start = time.perf_counter()

    def lap(self) -> float:
        now = time.perf_counter()
        seconds, self.start = now - self.start, now
        return seconds


def fail(rt: Runtime, job: RenderJob, code: str, message: str, stage: ItemStatus, report: Report) -> None:
    job.done = True
    job.error = (code, message)
    if store.fail(rt, job, code, message, stage):
        report.failed[job.item_id] = code
    else:
        report.skipped.append(job.item_id)


@contextmanager
def per_item(rt: Runtime, job: RenderJob, stage: ItemStatus, report: Report) -> Iterator[None]:
    """Turn an exception in one item's work into that item's failure; a soft time limit goes up
    to the task, which fails everything unfinished. Log records inside carry the ids."""
    with bind(batch_id=job.batch_id, item_id=job.item_id):
        try:
            yield
        except SoftTimeLimitExceeded:
            raise
        except Exception as exc:
            if is_transient(exc):  # the database, not the photo: the task gives the items back
                raise
            fail_item(rt, job, stage, report, exc)


def fail_item(rt: Runtime, job: RenderJob, stage: ItemStatus, report: Report, exc: Exception) -> None:
    if isinstance(exc, ImageError):
        log.info("item %s refused: %s", job.item_id, exc)
        fail(rt, job, exc.code, exc.message, stage, report)
        return
    log.error("item %s failed", job.item_id, exc_info=exc)
    fail(rt, job, INTERNAL_ERROR, f"{type(exc).__name__}: {exc}", stage, report)


def group_ids(group: list[RenderJob]) -> dict:
    """Log fields for a batched pass: the batch when the group has one, and all item ids."""
    batches = {j.batch_id for j in group}
    return {"batch_id": batches.pop() if len(batches) == 1 else None,
            "item_ids": [j.item_id for j in group]}


def batched(
    rt: Runtime, jobs: list[RenderJob], work: Callable[[list[RenderJob]], None], stage: ItemStatus,
    report: Report, size: int | None = None,
) -> None:
    """Run ``work`` on groups of up to ``size`` (render_batch_size) jobs; when a group fails,
    run its jobs one by one so only the culprit fails."""
    for group in chunks(jobs, size or rt.settings.render_batch_size):
        try:
            with bind(**group_ids(group)):
                work(group)
        except SoftTimeLimitExceeded:
            raise
        except Exception as exc:
            if is_transient(exc):
                raise
            if len(group) == 1:
                with per_item(rt, group[0], stage, report):
                    raise
                continue
            log.warning("a batched pass over %d items failed; retrying one by one", len(group))
            for job in group:
                with per_item(rt, job, stage, report):
                    work([job])


def by_cost(jobs: list[RenderJob]) -> list[list[RenderJob]]:
    groups: dict[tuple[float, int], list[RenderJob]] = {}
    for job in jobs:
        groups.setdefault((job.cost.channels, job.cost.resolution), []).append(job)
    return list(groups.values())


def by_preview_cost(jobs: list[RenderJob]) -> list[list[RenderJob]]:
    groups: dict[tuple[float, int], list[RenderJob]] = {}
    for job in jobs:
        if job.preview_cost is not None:
            groups.setdefault((job.preview_cost.channels, job.preview_cost.resolution), []).append(job)
    return list(groups.values())


def live(jobs: list[RenderJob]) -> list[RenderJob]:
    return [j for j in jobs if not j.done]
