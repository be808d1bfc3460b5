"""The stream service: ``GET /api/v1/batches/<id>/events`` on asyncio (aiohttp), so an open
stream costs a coroutine and a socket, not a server thread. Same frames, auth, per-user cap and
credential recheck as the Flask view (``web.streams.protocol``, ``feed``, ``guard``, ``auth``);
the database is read in a small bounded thread pool (``ANYCOST_STREAMS_DB_THREADS``), a thread
held for one step's queries only; nudges come from one Redis subscription (``web.streams.hub``).

Errors are the API's JSON (``{"error": {"code", "message"}}``), in the Flask app's order: a
control character (400), an unknown query parameter (400), no valid credential (401), another
user's batch (404), a bad ``timeout`` or ``Last-Event-ID`` (400), the user's cap (429).
``GET /healthz`` answers while the process runs, with its open streams and the nudges' state.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from concurrent.futures import ThreadPoolExecutor

from aiohttp import web
from sqlalchemy import exc as sa_exc

from shared.codes.errors import RequestErrorCode
from shared.commands.batches import owned_batch
from shared.commands.errors import CommandError
from shared.platform.settings import Settings
from shared.store.db import make_engine, make_session_factory
from web.errors import (
    DB_RETRY_AFTER_SECONDS,
    HTTP_CODES,
    ApiError,
    error_document,
    error_headers,
    is_database_outage,
)
from web.params import check_known_query
from web.safe_input import check_parts
from web.streams.auth import StreamAuth
from web.streams.feed import EventFeed
from web.streams.guard import Credential, StreamSlot
from web.streams.hub import NudgeHub
from web.streams.origin import client_address, request_origin
from web.streams.protocol import HEADERS, ROUTE, StreamParams, preview_url_template

log = logging.getLogger(__name__)
SERVICE = web.AppKey("stream_service", object)


class StreamService:
    """What the process holds for every stream: settings, the engine, the pool, the hub."""

    def __init__(self, settings: Settings):
        self.settings = settings
        threads = settings.streams_db_threads
        pool_args = {} if settings.is_sqlite else {"pool_size": threads, "max_overflow": 2}
        self.engine = make_engine(settings.database_url, **pool_args)
        self.sessions = make_session_factory(self.engine)
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="streams-db")
        self.auth = StreamAuth(settings)
        self.hub = NudgeHub(settings.redis_url)
        self.open_streams = 0

    async def run(self, fn, *args):
        """``fn(*args)`` in the pool (blocking database or Redis work), awaited."""
        return await asyncio.get_running_loop().run_in_executor(
            self.pool, functools.partial(fn, *args))

    def release(self, slot: StreamSlot) -> None:
        """Give a stream's place back without waiting (also from a cancelled stream)."""
        try:
            self.pool.submit(slot.release)
        except RuntimeError:  # the pool is shut down: the process is stopping
            slot.release()

    def open(self, batch_id: str, authorization: str | None, cookie: str | None,
             address: str) -> Credential:
        """The caller's credential, and a 404 unless ``batch_id`` is the caller's (one session)."""
        with self.sessions() as db:
            credential = self.auth.credential(db, authorization, cookie, address)
            owned_batch(db, credential.user_id, batch_id)
        return credential

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.engine.dispose()


async def batch_events(request: web.Request) -> web.StreamResponse:
    svc: StreamService = request.app[SERVICE]
    settings = svc.settings
    batch_id = request.match_info["batch_id"]
    check_parts(request.path, request.query.items(), request.headers.items())
    check_known_query(ROUTE, "GET", request.query.keys())
    credential = await svc.run(svc.open, batch_id, request.headers.get("Authorization"),
                               request.cookies.get(svc.auth.cookie_name),
                               client_address(request, settings))
    params = StreamParams.parse(request.query, request.headers, settings.sse_max_seconds)
    slot = await svc.run(StreamSlot, settings.redis_url, credential.user_id,
                         settings.sse_max_per_user, params.timeout)
    try:
        preview_url = preview_url_template(request_origin(request, settings))
        feed = EventFeed(batch_id, params, credential, preview_url,
                         settings.sse_heartbeat_seconds)
        return await _follow(svc, request, feed)
    finally:
        svc.release(slot)


