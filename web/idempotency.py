"""``Idempotency-Key`` for uploads: the same user and key within 24 hours returns the first
request's batch instead of storing the photos again.

The key is claimed (a row, unique per user and key) before the batch is stored and completed
with its id afterwards:

- same key, same request content, batch stored: the stored batch (200, ``Idempotent-Replayed``);
- same key, different content: 422 ``idempotency_key_reused`` (the request is well-formed but
  cannot mean what the client hopes; nothing is stored);
- same key while the first request is still storing: 409 ``idempotency_in_progress`` with
  ``Retry-After`` (a claim older than ``STALE_CLAIM`` is taken over: its request died).

The content fingerprint covers the recipe as validated, the webhook URL and every file's name and
sha256: multipart boundaries differ between two sends of the same request, so raw bodies cannot.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from datetime import timedelta

from flask import Request
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from shared.codes.errors import RequestErrorCode
from shared.commands.batches import Upload
from shared.store.tables import IdempotencyKey, utcnow
from web.errors import ApiError

log = logging.getLogger(__name__)

HEADER = "Idempotency-Key"
MAX_KEY_CHARS = 255
KEEP = timedelta(hours=24)
STALE_CLAIM = timedelta(minutes=10)


def key_from(request: Request) -> str | None:
    raw = request.headers.get(HEADER)
    if raw is None:
        return None
    key = raw.strip()
    if not key or len(key) > MAX_KEY_CHARS or not all(" " <= c <= "~" for c in key):
        raise ApiError(400, RequestErrorCode.INVALID_IDEMPOTENCY_KEY,
                       f"{HEADER} is 1 to {MAX_KEY_CHARS} printable ASCII characters", HEADER)
    return key


def fingerprint(recipe: dict, webhook_url: str | None, uploads: Sequence[Upload]) -> str:
    content = {
        "recipe": recipe, "webhook_url": webhook_url,
        "files": [[u.filename, hashlib.sha256(u.data).hexdigest()] for u in uploads],
    }
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


def claim(sessions: sessionmaker[Session], user_id: int, key: str, print_: str) -> str | None:
    """The batch id already made for this key, or None when this request now holds the key."""
    for _ in range(2):  # a lost insert race is read back once
        try:
            with sessions.begin() as session:
                return _claim(session, user_id, key, print_)
        except IntegrityError:
            continue
    raise _in_progress()


def _in_progress() -> ApiError:
    return ApiError(409, RequestErrorCode.IDEMPOTENCY_IN_PROGRESS,
                    f"a request with this {HEADER} is still being processed", HEADER,
                    headers={"Retry-After": "1"})


def _claim(session: Session, user_id: int, key: str, print_: str) -> str | None:
    now = utcnow()
    row = session.scalar(select(IdempotencyKey).where(
        IdempotencyKey.user_id == user_id, IdempotencyKey.key == key))
    if row is not None and row.created_at < now - KEEP:
        session.delete(row)
        session.flush()
        row = None
    if row is None:
        session.add(IdempotencyKey(user_id=user_id, key=key, fingerprint=print_, created_at=now))
        session.flush()
        return None
    if row.fingerprint != print_:
        raise ApiError(422, RequestErrorCode.IDEMPOTENCY_KEY_REUSED,
                       f"this {HEADER} was used for a different request in the last 24 hours",
                       HEADER)
    if row.batch_id is not None:
        return row.batch_id
    if row.created_at > now - STALE_CLAIM:
        raise _in_progress()
    row.created_at = now  # the first request died before storing its batch: take over
    return None


def complete(sessions: sessionmaker[Session], user_id: int, key: str, batch_id: str) -> None:
    with sessions.begin() as session:
        session.execute(update(IdempotencyKey).where(
            IdempotencyKey.user_id == user_id, IdempotencyKey.key == key).values(batch_id=batch_id))


def release(sessions: sessionmaker[Session], user_id: int, key: str) -> None:
    """Give the key back after a request that stored nothing (it may be sent again)."""
    with sessions.begin() as session:
        session.execute(delete(IdempotencyKey).where(
            IdempotencyKey.user_id == user_id, IdempotencyKey.key == key,
            IdempotencyKey.batch_id.is_(None)))


def create_once(user_id: int, key: str | None, print_: str, create: Callable[[], str],
                present: Callable[[object], dict]):
    """``POST /batches``'s answer under an optional Idempotency-Key: ``create()`` makes the batch
    (its id), ``present(batch)`` its JSON. A repeat of the same request within the window gets
    the first batch with 200 and ``Idempotent-Replayed``; a failed create frees the key."""
    from flask import url_for

    from web.extensions import db, services

    svc = services()

    def answer(batch_id: str, status: int, extra: dict) -> tuple:
        batch = svc.batches.get_batch(db(), user_id, batch_id)
        return present(batch), status, {"Location": url_for("api.get_batch", batch_id=batch_id),
                                        **extra}

    if key is not None:
        earlier = claim(svc.sessions, user_id, key, print_)
        if earlier is not None:
            return answer(earlier, 200, {"Idempotent-Replayed": "true"})
    try:
        batch_id = create()
    except BaseException:
        if key is not None:
            try:
                release(svc.sessions, user_id, key)
            except Exception:  # the database is down: the claim goes stale and is taken over
                log.warning("could not release %s %r", HEADER, key)
        raise
    if key is not None:
        complete(svc.sessions, user_id, key, batch_id)
    return answer(batch_id, 201, {})
