"""Item statuses and what follows from them alone: which states are active or terminal, which
transitions exist, and a batch's derived status, progress and counts. Pure: no database, so the
models (which store a status) and the state machine (``shared.items.states``, which changes it) both
stand on it without importing each other.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from enum import StrEnum


class ItemStatus(StrEnum):
    QUEUED = "queued"
    PREVIEWING = "previewing"
    PREVIEW_READY = "preview_ready"
    FINALIZING = "finalizing"
    DONE = "done"
    FAILED = "failed"
    CANCELED = "canceled"


S = ItemStatus
ACTIVE = frozenset({S.QUEUED, S.PREVIEWING, S.FINALIZING})  # waiting for a worker
TERMINAL = frozenset({S.DONE, S.FAILED, S.CANCELED})

# to-state -> the states it may be entered from
ALLOWED: dict[ItemStatus, frozenset[ItemStatus]] = {
    S.QUEUED: frozenset({S.FAILED, S.PREVIEWING}),  # retry; requeue after a lost worker
    S.PREVIEWING: frozenset({S.QUEUED, S.PREVIEWING, S.PREVIEW_READY, S.DONE}),
    S.PREVIEW_READY: frozenset({S.PREVIEWING, S.FINALIZING}),  # rendered; final requeue-to-ready
    S.FINALIZING: frozenset({S.PREVIEW_READY}),
    S.DONE: frozenset({S.FINALIZING}),
    S.FAILED: frozenset({S.QUEUED, S.PREVIEWING, S.PREVIEW_READY, S.FINALIZING}),
    S.CANCELED: frozenset({S.QUEUED, S.PREVIEWING, S.PREVIEW_READY, S.FINALIZING}),
}

# Progress weight of each state, for the derived batch progress (0..1).
PROGRESS = {
    S.QUEUED: 0.0,
    S.PREVIEWING: 0.25,
    S.PREVIEW_READY: 0.5,
    S.FINALIZING: 0.75,
    S.DONE: 1.0,
    S.FAILED: 1.0,
    S.CANCELED: 1.0,
}


#: Every word ``batch_status`` can answer.
BATCH_STATUSES = ("empty", "queued", "running", "preview_ready", "done", "failed", "canceled")


# Derived batch state.

def batch_status(statuses: Iterable[str]) -> str:
    """One word for a batch from its items' statuses."""
    counts = Counter(ItemStatus(s) for s in statuses)
    if not counts:
        return "empty"
    total = sum(counts.values())
    if counts[S.CANCELED] == total:
        return "canceled"
    if counts[S.QUEUED] == total:
        return "queued"
    if any(counts[s] for s in ACTIVE):
        return "running"
    if counts[S.PREVIEW_READY]:
        return "preview_ready"
    if counts[S.DONE]:
        return "done"
    if counts[S.FAILED]:
        return "failed"
    return "canceled"


def batch_progress(statuses: Iterable[str]) -> float:
    weights = [PROGRESS[ItemStatus(s)] for s in statuses]
    return round(sum(weights) / len(weights), 4) if weights else 0.0


def status_counts(statuses: Iterable[str]) -> dict[str, int]:
    counts = Counter(statuses)
    return {s.value: counts.get(s.value, 0) for s in ItemStatus}
