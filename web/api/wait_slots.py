"""Room for long-poll waits (``GET .../items/<id>/preview?v=N&wait=S``).

A waiting request holds a server thread (gunicorn gthread) until its preview exists, as an
event stream does, so it takes one of the process's stream places (``web.api.stream_guard``:
never the threads kept for other requests), and one user has at most ``PER_USER`` waits at
once. Past either, the request is a 503 with Retry-After instead of a wait. Nothing is lost by
it: the editor still gets the picture from the batch's pushed event, an API client asks again.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from web.api.stream_guard import give_process_slot, take_process_slot
from web.errors import ApiError

PER_USER = 4  # an editor waits for one preview at a time; a few tabs, a script
RETRY_AFTER_SECONDS = 1


class WaitSlots:
    """This process's waiting requests per user."""

    def __init__(self):
        self._lock = threading.Lock()
        self._per_user: dict[int, int] = {}

    def waiting(self, user_id: int | None = None) -> int:
        """Requests waiting now: this process's, or one user's."""
        with self._lock:
            if user_id is None:
                return sum(self._per_user.values())
            return self._per_user.get(user_id, 0)

    @contextmanager
    def hold(self, user_id: int) -> Iterator[None]:
        with self._lock:
            mine = self._per_user.get(user_id, 0)
            if mine >= PER_USER:
                raise ApiError(503, "unavailable", "you have as many requests waiting for a "
                               "preview as one user may; ask again shortly (without wait, the "
                               "newest picture there is)",
                               headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
            self._per_user[user_id] = mine + 1
        try:
            taken = take_process_slot("request waiting for a preview")
        except ApiError:
            self._give_back(user_id)
            raise
        try:
            yield
        finally:
            give_process_slot(taken)
            self._give_back(user_id)

    def _give_back(self, user_id: int) -> None:
        with self._lock:
            left = self._per_user[user_id] - 1
            if left:
                self._per_user[user_id] = left
            else:
                del self._per_user[user_id]


#: The web process's slots.
SLOTS = WaitSlots()
