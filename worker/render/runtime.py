"""What a worker process holds while it runs: the models, the device, database sessions.

Built once per worker process by ``init_runtime``, called from Celery's ``worker_process_init``,
i.e. AFTER the fork in the pool's child: CUDA contexts and database connections do not survive a
fork, so the parent process never touches either. Tasks reach it with ``get_runtime()``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch
from sqlalchemy.orm import Session, sessionmaker

from shared.items.sending import Sender
from shared.platform.queue import Dispatcher
from shared.platform.settings import Settings
from shared.store.blobs import BlobStore, make_blob_store
from shared.store.db import make_engine, make_session_factory
from worker.render.warm import WarmItems

log = logging.getLogger(__name__)

_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


class WorkerStartupError(Exception):
    """The worker cannot start (bad device setting, missing weights ...)."""


def resolve_device(setting: str) -> torch.device:
    """``auto`` -> CUDA when present, else CPU; ``cpu``, ``cuda``, ``cuda:N`` as given."""
    if setting == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(setting)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise WorkerStartupError(f"ANYCOST_DEVICE={setting} but this machine has no usable CUDA device")
    return device


def resolve_precision(setting: str, device: torch.device) -> torch.dtype:
    """Half precision only on a GPU; a CPU worker renders in fp32 whatever the setting."""
    if device.type != "cuda" and setting != "fp32":
        log.warning("ANYCOST_PRECISION=%s ignored on %s: rendering in fp32", setting, device)
        return torch.float32
    return _DTYPES[setting]


@dataclass
class Runtime:
    """One worker process's models and connections. ``bundle`` is a
    ``worker.anycost.bundle.ModelBundle`` (generator, encoder, directions, resolution ...)."""

    settings: Settings
    bundle: object
    device: torch.device
    dtype: torch.dtype
    sessions: sessionmaker[Session]
    blobs: BlobStore
    sender: Sender  # follow-up work: auto-finalize, a group's items handed back
    worker_name: str
    load_seconds: float = 0.0
    warm_items: WarmItems = field(default_factory=WarmItems)  # re-edits rendered before their take
    extras: dict = field(default_factory=dict)  # room for heartbeat/metrics handles

    @property
    def model_name(self) -> str:
        return self.bundle.config

    @property
    def pretrained(self) -> bool:
        return bool(self.bundle.pretrained)

    def close(self) -> None:
        """Close the database connections (process shutdown, tests)."""
        self.sessions.kw["bind"].dispose()

    def inference(self) -> contextlib.AbstractContextManager[None]:
        """No autograd, and autocast to the configured half precision on a GPU."""
        return inference(self.device, self.dtype)


@contextlib.contextmanager
def inference(device: torch.device, dtype: torch.dtype) -> Iterator[None]:
    """No autograd; with a half ``dtype``, autocast on ``device`` (convolutions and matmuls in
    half, reductions and the epilogues autocast keeps in fp32). fp32 is the plain path.
    ``resolve_precision`` only hands half types to GPU workers; tests use bf16 on the CPU to
    measure the error of the same autocast path."""
    with torch.inference_mode():
        if dtype == torch.float32:
            yield
        else:
            with torch.autocast(device_type=device.type, dtype=dtype):
                yield


def warm_up(rt: Runtime) -> float:
    """One preview-cost and one final-cost render (batch 1) on dummy codes, so the first user
    does not pay for lazy start-up (CUDA context and kernels, cuDNN algorithm choice, allocator
    growth, CPU thread pools). Returns the seconds spent; failures are logged, not raised: a
    worker that cannot warm up will report the real error on the first item."""
    from shared.recipe.parse import default_costs
    from worker.render import stages

    started = time.perf_counter()
    try:
        generator = rt.bundle.generator
        codes = torch.zeros(1, generator.n_style, generator.style_dim, device=rt.device)
        for cost in default_costs(int(rt.bundle.resolution)):
            with rt.inference():
                stages.render(rt.bundle, codes, cost)
        if rt.device.type == "cuda":
            torch.cuda.synchronize(rt.device)
    except Exception:
        log.exception("warm-up render failed")
    seconds = time.perf_counter() - started
    rt.extras["warmup_seconds"] = seconds
    log.info("warm-up renders (preview and final cost) took %.3fs", seconds,
             extra={"warmup_seconds": round(seconds, 4)})
    return seconds


def load_models(settings: Settings, device: torch.device):
    """The bundle of the config this worker serves (``settings.served_model``) on ``device``
    (builds tiny-random weights if asked)."""
    from worker.anycost.bundle import load_bundle

    return load_bundle(settings.served_model, weights_dir=settings.weights_dir, device=str(device))


def build_runtime(
    settings: Settings,
    worker_name: str,
    celery=None,
    bundle=None,
) -> Runtime:
    """Everything a worker process needs. ``celery`` sends follow-up messages (fair release of a
    batch, auto-finalize); ``bundle`` skips model loading (tests that share one bundle)."""
    if settings.torch_threads > 0:
        torch.set_num_threads(settings.torch_threads)
    started = time.perf_counter()
    device = resolve_device(settings.device)
    dtype = resolve_precision(settings.precision, device)
    if bundle is None:
        bundle = load_models(settings, device)
    sessions = make_session_factory(make_engine(settings.database_url))
    blobs = make_blob_store(settings)
    sender = Sender(settings, sessions, Dispatcher(settings, celery=celery))
    runtime = Runtime(
        settings=settings, bundle=bundle, device=device, dtype=dtype, sessions=sessions,
        blobs=blobs, sender=sender, worker_name=worker_name,
        load_seconds=time.perf_counter() - started,
    )
    log.info(
        "worker %s ready: model %s (%s) on %s, %s, loaded in %.1fs", worker_name, runtime.model_name,
        "pretrained" if runtime.pretrained else "RANDOM WEIGHTS", device, settings.precision,
        runtime.load_seconds,
    )
    return runtime


_current: Runtime | None = None


def init_runtime(settings: Settings, hostname: str, celery=None) -> Runtime:
    """Build this process's runtime (once). The worker name is ``hostname:pid``: with ``-c N``
    several processes share a Celery hostname and each holds its own items."""
    global _current
    if _current is None:
        rt = build_runtime(settings, f"{hostname}:{os.getpid()}", celery=celery)
        warm_up(rt)
        _current = rt
    return _current


def get_runtime() -> Runtime:
    if _current is None:
        raise WorkerStartupError("the worker runtime is not initialised (worker_process_init did not run)")
    return _current


def set_runtime(runtime: Runtime | None) -> None:
    """Install a runtime explicitly (tests running the pipeline in-process)."""
    global _current
    _current = runtime
