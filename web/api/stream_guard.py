"""The Flask view's part of keeping event streams from starving everyone else: the per-user cap
and the credential checks are ``web.streams.guard`` (shared with the stream service); here, a
stream's credential from the Flask request, and a per-process thread reserve.

A stream served by Flask holds a server thread while it is open (gunicorn gthread), so a web
process never gives its last ``RESERVED_THREADS`` threads to streams: past ``GUNICORN_THREADS`` -
that many open streams in one process, a new stream is a 503 with Retry-After (the browser's
EventSource reconnects), and the process keeps threads for everyone's other requests. The stream
service (``python -m web.streams``) needs no such reserve: it holds no thread per stream.
"""

from __future__ import annotations

import os
import threading

import flask_login

from shared.platform.settings import Settings
from web.auth import SESSION_EPOCH_KEY, bearer_token
from web.errors import ApiError
from web.streams.guard import Credential, StreamSlot

RESERVED_THREADS = 4  # per gunicorn process, never taken by streams


def process_stream_limit() -> int | None:
    """Threads of this process that streams may hold; None without a thread pool."""
    threads = int(os.environ.get("GUNICORN_THREADS", "0") or 0)
    return max(1, threads - RESERVED_THREADS) if threads else None


_LIMIT = process_stream_limit()
_PROCESS_SLOTS = threading.BoundedSemaphore(_LIMIT) if _LIMIT else None


def take_process_slot(what: str = "event stream") -> bool:
    """A place for one more thread-holding request in this process: an event stream, or a
    ``what`` that waits as one does (503 when none); True when one was taken (give it back
    with :func:`give_process_slot`)."""
    if _PROCESS_SLOTS is None:
        return False
    if not _PROCESS_SLOTS.acquire(blocking=False):
        raise ApiError(503, "unavailable", f"this server has no room for another {what} "
                       "now; try again shortly", headers={"Retry-After": "5"})
    return True


def give_process_slot(taken: bool) -> None:
    if taken and _PROCESS_SLOTS is not None:
        _PROCESS_SLOTS.release()


def credential_of_request(request) -> Credential:
    """How the signed-in user of this Flask request proved who it is."""
    signed = flask_login.current_user
    if signed.via == "token":
        return Credential.of_token(signed.id, bearer_token(request.headers.get("Authorization")))
    from flask import session

    return Credential.of_session(signed.id, session.get(SESSION_EPOCH_KEY))


class ProcessStreamSlot:
    """A Flask stream's places: one in its user's count (both servers) and one of this process's
    stream threads. ``release`` gives both back; a second call does nothing."""

    def __init__(self, settings: Settings, user_id: int, lifetime: float):
        self._lock = threading.Lock()
        self.slot = StreamSlot(settings.redis_url, user_id, settings.sse_max_per_user, lifetime)
        try:
            self.thread = take_process_slot()
        except ApiError:
            self.slot.release()
            raise

    def release(self) -> None:
        with self._lock:
            give_process_slot(self.thread)
            self.thread = False
            self.slot.release()
