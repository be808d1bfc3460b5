"""The life of an item, in one place.

``queued -> previewing -> preview_ready -> finalizing -> done``; ``failed`` or ``canceled`` from
any non-final state; ``preview_ready``/``done`` go back to ``previewing`` when a user changes the
item's edits; ``failed`` goes back to ``queued`` on retry.

Every transition is one guarded ``UPDATE ... WHERE id = :id AND status IN (:expected)``: whoever
loses a race (a task delivered twice, a cancel during a render) changes nothing and is told so by
the return value. Callers commit.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import or_, update
from sqlalchemy.orm import Session

from shared.codes.errors import ErrorCode
from shared.codes.item_status import (  # noqa: F401  (re-exported: the state machine's vocabulary)
    ACTIVE,
    ALLOWED,
    PROGRESS,
    TERMINAL,
    ItemStatus,
    S,
    batch_progress,
    batch_status,
    status_counts,
)
from shared.items.events import record_event
from shared.store.tables import Item


class TransitionError(ValueError):
    """A transition the state machine does not have (a programming error, not a lost race)."""


def _utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def transition(
    session: Session,
    item_id: str,
    to: ItemStatus,
    *,
    expected: Iterable[ItemStatus],
    where: dict | None = None,
    **values,
) -> bool:
    """Move one item to ``to`` if it is in one of ``expected`` (and matches ``where``).

    Returns True when the row changed. ``values`` are further columns to set in the same UPDATE.
    """

    return session.execute(_guarded(item_id, to, expected, where, values)).rowcount == 1


def _guarded(item_id: str, to: ItemStatus, expected: Iterable[ItemStatus], where: dict | None,
             values: dict):
    """:func:`transition`'s UPDATE statement."""
    below = values.pop("_attempts_below", None)
    expected = frozenset(ItemStatus(s) for s in expected)
    illegal = expected - ALLOWED[to]
    if illegal:
        raise TransitionError(f"no transition {sorted(illegal)} -> {to}")
    stmt = (
        update(Item)
        .where(Item.id == item_id, Item.status.in_([s.value for s in expected]))
        .values(status=to.value, updated_at=_utcnow(), **values)
        .execution_options(synchronize_session=False)
    )
    for column, value in (where or {}).items():
        stmt = stmt.where(getattr(Item, column) == value)
    if below is not None:  # the attempt cap: taken fewer than ``below`` times so far
        stmt = stmt.where(Item.attempts < below)
    return stmt


# Named transitions: the only ways the rest of the code changes an item's status.

def start_preview(session: Session, item_id: str, edit_version: int, worker: str,
                  max_attempts: int | None = None, charge: bool = True,
                  unheld: bool = False) -> bool:
    """A worker takes the item for a preview (first time, redelivery, or new edits). With
    ``max_attempts``, an item already charged that many takes is not taken again (see
    :func:`fail_exhausted`): every take of it alone counts, Celery's redelivery after a dead
    pool child included, so a photo that kills its worker cannot be taken forever. A take in a
    group (``charge=False``) is not charged: if its worker dies, the group is split and each
    item taken alone (``group_lost``), so only the culprit pays. ``unheld``: only if no worker
    holds it (a worker gathering other messages' items into its pass)."""

    where = {"edit_version": edit_version, **({"worker": None} if unheld else {})}
    return transition(
        session, item_id, S.PREVIEWING, expected={S.QUEUED, S.PREVIEWING},
        where=where, worker=worker,
        **({"attempts": Item.attempts + 1} if charge else {}), **_under_cap(max_attempts),
    )


def charge_attempt(session: Session, item_id: str, status: ItemStatus, worker: str,
                   max_attempts: int | None = None) -> bool:
    """Charge one take to an item this worker holds (taken uncharged in a group, now rendered
    alone); False when that would pass ``max_attempts``."""
    return _touch(session, item_id, status, attempts=Item.attempts + 1, _worker_is=worker,
                  **_under_cap(max_attempts))


def refund_attempt(session: Session, item_id: str, status: ItemStatus, worker: str) -> bool:
    """Give back the take charged to an item this worker holds when it took it alone and then
    gathered other messages' items into the same pass: the pass is a group now, and a group's
    takes are not charged (a crash there is split and charged to whoever fails alone)."""
    return _touch(session, item_id, status, attempts=Item.attempts - 1, _worker_is=worker,
                  _attempts_above=0)


def _under_cap(max_attempts: int | None) -> dict:
    # ``where`` only compares for equality; the cap travels as a marker that transition() and
    # _touch() turn into ``attempts < max_attempts``.
    return {} if max_attempts is None else {"_attempts_below": max_attempts}


