"""Which models can take work now, and why one cannot, read from the workers' heartbeat rows.

A worker beats its ``WorkerHeartbeat`` row while it serves its model. One that could not load its
model writes a row with ``load_error`` (the reason) and ``load_fix`` (what to do) before it stops
(``worker.process.heartbeat.report_load_failure``). A model is *live* when a worker that loaded
it and consumes its preview queue beat within ``heartbeat_timeout``. Uploads and seeds (409
``model_unavailable``), ``/readyz``, ``GET /api/v1/models`` and the portal's banner all ask here,
so they tell the same story.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import distinct, select
from sqlalchemy.orm import Session

from shared.codes.errors import RequestErrorCode
from shared.commands.errors import CommandError
from shared.platform.queue import PREVIEW_QUEUE
from shared.platform.settings import Settings
from shared.store.tables import WorkerHeartbeat, utcnow

#: What to do when no worker of a model has ever reported.
START_A_WORKER = ("start a worker for it (`make run` does; by hand: ANYCOST_WORKER_MODEL={model} "
                  "celery -A worker.process.celery_app worker -Q preview,final); its log says "
                  "why it stops")


@dataclass(frozen=True)
class Outage:
    """Why a model has no live worker: the last report of one of its workers, if any."""

    model: str
    reason: str
    fix: str
    worker: str | None = None  # the worker whose report this is
    reported_at: datetime | None = None

    def message(self) -> str:
        """One paragraph for an error body: the model, the reason, the fix."""
        return f"model {self.model} is unavailable: {self.reason}. Fix: {self.fix}"

    def as_dict(self) -> dict:
        return {"name": self.model, "reason": self.reason, "fix": self.fix, "worker": self.worker,
                "reported_at": self.reported_at.isoformat() + "Z" if self.reported_at else None}


def _cutoff(settings: Settings) -> datetime:
    return utcnow() - timedelta(seconds=settings.heartbeat_timeout)


def _serving(settings: Settings):
    """The condition on heartbeat rows of workers serving a model's previews now."""
    return ((WorkerHeartbeat.last_seen >= _cutoff(settings))
            & WorkerHeartbeat.load_error.is_(None)
            & WorkerHeartbeat.queues.contains(PREVIEW_QUEUE))


def live_models(session: Session, settings: Settings) -> set[str]:
    """Configs with at least one worker that loaded them and beat within ``heartbeat_timeout``."""
    return set(session.scalars(select(distinct(WorkerHeartbeat.model_name))
                               .where(_serving(settings))))


def outage(session: Session, settings: Settings, model: str) -> Outage | None:
    """None when ``model`` has a live worker; else why not, from its workers' latest row."""
    if session.scalar(select(WorkerHeartbeat.name).where(
            _serving(settings), WorkerHeartbeat.model_name == model).limit(1)) is not None:
        return None
    last = session.scalars(select(WorkerHeartbeat).where(WorkerHeartbeat.model_name == model)
                           .order_by(WorkerHeartbeat.last_seen.desc()).limit(1)).first()
    start = START_A_WORKER.format(model=model)
    if last is None:
        return Outage(model, f"no worker serving it has reported (within "
                      f"{settings.heartbeat_timeout} s or before)", start)
    if last.load_error:
        return Outage(model, f"its worker {last.name} could not load it: {last.load_error}",
                      last.load_fix or start, last.name, last.last_seen)
    if last.last_seen >= _cutoff(settings):  # live, but not on the preview queue
        return Outage(model, f"its worker {last.name} does not take previews "
                      f"(queues {last.queues})", start, last.name, last.last_seen)
    return Outage(model, f"its last worker {last.name} stopped beating at "
                  f"{last.last_seen:%Y-%m-%d %H:%M:%S} UTC", start, last.name, last.last_seen)


def outages(session: Session, settings: Settings) -> list[Outage]:
    """Every model some worker reported but none serves now (``GET /api/v1/models``)."""
    reported = set(session.scalars(select(distinct(WorkerHeartbeat.model_name))))
    found = (outage(session, settings, m) for m in sorted(reported - live_models(session, settings)))
    return [o for o in found if o is not None]


def require_live(session: Session, settings: Settings, model: str) -> None:
    """Raise 409 ``model_unavailable`` (with the reason and the fix) unless ``model`` is live."""
    found = outage(session, settings, model)
    if found is not None:
        raise CommandError(RequestErrorCode.MODEL_UNAVAILABLE,
                           found.message() + " (GET /api/v1/models lists the models that have "
                           "a worker)", 409)
