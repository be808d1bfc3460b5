"""Evaluation jobs of a model (FID, PPL, preview/final consistency): the request schema, the
status of a job and every change of it, for the REST API, the portal and the worker alike.

``queued -> running -> done | failed``. Each change is a guarded UPDATE from the expected status,
so a message delivered twice runs the job once. Redis redelivers an unacknowledged message after
its visibility timeout (sized for renders, shorter than a long evaluation): the copy is skipped
while the job's worker is alive, and claims the job again when that worker's heartbeat has gone
stale (it died) or the job is older than the evaluation time limit. The worker measures with
``worker.evaluate``; this module holds no torch.

Evaluations are expensive (FID-50k: up to two hours of a GPU), so a user may have at most
``eval_user_active`` of them queued or running, and the whole service ``eval_max_active``; past
either a new one is refused with 429. The check and the insert are one transaction under the
user's lock (``shared.commands.quota.lock_owner``) and, on PostgreSQL, a transaction-scoped
advisory lock for the service-wide count. A user reads their own evaluations and those the
model's operator shared with everyone (``flask --app web evaluations share ID``: a reference
FID, say); sharing never lets anyone else change or cancel one.
"""

from __future__ import annotations

import logging
import re
from datetime import timedelta
from enum import StrEnum

from sqlalchemy import func, or_, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from shared.catalog.configs import ModelConfig
from shared.codes.errors import ErrorCode
from shared.commands.errors import CommandError
from shared.commands.quota import lock_owner
from shared.platform.queue import Dispatcher
from shared.platform.settings import Settings
from shared.recipe.parse import CHANNEL_RATIOS, allowed_resolutions
from shared.store.tables import Evaluation, WorkerHeartbeat, new_id, utcnow

log = logging.getLogger(__name__)

KINDS = ("fid", "ppl", "consistency")
MIN_N = {"fid": 2, "ppl": 1, "consistency": 1}
#: A data set is named by a folder under ANYCOST_EVAL_DATA_DIR on the workers, never by a path.
DATA_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
EVAL_LOCK_KEY = 20_2001  # PostgreSQL advisory lock: one service-wide count of active evaluations
RETRY_AFTER = 60  # seconds a refused evaluation is told to wait


class EvaluationStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


def _bad(field: str, message: str) -> CommandError:
    return CommandError("invalid_parameter", f"{field}: {message}", 400)


def parse_request(body, model: ModelConfig, settings: Settings) -> dict:
    """Validate a request body ``{kind, n, channels?, resolution?, seed?, data?}`` -> params."""
    if not isinstance(body, dict):
        raise _bad("body", "expected a JSON object")
    unknown = set(body) - {"kind", "n", "channels", "resolution", "seed", "data"}
    if unknown:
        raise _bad(sorted(unknown)[0], "unknown field")
    kind = body.get("kind")
    if kind not in KINDS:
        raise _bad("kind", f"must be one of {', '.join(KINDS)}")
    n = body.get("n")
    if isinstance(n, bool) or not isinstance(n, int) or not MIN_N[kind] <= n <= settings.eval_max_n:
        raise _bad("n", f"must be an integer from {MIN_N[kind]} to {settings.eval_max_n}")
    channels = body.get("channels")
    if channels is not None:
        if isinstance(channels, bool) or not isinstance(channels, int | float) \
                or float(channels) not in CHANNEL_RATIOS:
            raise _bad("channels", f"must be one of {', '.join(map(str, CHANNEL_RATIOS))}")
        channels = float(channels)
    resolution = body.get("resolution")
    allowed = allowed_resolutions(model.resolution)
    if resolution is not None and (isinstance(resolution, bool) or resolution not in allowed):
        raise _bad("resolution", f"must be one of {', '.join(map(str, allowed))}")
    seed = body.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**31:
        raise _bad("seed", "must be an integer from 0 to 2^31 - 1")
    data = body.get("data")
    if data is not None:
        if kind != "fid":
            raise _bad("data", "only FID uses a data set")
        if not isinstance(data, str) or not DATA_NAME.match(data) or ".." in data:
            raise _bad("data", "must name a data set folder (letters, digits, . _ -)")
    return {"n": n, "channels": channels, "resolution": resolution, "seed": seed, "data": data}


def readable_by(reader_id: int):
    """Who reads an evaluation: its owner, and everyone once the operator shared it."""
    return or_(Evaluation.owner_id == reader_id, Evaluation.shared_at.is_not(None))