def fail_exhausted(session: Session, item_id: str, status: ItemStatus, max_attempts: int,
                   edit_version: int | None = None) -> bool:
    """Fail an item that was taken ``max_attempts`` times without a result (``worker_lost``):
    the worker died or lost its work on every attempt."""

    expected = {S.QUEUED, S.PREVIEWING} if status != S.FINALIZING else {S.FINALIZING}
    stmt = (
        update(Item)
        .where(Item.id == item_id, Item.status.in_([s.value for s in expected]),
               Item.attempts >= max_attempts)
        .values(status=S.FAILED.value, updated_at=_utcnow(), worker=None, enqueued_at=None,
                error_code=str(ErrorCode.WORKER_LOST),
                error_message=f"taken {max_attempts} times, and the worker never finished it")
        .execution_options(synchronize_session=False)
    )
    if edit_version is not None and status != S.FINALIZING:
        stmt = stmt.where(Item.edit_version == edit_version)
    return session.execute(stmt).rowcount == 1


def complete_preview(session: Session, item_id: str, edit_version: int, unheld: bool = False,
                     **values) -> bool:
    """The preview for ``edit_version`` is stored; a stale one (edits changed since) is not.
    ``unheld``: a preview rendered before any take (``worker.render.warm``), stored only while
    no worker holds the item: the take and the completion in one UPDATE."""
    where = {"edit_version": edit_version, **({"worker": None} if unheld else {})}
    return _recorded(session, item_id, "item.preview_ready", transition(
        session, item_id, S.PREVIEW_READY, expected={S.PREVIEWING}, where=where, worker=None,
        error_code=None, error_message=None, **values,
    ))


#: Where an item's edits may change (a new preview follows).
EDITABLE = frozenset({S.QUEUED, S.PREVIEWING, S.PREVIEW_READY, S.DONE})


@dataclass(frozen=True)
class NewPreview:
    """What an edit wrote, as its UPDATE returned it: the new edit version and the item's state
    at that version (what a preview of it renders). A later change bumps the version, so the
    state of a version never changes."""

    version: int
    edits: dict | None  # the item's own edits (None: the batch's recipe's)
    face_edits: dict | None
    preview_cost: dict | None

    def render_state(self) -> dict:
        """The state as the preview message carries it (``worker.render.warm``)."""
        return {"edits": self.edits, "face_edits": self.face_edits,
                "preview_cost": self.preview_cost}


def request_edit(session: Session, item_id: str, edits: dict,
                 preview_cost: dict | None = None,
                 sent_at: datetime | None = None) -> NewPreview | None:
    """New edits (and optionally a new preview cost) for an item, in one guarded UPDATE: a new
    preview is needed. Returns the new version and state, or None when the item cannot take
    edits now (finalizing, failed, canceled); then nothing changed. The item is unheld (a worker
    rendering the old version loses its result) and unsent, or with ``sent_at`` marked sent in
    the same UPDATE (what :func:`mark_sent` would do next: the caller sends its message after
    the commit)."""

    return _new_preview(session, item_id, preview_cost, sent_at, edits=edits)


def request_face_edit(session: Session, item_id: str, face_edits: dict, seen_version: int,
                      preview_cost: dict | None = None,
                      sent_at: datetime | None = None) -> NewPreview | None:
    """New per-face overrides (``item.face_edits``, the whole map) for an item whose edit
    version is still ``seen_version`` (the overrides were read at it: a concurrent edit must not
    be lost), as :func:`request_edit` otherwise. None when the item cannot take edits now or
    its version moved on; then nothing changed."""

    return _new_preview(session, item_id, preview_cost, sent_at,
                        where={"edit_version": seen_version}, face_edits=face_edits or None)


def _new_preview(session: Session, item_id: str, preview_cost: dict | None,
                 sent_at: datetime | None, where: dict | None = None,
                 **changes) -> NewPreview | None:
    values = {} if preview_cost is None else {"preview_cost": preview_cost}
    stmt = _guarded(
        item_id, S.PREVIEWING, EDITABLE, where, dict(
            edit_version=Item.edit_version + 1, final_blob_id=None,
            final_realism=None, consistency=None,  # they described the final that is gone
            attempts=0, group_lost=0,  # a new piece of work: the attempt cap starts again
            worker=None, enqueued_at=sent_at, **changes, **values),
    )
    # The new version and state from the UPDATE itself (RETURNING: SQLite >= 3.35 and
    # PostgreSQL): the row as this edit left it, whatever a concurrent edit read before.
    row = session.execute(stmt.returning(Item.edit_version, Item.edits, Item.face_edits,
                                         Item.preview_cost)).one_or_none()
    return None if row is None else NewPreview(*row)


def request_final(session: Session, item_id: str) -> bool:
    return transition(session, item_id, S.FINALIZING, expected={S.PREVIEW_READY}, attempts=0,
                      group_lost=0, worker=None, enqueued_at=None)


def start_final(session: Session, item_id: str, worker: str,
                max_attempts: int | None = None, charge: bool = True,
                unheld: bool = False) -> bool:
    """A worker takes a final render; a redelivered task may take it again (still finalizing),
    up to ``max_attempts`` charged takes (see :func:`start_preview`); ``unheld``: only if no
    worker holds it."""

    return _touch(session, item_id, S.FINALIZING, worker=worker,
                  **({"attempts": Item.attempts + 1} if charge else {}),
                  **_under_cap(max_attempts), **({"_worker_is": None} if unheld else {}))


