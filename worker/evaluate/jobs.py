"""An evaluation job of the database, run by a worker process (the ``anycost.evaluate`` task).

Claims the row (queued -> running), loads the named model (the worker's own bundle when it is
the same config, else once per process from installed weights), measures, stores the result or
a stable error code. Any failure ends the job, never the worker.
"""

from __future__ import annotations

import logging
from pathlib import Path

from celery.exceptions import SoftTimeLimitExceeded

from shared.codes.errors import ErrorCode
from shared.commands.evaluations import Evaluations
from shared.store.tables import Evaluation
from worker.anycost.weights import WeightsError
from worker.evaluate.common import EvaluationError
from worker.evaluate.runner import Request, run

log = logging.getLogger(__name__)


def evaluations_of(rt) -> Evaluations:
    return Evaluations(rt.settings, rt.sessions, rt.sender.dispatcher)


def bundle_for(rt, model_name: str):
    """The worker's bundle for its own model; another installed model, loaded once."""
    if rt.bundle.config == model_name:
        return rt.bundle
    cache = rt.extras.setdefault("evaluation_bundles", {})
    if model_name not in cache:
        from worker.anycost.bundle import load_bundle

        cache[model_name] = load_bundle(model_name, rt.settings.weights_dir, device=rt.device)
    return cache[model_name]


def data_folder(rt, name: str | None) -> str | None:
    """A data set name (validated by shared.commands.evaluations) -> its folder on this worker."""
    if name is None:
        return None
    root = Path(rt.settings.eval_data_dir)
    folder = (root / name).resolve()
    if root.resolve() not in folder.parents or not folder.is_dir():
        raise EvaluationError(ErrorCode.EVAL_DATA_MISSING,
                              f"no data set {name!r} in {root} (ANYCOST_EVAL_DATA_DIR) on this worker")
    return str(folder)


def request_of(rt, evaluation: Evaluation) -> Request:
    params = evaluation.params
    return Request(kind=evaluation.kind, n=int(params["n"]), channels=params.get("channels"),
                   resolution=params.get("resolution"), seed=int(params.get("seed") or 0),
                   data_dir=data_folder(rt, params.get("data")),
                   batch_size=rt.settings.render_batch_size)


def run_evaluation(rt, evaluation_id: str) -> str:
    """Run one job; returns its final status (or ``skipped`` when another delivery holds it)."""
    evaluations = evaluations_of(rt)
    evaluation = evaluations.claim(evaluation_id, rt.worker_name)
    if evaluation is None:
        log.info("evaluation %s is not queued (done, failed or running elsewhere)", evaluation_id)
        return "skipped"
    log.info("evaluation %s: %s of %s %s", evaluation_id, evaluation.kind, evaluation.model_name,
             evaluation.params)
    try:
        request = request_of(rt, evaluation)
        result = run(request, bundle_for(rt, evaluation.model_name), rt.settings)
    except EvaluationError as exc:
        log.warning("evaluation %s failed: %s", evaluation_id, exc.message)
        evaluations.fail(evaluation_id, exc.code, exc.message)
        return "failed"
    except WeightsError as exc:
        evaluations.fail(evaluation_id, ErrorCode.WEIGHTS_MISSING, str(exc))
        return "failed"
    except SoftTimeLimitExceeded:
        evaluations.fail(evaluation_id, ErrorCode.TIMEOUT,
                         f"the evaluation took longer than {rt.settings.eval_time_limit}s "
                         "(ANYCOST_EVAL_TIME_LIMIT); ask for fewer samples")
        return "failed"
    except Exception as exc:
        log.exception("evaluation %s failed", evaluation_id)
        evaluations.fail(evaluation_id, ErrorCode.INTERNAL_ERROR, f"{type(exc).__name__}: {exc}")
        return "failed"
    result["worker"] = rt.worker_name
    result["device"] = str(rt.device)
    evaluations.finish(evaluation_id, result)
    log.info("evaluation %s done in %.1fs", evaluation_id, result.get("seconds", 0.0))
    return "done"
