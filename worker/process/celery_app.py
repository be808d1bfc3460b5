"""The worker's Celery app: ``celery -A worker.process.celery_app worker -Q preview,final -c 1 -n NAME``
(add ``evaluate`` to the queues, or run a separate worker on it, for model evaluations).

A worker serves one config, ``ANYCOST_WORKER_MODEL`` (default ``ANYCOST_MODEL``). When that is
not the deployment's default config, the queues named by ``-Q`` are its own: ``preview`` means
``preview@CONFIG`` (``shared.platform.queue.queue_for``), so the same command line serves any config.

The app is built on first access (``worker.process.celery_app.app``), from settings read once from the
environment, with the configuration producers use too (``shared.platform.queue.celery_config``). Models
load in ``worker_process_init``, i.e. in each pool process after the fork: the parent never
touches CUDA or opens database connections that children would inherit.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import sys

from celery import Celery, signals

from shared.platform.logging import configure_logging
from shared.platform.queue import QUEUES, make_celery, queue_for
from shared.platform.settings import Settings, get_settings, set_settings
from worker.process import broker, load_failure, tasks
from worker.render import runtime

log = logging.getLogger(__name__)

#: Optional worker services started after the models load, each ``start(runtime)`` and
#: ``stop(runtime)`` (heartbeat for the reaper, Prometheus metrics). Skipped when not installed.
OPTIONAL_SERVICES = ("worker.process.reaper", "worker.process.metrics")


def create_worker_app(settings: Settings | None = None) -> Celery:
    """The Celery app with the render tasks and the start-up hooks bound to it."""
    settings = settings or get_settings()
    set_settings(settings)
    broker.install()  # acks that survive a Redis timeout (see worker.process.broker)
    app = make_celery(settings, name="anycost-worker")
    # Loading the models after fork may take minutes (a 1024 px generator, an encoder, CUDA
    # start-up); Celery's default kills a pool process that is not up within 4 seconds.
    app.conf.worker_proc_alive_timeout = float(settings.worker_startup_timeout)
    tasks.register(app, settings)

    def on_setup_logging(loglevel=None, **_) -> None:
        # Connected, this replaces Celery's own set-up: every line of the worker (main process
        # and pool children) goes through shared.platform.logging (JSON with ANYCOST_LOG_JSON, bound
        # batch/item ids). The real stderr: Celery swaps sys.stderr for a logging proxy later.
        configure_logging(get_settings(), level=loglevel or logging.INFO, stream=sys.__stderr__)

    def on_process_init(sender=None, **_) -> None:
        hostname = str(sender or "worker")
        configure_logging(get_settings(), level=logging.getLogger().level or logging.INFO,
                          stream=sys.__stderr__)
        try:
            rt = runtime.init_runtime(get_settings(), hostname, celery=app)
        except Exception as exc:
            # Celery would only log a raise here and keep a pool process without a model:
            # report why (the web side shows it) and stop the whole worker instead.
            log.exception("worker process could not load its models; the worker stops")
            try:
                load_failure.report(get_settings(), hostname, _served_queues, exc)
            except Exception:
                log.exception("could not report the failure to the database")
            load_failure.stop_worker()
            return
        rt.extras["queues"] = _served_queues
        _services("start", rt)
        # After the first heartbeat: from now on the web side counts this worker as serving.
        log.info("worker %s serving: model %s on %s", rt.worker_name, rt.model_name, _served_queues)

    def on_process_shutdown(**_) -> None:
        rt = runtime._current
        if rt is not None:
            _services("stop", rt)
            rt.close()

    def on_after_setup(sender=None, instance=None, **_) -> None:
        global _served_queues
        # The plain names (preview, final, evaluate) go in the heartbeat rows of the pool
        # processes forked after this: what the worker takes, whatever its model.
        _served_queues = ",".join(sorted(_plain(instance.app)))
        _serve_model_queues(instance.app, get_settings())

    signals.celeryd_after_setup.connect(on_after_setup, weak=False,
                                        dispatch_uid=f"anycost-queues-{id(app)}")
    signals.setup_logging.connect(on_setup_logging, weak=False, dispatch_uid=f"anycost-log-{id(app)}")
    signals.worker_process_init.connect(on_process_init, weak=False, dispatch_uid=f"anycost-init-{id(app)}")
    signals.worker_process_shutdown.connect(
        on_process_shutdown, weak=False, dispatch_uid=f"anycost-shutdown-{id(app)}"
    )
    return app


def _serve_model_queues(app: Celery, settings: Settings) -> list[str]:
    """Swap the plain queue names this worker consumes for its config's (see the module doc).
    Returns the queue names consumed."""
    queues = app.amqp.queues
    selected = list(queues.consume_from or queues)
    served = settings.served_model
    for name in selected:
        own = queue_for(name, served, settings.model) if name in QUEUES else name
        if own != name:
            queues.deselect([name])
            queues.select_add(own)
    names = sorted(queues.consume_from or queues)
    log.info("worker serves model %s on queues %s", served, ", ".join(names))
    return names


def _plain(app: Celery) -> list[str]:
    queues = app.amqp.queues
    return list(queues.consume_from or queues)


def _services(action: str, rt: runtime.Runtime) -> None:
    for name in OPTIONAL_SERVICES:
        if importlib.util.find_spec(name) is None:
            continue
        fn = getattr(importlib.import_module(name), action, None)
        if fn is not None:
            fn(rt)


_app: Celery | None = None
#: The queues this worker takes, by their plain names (set before the pool forks).
_served_queues = ",".join(QUEUES[:2])


def __getattr__(name: str):
    # `celery -A worker.process.celery_app` looks up `app`: build it then, not at import time.
    global _app
    if name == "app":
        if _app is None:
            _app = create_worker_app()
        return _app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