async def _follow(svc: StreamService, request: web.Request, feed: EventFeed) -> web.StreamResponse:
    """Runs ``feed`` to its end: a step in the pool, its frames written, a wait for a nudge."""
    frames = await svc.run(feed.start, svc.sessions)
    response = web.StreamResponse(headers=HEADERS)
    response.content_type = "text/event-stream"
    response.charset = "utf-8"
    await response.prepare(request)
    svc.open_streams += 1
    try:
        await response.write("".join(frames).encode())
        with svc.hub.listen(feed.batch_id) as nudged:
            while not feed.done:
                frames = await svc.run(feed.step, svc.sessions)
                if frames:
                    await response.write("".join(frames).encode())
                if feed.done or _gone(request):
                    break
                await nudged.wait(feed.wait_seconds())
    except ConnectionError as exc:  # the client left
        log.debug("event stream of %s ends early: %r", feed.batch_id, exc)
    finally:
        svc.open_streams -= 1
    return response


def _gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


async def healthz(request: web.Request) -> web.Response:
    svc: StreamService = request.app[SERVICE]
    return web.json_response({"status": "ok", "streams": svc.open_streams,
                              "nudges": "subscribed" if svc.hub.connected else "polling"})


def _error(status: int, code: str, message: str, field: str | None = None,
           headers: dict | None = None, **extra) -> web.Response:
    return web.json_response(error_document(code, message, field, **extra), status=status,
                             headers={**error_headers(status), **(headers or {})})


@web.middleware
async def json_errors(request: web.Request, handler):
    """Every refusal as the API's JSON error, never aiohttp's text or a 500 page."""
    try:
        return await handler(request)
    except ApiError as exc:
        return _error(exc.status, exc.code, exc.message, exc.field, exc.headers, **exc.extra)
    except CommandError as exc:
        retry = {"Retry-After": str(exc.retry_after)} if exc.retry_after is not None else {}
        return _error(exc.status, exc.code, exc.message, headers=retry)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _error(exc.status, str(HTTP_CODES.get(exc.status, "error")), exc.reason,
                      headers={"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None)
    except sa_exc.SQLAlchemyError as exc:
        if not is_database_outage(exc):
            raise
        log.warning("database unavailable on %s: %s", request.path, str(exc).splitlines()[0])
        return _error(503, RequestErrorCode.DATABASE_UNAVAILABLE,
                      "the database is unavailable; try again shortly",
                      headers={"Retry-After": str(DB_RETRY_AFTER_SECONDS)})


@web.middleware
async def no_500_pages(request: web.Request, handler):
    """The outermost layer: anything unexpected is logged and answered with JSON."""
    try:
        return await handler(request)
    except (web.HTTPException, asyncio.CancelledError):
        raise
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return _error(500, "internal_error", "something went wrong on our side")


def make_app(settings: Settings) -> web.Application:
    """The stream service's aiohttp application (its own engine, pool and Redis subscription,
    started and closed with the application)."""
    app = web.Application(middlewares=[no_500_pages, json_errors])
    app.router.add_get(ROUTE.replace("<batch_id>", "{batch_id}"), batch_events, allow_head=False)
    app.router.add_get("/healthz", healthz, allow_head=False)

    async def lifecycle(app: web.Application):
        svc = StreamService(settings)
        app[SERVICE] = svc
        svc.hub.start()
        yield
        await svc.hub.stop()
        await asyncio.get_running_loop().run_in_executor(None, svc.close)

    app.cleanup_ctx.append(lifecycle)
    return app