def _touch(session: Session, item_id: str, status: ItemStatus, **values) -> bool:
    """Update columns of an item that is (still) in ``status``, without changing the status."""

    below = values.pop("_attempts_below", None)
    above = values.pop("_attempts_above", None)
    worker_is = values.pop("_worker_is", _ANY)
    stmt = (
        update(Item)
        .where(Item.id == item_id, Item.status == status.value)
        .values(updated_at=_utcnow(), **values)
        .execution_options(synchronize_session=False)
    )
    if below is not None:
        stmt = stmt.where(Item.attempts < below)
    if above is not None:
        stmt = stmt.where(Item.attempts > above)
    if worker_is is not _ANY:
        stmt = stmt.where(Item.worker.is_(None) if worker_is is None else Item.worker == worker_is)
    return session.execute(stmt).rowcount == 1


_ANY = object()


def complete_final(session: Session, item_id: str, **values) -> bool:
    return _recorded(session, item_id, "item.done", transition(
        session, item_id, S.DONE, expected={S.FINALIZING}, worker=None, **values))


def fail(session: Session, item_id: str, code: str, message: str) -> bool:
    return _recorded(session, item_id, "item.failed", transition(
        session, item_id, S.FAILED,
        expected={S.QUEUED, S.PREVIEWING, S.PREVIEW_READY, S.FINALIZING},
        error_code=code, error_message=message, worker=None,
    ))


def _recorded(session: Session, item_id: str, kind: str, changed: bool) -> bool:
    """Write the outbox event of a transition that happened, in its transaction (shared.items.events)."""
    if changed:
        record_event(session, item_id, kind)
    return changed


def cancel(session: Session, item_id: str) -> bool:
    return transition(session, item_id, S.CANCELED, expected=ALLOWED[S.CANCELED], worker=None)


def retry(session: Session, item_id: str) -> bool:
    """A failed item goes back to the queue, unsent, with a fresh attempt count."""

    return transition(
        session, item_id, S.QUEUED, expected={S.FAILED}, attempts=0, group_lost=0, error_code=None,
        error_message=None, edit_version=Item.edit_version + 1, enqueued_at=None,
    )


def requeue_lost(session: Session, item_id: str, status: ItemStatus, group: bool = False) -> bool:
    """A worker died holding the item: put it back, unsent, where a new worker will pick it up
    (the reconciler sends it). ``group``: it was held with others (uncharged): it is marked
    to be taken alone from now on (``group_lost``)."""
    marks = {"group_lost": Item.group_lost + 1} if group else {}
    if status == S.PREVIEWING:
        return transition(session, item_id, S.QUEUED, expected={S.PREVIEWING}, worker=None,
                          enqueued_at=None, **marks)
    if status == S.FINALIZING:
        return _touch(session, item_id, S.FINALIZING, worker=None, enqueued_at=None, **marks)
    raise TransitionError(f"cannot requeue an item in {status}")


def release(session: Session, item_id: str, worker: str) -> bool:
    """A task that dies gives back what it held (only if ``worker`` still holds it): previews go
    back to ``queued``, finals stay ``finalizing``; unsent either way, so they are sent again."""
    if transition(session, item_id, S.QUEUED, expected={S.PREVIEWING}, where={"worker": worker},
                  worker=None, enqueued_at=None):
        return True
    return _touch(session, item_id, S.FINALIZING, worker=None, enqueued_at=None,
                  _worker_is=worker)


# "Sent": ``Item.enqueued_at`` is when a message for the item's current work was last sent.
# Cleared by the transitions that create new work (edit, final request, retry, requeue,
# release); set by the sender just before it sends, and cleared again when the send fails.

def mark_sent(session: Session, item_id: str, status: ItemStatus, now: datetime | None = None,
              stale_before: datetime | None = None) -> bool:
    """Claim the sending of one unheld item in ``status``: True when it was unsent (or sent
    before ``stale_before``) and nobody holds it. Two senders never both win."""

    sent = Item.enqueued_at.is_(None)
    if stale_before is not None:
        sent = or_(sent, Item.enqueued_at < stale_before)
    stmt = (
        update(Item)
        .where(Item.id == item_id, Item.status == ItemStatus(status).value,
               Item.worker.is_(None), sent)
        .values(enqueued_at=now or _utcnow())
        .execution_options(synchronize_session=False)
    )
    return session.execute(stmt).rowcount == 1


def mark_unsent(session: Session, item_ids: Iterable[str],
                sent_before: datetime | None = None) -> int:
    """The send failed (or its message is presumed lost when ``sent_before`` is given): the
    items are to be sent again. Items a worker took meanwhile are left alone."""

    ids = list(item_ids)
    if not ids:
        return 0
    stmt = (
        update(Item)
        .where(Item.id.in_(ids), Item.status.in_([s.value for s in ACTIVE]),
               Item.worker.is_(None), Item.enqueued_at.is_not(None))
        .values(enqueued_at=None)
        .execution_options(synchronize_session=False)
    )
    if sent_before is not None:
        stmt = stmt.where(Item.enqueued_at < sent_before)
    return session.execute(stmt).rowcount
