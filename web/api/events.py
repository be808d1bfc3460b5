"""``GET /api/v1/batches/<id>/events``: the batch's outbox as server-sent events, served by the
Flask app with a thread per open stream (``make run``, single-process use). A deployment serves
the same route from the stream service (``python -m web.streams``, asyncio, no thread per
stream) behind its proxy. What a stream sends, and when it ends, is ``web.streams.protocol`` and
``web.streams.feed`` for both; this module only runs the feed in the request's thread, sleeping
on the batch's Redis nudges between steps. A user has at most ``ANYCOST_SSE_MAX_PER_USER``
streams open on both servers together, and a process keeps threads for other requests
(``web.api.stream_guard``).
"""

from __future__ import annotations

from collections.abc import Iterator

from flask import Response, request, url_for

from shared.platform.nudges import Waiter
from web.api.blueprint import bp, current_user
from web.api.stream_guard import ProcessStreamSlot, credential_of_request
from web.extensions import Services, db, services
from web.streams.feed import EventFeed
from web.streams.protocol import HEADERS, StreamParams


def _stream(svc: Services, feed: EventFeed, slot: ProcessStreamSlot) -> Iterator[str]:
    try:
        yield from feed.start(svc.sessions)
        if feed.done:
            return
        waiter = Waiter(svc.settings.redis_url, feed.batch_id)
        try:
            while True:
                yield from feed.step(svc.sessions)
                if feed.done:
                    return
                waiter.wait(feed.wait_seconds())
        finally:
            waiter.close()
    finally:
        slot.release()


@bp.get("/batches/<batch_id>/events")
def batch_events(batch_id: str):
    svc = services()
    svc.batches.get_batch(db(), current_user().id, batch_id)  # 404 unless it is the caller's
    params = StreamParams.parse(request.args, request.headers, svc.settings.sse_max_seconds)
    credential = credential_of_request(request)
    slot = ProcessStreamSlot(svc.settings, credential.user_id, params.timeout)
    preview_url = url_for("api.item_preview", item_id="{item}", _external=True).replace(
        "%7Bitem%7D", "{item}")
    feed = EventFeed(batch_id, params, credential, preview_url,
                     svc.settings.sse_heartbeat_seconds)
    response = Response(_stream(svc, feed, slot), mimetype="text/event-stream")
    response.headers.update(HEADERS)
    response.call_on_close(slot.release)  # also when the body is never iterated
    return response