class Evaluations:
    """Create, read and move evaluation jobs through their states."""

    def __init__(self, settings: Settings, sessions: sessionmaker[Session], dispatcher: Dispatcher):
        self.settings = settings
        self.sessions = sessions
        self.dispatcher = dispatcher

    def create(self, owner_id: int, model: ModelConfig, body) -> str:
        """Validate, store (committed), then queue. Redis down: the row stays queued, a 503."""
        params = parse_request(body, model, self.settings)
        evaluation_id = new_id()
        with self.sessions.begin() as session:
            self._check_limits(session, owner_id)
            session.add(Evaluation(id=evaluation_id, owner_id=owner_id, model_name=model.name,
                                   kind=body["kind"], status=EvaluationStatus.QUEUED.value,
                                   params=params))
        try:
            self.dispatcher.send_evaluation(evaluation_id)
        except Exception as exc:
            log.warning("could not queue evaluation %s: %s", evaluation_id, exc)
            self.fail(evaluation_id, ErrorCode.QUEUE_UNAVAILABLE,
                      "the job queue was unavailable; start the evaluation again")
            raise CommandError("unavailable", "the job queue is unavailable; try again later", 503) from exc
        return evaluation_id

    def _check_limits(self, session: Session, owner_id: int) -> None:
        """429 when the user, or the service, has too many evaluations queued or running.
        First in the transaction: it takes the locks the count needs (module docstring)."""
        lock_owner(session, owner_id)
        if session.get_bind().dialect.name != "sqlite":  # SQLite: the write lock is global
            session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": EVAL_LOCK_KEY})
        active = [EvaluationStatus.QUEUED.value, EvaluationStatus.RUNNING.value]
        everyone, mine = session.execute(
            select(func.count(), func.count().filter(Evaluation.owner_id == owner_id))
            .select_from(Evaluation).where(Evaluation.status.in_(active))).one()
        if mine >= self.settings.eval_user_active:
            raise CommandError(
                "too_many_requests", f"you have {mine} evaluations queued or running; at most "
                f"{self.settings.eval_user_active} at once. Try again when one has finished.",
                429, RETRY_AFTER)
        if everyone >= self.settings.eval_max_active:
            raise CommandError(
                "too_many_requests", f"{everyone} evaluations are queued or running, the most "
                "this service takes at once. Try again later.", 429, RETRY_AFTER)

    def list(self, session: Session, model_name: str, reader_id: int,
             limit: int = 50) -> list[Evaluation]:
        """The model's evaluations ``reader_id`` may read (their own and those the operator
        shared), newest first."""
        return list(session.scalars(
            select(Evaluation).where(Evaluation.model_name == model_name,
                                     readable_by(reader_id))
            .order_by(Evaluation.created_at.desc(), Evaluation.id).limit(limit)))

    def get(self, session: Session, model_name: str, evaluation_id: str,
            reader_id: int) -> Evaluation:
        """One evaluation ``reader_id`` may read; 404 for another user's private one (as for
        one that does not exist)."""
        evaluation = session.scalar(select(Evaluation).where(
            Evaluation.id == evaluation_id, Evaluation.model_name == model_name,
            readable_by(reader_id)))
        if evaluation is None:
            raise CommandError("not_found", "no such evaluation of this model", 404)
        return evaluation

    # --- the operator's sharing (flask --app web evaluations share/unshare) -----------------

    def share(self, evaluation_id: str, shared: bool = True) -> Evaluation:
        """Make one evaluation readable by every user (or only its owner again)."""
        with self.sessions.begin() as session:
            evaluation = session.get(Evaluation, evaluation_id)
            if evaluation is None:
                raise CommandError("not_found", f"no evaluation {evaluation_id!r}", 404)
            if shared != (evaluation.shared_at is not None):
                evaluation.shared_at = utcnow() if shared else None
            session.flush()
            session.expunge(evaluation)
            return evaluation

    # --- the worker's transitions -----------------------------------------------------------

    def claim(self, evaluation_id: str, worker: str) -> Evaluation | None:
        """queued -> running (or a running one whose worker is gone); None when another
        delivery has it."""
        now = utcnow()
        too_old = now - timedelta(seconds=self.settings.eval_time_limit + 120)
        silent = now - timedelta(seconds=self.settings.heartbeat_timeout)
        dead_workers = select(WorkerHeartbeat.name).where(WorkerHeartbeat.last_seen < silent)
        with self.sessions.begin() as session:
            claimed = session.execute(
                update(Evaluation).where(
                    Evaluation.id == evaluation_id,
                    or_(Evaluation.status == EvaluationStatus.QUEUED.value,
                        (Evaluation.status == EvaluationStatus.RUNNING.value)
                        & or_(Evaluation.started_at < too_old,
                              Evaluation.worker.in_(dead_workers))))
                .values(status=EvaluationStatus.RUNNING.value, worker=worker,
                        started_at=utcnow(), attempts=Evaluation.attempts + 1)
            ).rowcount
            if not claimed:
                return None
            evaluation = session.get(Evaluation, evaluation_id)
            session.expunge(evaluation)
            return evaluation

    def finish(self, evaluation_id: str, result: dict) -> bool:
        return self._end(evaluation_id, EvaluationStatus.DONE, result=result)

    def fail(self, evaluation_id: str, code: str, message: str) -> bool:
        return self._end(evaluation_id, EvaluationStatus.FAILED, error_code=code,
                         error_message=message[:4000])

    def _end(self, evaluation_id: str, status: EvaluationStatus, **values) -> bool:
        with self.sessions.begin() as session:
            return bool(session.execute(
                update(Evaluation).where(
                    Evaluation.id == evaluation_id,
                    Evaluation.status.in_([EvaluationStatus.QUEUED.value,
                                           EvaluationStatus.RUNNING.value]))
                .values(status=status.value, finished_at=utcnow(), **values)
            ).rowcount)
