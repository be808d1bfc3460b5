"""What a user can do to batches and items, for the REST API and the portal alike.

Each operation writes SQL first (committed, the items marked sent), then sends queue messages
through ``shared.items.sending``: if Redis is down the work is not lost, the items are marked
unsent again and the reconciler (``shared.items.recovery``, run by the reaper) sends them later.
A user's unfinished items are capped (``shared.commands.quota``). Deleting a batch removes every
byte of it (``shared.store.retention``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace

from sqlalchemy import func, select
from sqlalchemy.orm import Session, joinedload, sessionmaker

from shared.catalog.configs import ModelConfig, get_model_config
from shared.catalog.edit_names import names_for
from shared.codes.attributes import resolve_attribute
from shared.commands.availability import require_live
from shared.commands.errors import CommandError
from shared.commands.quota import check_quota
from shared.items import states
from shared.items.sending import Sender
from shared.items.states import ItemStatus
from shared.platform.queue import Dispatcher
from shared.platform.settings import Settings
from shared.recipe.parse import Cost, Recipe, parse_cost, parse_edits
from shared.store.blobs import BlobStore
from shared.store.retention import delete_batch_data
from shared.store.tables import Batch, Item, new_id, utcnow

log = logging.getLogger(__name__)


FACE_EDIT_TRIES = 3  # a per-face edit that loses the race with another edit reads again


@dataclass(frozen=True)
class Upload:
    filename: str
    data: bytes
    content_type: str


def owned_batch(session: Session, owner_id: int, batch_id: str) -> Batch:
    """The batch ``batch_id`` of ``owner_id``; 404 when there is none or it is another user's
    (the API's routes and the stream service alike)."""
    batch = session.get(Batch, batch_id)
    if batch is None or batch.owner_id != owner_id:
        raise CommandError("not_found", "no such batch", 404)
    return batch


class Batches:
    """The user commands on batches and items; ``sender`` sends what they queue."""

    def __init__(
        self,
        settings: Settings,
        sessions: sessionmaker[Session],
        blobs: BlobStore,
        dispatcher: Dispatcher,
    ):
        self.settings = settings
        self.sessions = sessions
        self.blobs = blobs
        self.sender = Sender(settings, sessions, dispatcher)

    # --- reading, with per-owner access ------------------------------------------------------

    def get_batch(self, session: Session, owner_id: int, batch_id: str) -> Batch:
        return owned_batch(session, owner_id, batch_id)

    def get_item(self, session: Session, owner_id: int, item_id: str) -> Item:
        # With its batch in one query (every item route reads both; the editor's loop, often).
        item = session.get(Item, item_id, options=[joinedload(Item.batch)])
        if item is None or item.batch.owner_id != owner_id:
            raise CommandError("not_found", "no such item", 404)
        return item

    def list_batches(
        self, session: Session, owner_id: int, page: int = 1, per_page: int = 20,
        name_contains: str | None = None,
    ) -> tuple[list[Batch], int]:
        """One page of the owner's batches, newest first; ``name_contains``: only those whose
        name holds that text, ignoring case (LIKE wildcards in it are plain characters)."""
        where = [Batch.owner_id == owner_id]
        if name_contains:
            where.append(func.lower(Batch.name).contains(name_contains.lower(), autoescape=True))
        total = session.scalar(select(func.count()).select_from(Batch).where(*where))
        rows = session.scalars(
            select(Batch).where(*where)
            .order_by(Batch.created_at.desc(), Batch.id).limit(per_page)
            .offset((page - 1) * per_page)
        ).all()
        return list(rows), int(total or 0)

    # --- writing ----------------------------------------------------------------------------

    def create_batch(self, owner_id: int, uploads: Sequence[Upload], recipe: Recipe,
                     webhook_url: str | None = None, name: str | None = None) -> str:
        """``name``: already checked (``shared.recipe.batch_names.parse_batch_name``)."""
        if not uploads:
            raise CommandError("no_files", "a batch needs at least one file (form field 'files')")
        if len(uploads) > self.settings.max_files_per_batch:
            raise CommandError(
                "too_many_files",
                f"{len(uploads)} files; at most {self.settings.max_files_per_batch} per batch",
                413,
            )
        batch_id = new_id()
        with self.sessions.begin() as session:
            # Nothing would ever render them: 409 with the worker's reason, not "Queued 0%".
            require_live(session, self.settings, self.settings.model)
            check_quota(session, self.settings, owner_id, len(uploads))
            session.add(Batch(
                id=batch_id, owner_id=owner_id, recipe=recipe.as_dict(),
                model_name=self.settings.model, webhook_url=webhook_url, name=name,
            ))
            session.flush()
            for position, upload in enumerate(uploads):
                blob = self.blobs.put(session, upload.data, upload.content_type, batch_id=batch_id)
                session.add(Item(
                    id=new_id(), batch_id=batch_id, position=position,
                    filename=upload.filename[:255], status=ItemStatus.QUEUED.value,
                    upload_blob_id=blob.id, preview_cost=recipe.preview.as_dict(),
                    final_cost=recipe.final.as_dict(), timings={}, edit_version=0, attempts=0,
                ))
        self.sender.release_user(owner_id)
        return batch_id

    # --- what users ask for -----------------------------------------------------------------

    def finalize_batch(self, owner_id: int, batch_id: str) -> int:
        """Queue finals for every preview_ready item. Returns how many were queued."""
        with self.sessions.begin() as session:
            batch = self.get_batch(session, owner_id, batch_id)
            ids = [i.id for i in batch.items if i.status == ItemStatus.PREVIEW_READY.value]
            queued = [i for i in ids if states.request_final(session, i)]
        if queued:
            self.sender.send_unheld(ItemStatus.FINALIZING, [(i, 0) for i in queued])
        return len(queued)

    def finalize_item(self, owner_id: int, item_id: str) -> None:
        with self.sessions.begin() as session:
            item = self.get_item(session, owner_id, item_id)
            if not states.request_final(session, item.id):
                raise CommandError(
                    "invalid_state", f"item is {item.status}; only a preview_ready item can be "
                    "finalized", 409)
        self.sender.send_unheld(ItemStatus.FINALIZING, [(item_id, 0)])

    def edit_names(self, owner_id: int | None, model: str | None = None) -> dict[str, str]:
        """Edit names beyond the built-in attributes this user may use: the generator
        directions of ``model`` (default: the service's) and the user's own for it (name ->
        stored key; see ``shared.catalog.directions``)."""
        with self.sessions() as session:
            return self._names(session, owner_id, model)

    def _names(self, session: Session, owner_id: int | None, model: str | None) -> dict[str, str]:
        settings = self.settings if model in (None, self.settings.model) else replace(
            self.settings, model=model)
        return names_for(session, settings, owner_id)

    def edit_item(self, owner_id: int, item_id: str, raw_edits, raw_preview=None,
                  face=None) -> int:
        """New edits (and optionally a new preview cost, ``raw_preview`` as sent: missing
        fields are the item's own) for one item: a new preview. Returns the new edit version. A
        refused edit (4xx) changes nothing.

        ``face`` (an index into ``item.faces``): the edits become that face's override
        (``item.face_edits``; no edits remove it) and the item's own edits stay; without it the
        item's edits change and the overrides stay.

        The edit, and marking its preview message sent, are one UPDATE; the message goes after
        the commit (the editor's loop: one write, one send)."""
        if face is not None:
            return self._edit_face(owner_id, item_id, raw_edits, face, raw_preview)
        with self.sessions.begin() as session:
            item = self.get_item(session, owner_id, item_id)
            model = item.batch.model_name
            edits = self._item_edits(session, owner_id, model, raw_edits)
            old_final = item.final_blob_id
            # Marked sent in the same UPDATE: its message goes once this commits.
            new = states.request_edit(session, item.id, edits,
                                      self._preview_cost(item, raw_preview), sent_at=utcnow())
            if new is None:
                raise CommandError(
                    "invalid_state", f"item is {item.status}; its edits cannot change now", 409)
            self.blobs.delete(session, [old_final])  # the final of edits that are gone
        self.sender.send_preview(item_id, new, model)
        return new.version

    def _item_edits(self, session: Session, owner_id: int, model: str, raw_edits) -> dict:
        """Edits for an item of ``model``, named by its own directions and the user's for it.
        Built-in attribute names come first (``parse_edits``): edits of the service's model
        that use only those need no look at the user's directions (the editor's sliders)."""
        if model in (None, self.settings.model) and _built_in_names_only(raw_edits):
            return parse_edits(raw_edits)
        names = self._names(session, owner_id, model)
        edits = parse_edits(raw_edits, extra_names=names)
        self._check_model_edits(model, edits, names)
        return edits

    def _edit_face(self, owner_id: int, item_id: str, raw_edits, face, raw_preview) -> int:
        if isinstance(face, bool) or not isinstance(face, int):
            raise CommandError("invalid_face", "face must be the index (an integer) of one of the "
                               "item's faces")
        status, new = None, None
        for _ in range(FACE_EDIT_TRIES):  # the overrides are one JSON map: read, change, write
            with self.sessions.begin() as session:
                item = self.get_item(session, owner_id, item_id)
                model = item.batch.model_name
                edits = self._item_edits(session, owner_id, model, raw_edits)
                faces = item.faces or []
                if not faces:
                    raise CommandError("not_ready", "the faces of this item are not known yet (its "
                                       "first preview finds them); try again when it is ready", 409)
                if not 0 <= face < len(faces):
                    raise CommandError("invalid_face", f"face {face}: this item has {len(faces)} "
                                       f"face(s), numbered 0 to {len(faces) - 1}")
                status = item.status
                if ItemStatus(status) not in states.EDITABLE:
                    break
                overrides = {k: v for k, v in (item.face_edits or {}).items() if k != str(face)}
                if edits:
                    overrides[str(face)] = edits
                old_final = item.final_blob_id
                new = states.request_face_edit(session, item.id, overrides, item.edit_version,
                                               self._preview_cost(item, raw_preview),
                                               sent_at=utcnow())
                if new is not None:
                    self.blobs.delete(session, [old_final])  # the final of edits that are gone
                    break
        else:  # another edit won the race every time
            raise CommandError("conflict", "the item's edits kept changing meanwhile; try again", 409)
        if new is None:
            raise CommandError(
                "invalid_state", f"item is {status}; its edits cannot change now", 409)
        self.sender.send_preview(item_id, new, model)  # marked sent with the edit
        return new.version

    def _preview_cost(self, item: Item, raw) -> dict | None:
        """A requested preview cost checked for the item's model; missing fields are the
        item's current preview cost. None: keep the item's."""
        if raw is None:
            return None
        resolution = self.model_config(item.batch.model_name).resolution
        return parse_cost(raw, "preview", resolution, Cost(**item.preview_cost)).as_dict()

    def model_config(self, name: str | None) -> ModelConfig:
        """The catalogue entry of a batch's model; the service's own for None or a model gone
        from the catalogue (its worker says what is wrong)."""
        try:
            return get_model_config(name or self.settings.model, self.settings.weights_dir)
        except KeyError:
            return get_model_config(self.settings.model, self.settings.weights_dir)

    def _check_model_edits(self, model: str, edits: dict, names: dict[str, str]) -> None:
        """A config without attribute boundaries (a car generator) takes only directions."""
        if model == self.settings.model:
            return
        try:
            config = get_model_config(model, self.settings.weights_dir)
        except KeyError:
            return  # a model gone from the catalogue: the worker says what is wrong
        if "boundary" in config.kinds:
            return
        for key in edits:
            if key not in names.values():
                raise CommandError("invalid_edits", f"edits.{key}: model {model} has no attribute "
                                   "boundaries; use its directions (GET /api/v1/models)")

    def set_preview_cost(self, owner_id: int, item_id: str, cost: dict) -> None:
        with self.sessions.begin() as session:
            item = self.get_item(session, owner_id, item_id)
            item.preview_cost = cost

    def rename_batch(self, owner_id: int, batch_id: str, name: str | None) -> None:
        """Set (or with None clear) a batch's name; ``name`` already checked
        (``shared.recipe.batch_names.parse_batch_name``)."""
        with self.sessions.begin() as session:
            self.get_batch(session, owner_id, batch_id).name = name

    def cancel_batch(self, owner_id: int, batch_id: str) -> int:
        with self.sessions.begin() as session:
            batch = self.get_batch(session, owner_id, batch_id)
            n = sum(states.cancel(session, item.id) for item in batch.items)
            batch.canceled_at = utcnow()
        return n

    def retry_item(self, owner_id: int, item_id: str) -> None:
        with self.sessions.begin() as session:
            item = self.get_item(session, owner_id, item_id)
            if not states.retry(session, item.id):
                raise CommandError("invalid_state", f"item is {item.status}; only a failed item can "
                                   "be retried", 409)
        self.sender.release_user(owner_id)

    # --- deleting -------------------------------------------------------------------------

    def delete_batch(self, owner_id: int, batch_id: str) -> dict:
        """Remove a batch and every byte of it: items, latents, uploads, previews, finals (and
        blobs a crash left unreferenced). A worker rendering one of its items loses its result."""
        with self.sessions.begin() as session:
            self.get_batch(session, owner_id, batch_id)
            return delete_batch_data(session, self.blobs, batch_id)


def _built_in_names_only(raw_edits) -> bool:
    """Whether every name in ``raw_edits`` (as sent) is a built-in attribute or its alias."""
    if not isinstance(raw_edits, dict):
        return False
    try:
        for name in raw_edits:
            resolve_attribute(name)
    except (KeyError, TypeError, AttributeError):
        return False
    return True
