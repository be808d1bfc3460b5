"""Room for long-poll waits (``GET .../items/<id>/preview?v=N&wait=S``).

A waiting request holds a server thread (gunicorn gthread) until its preview exists, as an
event stream does. So a web process gives waits at most half of the threads it lets streams
have (``web.api.stream_guard``), and one user at most ``PER_USER`` waits at once; past either,
the request is a 503 with Retry-After instead of a wait. Nothing is lost by it: the editor still
gets the picture from the batch's pushed event, an API client asks again.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from web.api.stream_guard import process_stream_limit
from web.errors import ApiError

PER_USER = 4  # an editor waits for one preview at a time; a few tabs, a script
RETRY_AFTER_SECONDS = 1


class WaitSlots:
    """This process's count of waiting requests, in all and per user."""

    def __init__(self, limit: int | None):
        self.limit = limit  # None: no thread pool to protect (werkzeug, tests): per user only
        self._lock = threading.Lock()
        self._total = 0
        self._per_user: dict[int, int] = {}

    def waiting(self, user_id: int | None = None) -> int:
        """Requests waiting now: this process's, or one user's."""
        with self._lock:
            return self._total if user_id is None else self._per_user.get(user_id, 0)

    @contextmanager
    def hold(self, user_id: int) -> Iterator[None]:
        with self._lock:
            mine = self._per_user.get(user_id, 0)
            if mine >= PER_USER or (self.limit is not None and self._total >= self.limit):
                who = "you have" if mine >= PER_USER else "this server has"
                raise ApiError(503, "unavailable", f"{who} as many requests waiting for a "
                               "preview as it allows; ask again shortly (without wait, the "
                               "newest picture there is)",
                               headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
            self._total += 1
            self._per_user[user_id] = mine + 1
        try:
            yield
        finally:
            with self._lock:
                self._total -= 1
                left = self._per_user[user_id] - 1
                if left:
                    self._per_user[user_id] = left
                else:
                    del self._per_user[user_id]


def _process_limit() -> int | None:
    streams = process_stream_limit()
    return None if streams is None else max(1, streams // 2)


#: The web process's slots.
SLOTS = WaitSlots(_process_limit())
