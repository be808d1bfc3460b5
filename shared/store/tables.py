"""SQLAlchemy models: users and API tokens, batches, items, latents, blobs, worker heartbeats,
users' own edit directions and direction strips (the explorer's previews), model evaluations,
the event outbox with its webhook deliveries, and idempotency keys of uploads.

The database is the source of truth for every job; queue messages carry ids only. Columns are
NOT NULL unless there is a reason. The schema only changes through a migration (migrations/).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from shared.codes.item_status import ItemStatus
from shared.store.db import Base


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def new_id() -> str:
    """Random, unguessable ids: they appear in URLs."""
    return uuid.uuid4().hex


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(80), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(255))  # None: API tokens only
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # Copied into every signed session; bumped on sign-out and password change, which ends every
    # session signed before (a signed cookie cannot be taken back otherwise).
    session_epoch: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Signs this user's webhooks ("whsec_" + base64 key, Standard Webhooks); None until made.
    webhook_secret: Mapped[str | None] = mapped_column(String(100))

    tokens: Mapped[list[ApiToken]] = relationship(back_populates="user")


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 hex of the token
    prefix: Mapped[str] = mapped_column(String(12))  # first characters, to tell tokens apart
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime)
    name: Mapped[str | None] = mapped_column(String(80))  # the owner's label
    expires_at: Mapped[datetime | None] = mapped_column(DateTime)  # None: never
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime)
    # The token that made this one over the API (None: the portal or the operator's CLI). A
    # child never outlives it: its expiry is capped at the parent's, revoking it revokes this.
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("api_tokens.id", ondelete="CASCADE", name="fk_api_tokens_parent_id_api_tokens"),
        index=True)

    user: Mapped[User] = relationship(back_populates="tokens")


class Blob(Base):
    """Image bytes. Stored in the database by default so workers on other hosts need no shared
    disk; with the filesystem store ``data`` is NULL and ``path`` names the file."""

    __tablename__ = "blobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    content_type: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    data: Mapped[bytes | None] = mapped_column(LargeBinary)
    path: Mapped[str | None] = mapped_column(String(500))
    # The batch whose item made it; no foreign key, so a blob orphaned by a crash between
    # writing it and referencing it is still found (and deleted) with its batch.
    batch_id: Mapped[str | None] = mapped_column(String(32), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Batch(Base):
    __tablename__ = "batches"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    recipe: Mapped[dict] = mapped_column(JSON)  # validated recipe, defaults filled in
    model_name: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    canceled_at: Mapped[datetime | None] = mapped_column(DateTime)
    webhook_url: Mapped[str | None] = mapped_column(String(2000))  # events are POSTed here
    name: Mapped[str | None] = mapped_column(String(200))  # the owner's label; NULL: none

    owner: Mapped[User] = relationship()
    items: Mapped[list[Item]] = relationship(
        back_populates="batch", order_by="Item.position", cascade="all, delete-orphan"
    )


class Item(Base):
    """One photo of a batch and its way through the state machine (shared.items.states)."""

    __tablename__ = "items"
    __table_args__ = (
        Index("ix_items_batch_status", "batch_id", "status"),
        Index("ix_items_status_enqueued", "status", "enqueued_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    batch_id: Mapped[str] = mapped_column(ForeignKey("batches.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    filename: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(20), default=ItemStatus.QUEUED.value, index=True)
    # Takes charged to this item: each take of it alone (shared.items.states.start_preview).
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Times a worker died (or its take was lost) while it held the item in a group: the item
    # was not charged for that, but it may be the culprit, so from now on it is taken alone.
    group_lost: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    error_code: Mapped[str | None] = mapped_column(String(40))
    error_message: Mapped[str | None] = mapped_column(Text)
    # Edits for this item; NULL means the batch recipe's edits.
    edits: Mapped[dict | None] = mapped_column(JSON)
    # Per-face overrides of ``edits`` when a photo has several faces: {"<face index>": edits}.
    face_edits: Mapped[dict | None] = mapped_column(JSON)
    # The faces found in the photo, in latent order: [{"box": [x0, y0, x1, y1]}, ...] (fractions
    # 0..1 of the decoded upload's width and height); NULL until the first preview pass, and for
    # synthesised items.
    faces: Mapped[list | None] = mapped_column(JSON)
    # Bumped on every edit request: a preview rendered for an older version is dropped.
    edit_version: Mapped[int] = mapped_column(Integer, default=0)
    preview_cost: Mapped[dict] = mapped_column(JSON)  # {"channels": r, "resolution": px}
    final_cost: Mapped[dict] = mapped_column(JSON)
    timings: Mapped[dict] = mapped_column(JSON, default=dict)  # stage -> seconds
    model_name: Mapped[str | None] = mapped_column(String(80))  # what rendered it
    pretrained: Mapped[bool | None] = mapped_column(Boolean)
    worker: Mapped[str | None] = mapped_column(String(255))  # node that holds it now
    # When a message for the item's current work was sent (NULL: to be sent); only changed by
    # shared.items.states. The reconciler sends unheld items that are unsent or sent too long ago.
    enqueued_at: Mapped[datetime | None] = mapped_column(DateTime)
    # NULL for a synthesised item: its W+ code comes from ``synthesis`` (shared.commands.synthesis)
    upload_blob_id: Mapped[str | None] = mapped_column(ForeignKey("blobs.id"))
    # {"seed", "truncation", "mix_seed", "mix_from_slot"} of an item made from a seed
    synthesis: Mapped[dict | None] = mapped_column(JSON)
    projected_blob_id: Mapped[str | None] = mapped_column(ForeignKey("blobs.id"))
    preview_blob_id: Mapped[str | None] = mapped_column(ForeignKey("blobs.id"))
    final_blob_id: Mapped[str | None] = mapped_column(ForeignKey("blobs.id"))
    # Quality (shared.items.quality): the discriminator's logit for the latest preview and the final
    # (NULL when the model has no discriminator), how the face was projected into W+
    # ({"method", "error", ...}) and how close the final came to the last preview ({"psnr", ...}).
    preview_realism: Mapped[float | None] = mapped_column(Float)
    final_realism: Mapped[float | None] = mapped_column(Float)
    projection: Mapped[dict | None] = mapped_column(JSON)
    consistency: Mapped[dict | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)

    batch: Mapped[Batch] = relationship(back_populates="items")
    latent: Mapped[Latent | None] = relationship(
        back_populates="item", cascade="all, delete-orphan", uselist=False
    )

    @property
    def status_enum(self) -> ItemStatus:
        return ItemStatus(self.status)


class Latent(Base):
    """The W+ code of an item's face (float32 bytes, C order) plus how the crop was made."""

    __tablename__ = "latents"

    item_id: Mapped[str] = mapped_column(
        ForeignKey("items.id", ondelete="CASCADE"), primary_key=True
    )
    shape: Mapped[list] = mapped_column(JSON)  # e.g. [1, 18, 512] or [faces, 18, 512]
    data: Mapped[bytes] = mapped_column(LargeBinary)
    model_name: Mapped[str] = mapped_column(String(80))
    # Face crops and their transforms, inversion losses ... (pipeline-defined).
    meta: Mapped[dict] = mapped_column(JSON, default=dict)
    encode_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    item: Mapped[Item] = relationship(back_populates="latent")


class WorkerHeartbeat(Base):
    """A worker process that says it is alive; the reaper requeues what a silent one held.
    ``load_error`` set: a worker that could not load its model (it serves nothing), with the
    reason and ``load_fix``, what to do (``shared.commands.availability`` reads them)."""

    __tablename__ = "worker_heartbeats"

    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    queues: Mapped[str] = mapped_column(String(100))
    model_name: Mapped[str] = mapped_column(String(80))
    pretrained: Mapped[bool] = mapped_column(Boolean)
    device: Mapped[str] = mapped_column(String(40))
    started_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    load_error: Mapped[str | None] = mapped_column(Text)  # NULL: the model loaded
    load_fix: Mapped[str | None] = mapped_column(Text)


class UserDirection(Base):
    """A user's own edit direction in one model's W: learned from examples ("learned", with its
    vector) or a generator direction saved under a name ("saved": ``source`` names it, the
    vector stays in the weights directory). Edits use it by name as ``user:<name>``."""

    __tablename__ = "user_directions"
    __table_args__ = (UniqueConstraint("owner_id", "model_name", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    model_name: Mapped[str] = mapped_column(String(80))
    name: Mapped[str] = mapped_column(String(40))
    method: Mapped[str] = mapped_column(String(20))  # learned | saved
    source: Mapped[str | None] = mapped_column(String(40))  # saved: the generator key
    vector: Mapped[list | None] = mapped_column(JSON)  # learned: unit vector, style_dim floats
    slots: Mapped[list] = mapped_column(JSON)  # W+ slots the edit moves
    gain: Mapped[float] = mapped_column(Float)  # W displacement at value 1
    # learned: example item ids, accuracy and margin on them
    meta: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class DirectionStrip(Base):
    """Previews of one item along one direction (values from -1 to +1), rendered by a worker at
    the item's preview cost into one image, frames side by side."""

    __tablename__ = "direction_strips"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    item_id: Mapped[str] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), index=True)
    direction: Mapped[str] = mapped_column(String(80))  # stored edit key
    values: Mapped[list] = mapped_column(JSON)
    cost: Mapped[dict] = mapped_column(JSON)  # {"channels": r, "resolution": px}
    status: Mapped[str] = mapped_column(String(20), default="queued")  # queued | done | failed
    blob_id: Mapped[str | None] = mapped_column(ForeignKey("blobs.id"))
    error_message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class Evaluation(Base):
    """A measurement of a model (FID, PPL or preview/final consistency), run as a job on the
    ``evaluate`` queue. ``params`` is what was asked (n, costs, seed, data set); ``result`` what
    the worker measured, with the settings it used (Inception file hash, LPIPS net ...)."""

    __tablename__ = "evaluations"
    __table_args__ = (Index("ix_evaluations_model_created", "model_name", "created_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    model_name: Mapped[str] = mapped_column(String(80))
    kind: Mapped[str] = mapped_column(String(20))  # fid | ppl | consistency
    status: Mapped[str] = mapped_column(String(20), default="queued")  # shared.commands.evaluations
    params: Mapped[dict] = mapped_column(JSON)
    result: Mapped[dict | None] = mapped_column(JSON)
    error_code: Mapped[str | None] = mapped_column(String(40))
    error_message: Mapped[str | None] = mapped_column(Text)
    worker: Mapped[str | None] = mapped_column(String(255))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    # When the operator shared it with every user (``flask --app web evaluations share``);
    # None: only its owner reads it.
    shared_at: Mapped[datetime | None] = mapped_column(DateTime)


class Event(Base):
    """The outbox: what happened to an item or a batch, written in the same transaction as the
    change itself (shared.items.events), so no event is lost and none is told that did not happen."""

    __tablename__ = "events"
    __table_args__ = (Index("ix_events_batch_id_id", "batch_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)  # order within the database
    public_id: Mapped[str] = mapped_column(String(40), unique=True)  # the webhook-id
    batch_id: Mapped[str] = mapped_column(ForeignKey("batches.id", ondelete="CASCADE"))
    item_id: Mapped[str | None] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(40))  # item.done, batch.completed ...
    data: Mapped[dict] = mapped_column(JSON)  # the webhook payload's "data"
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class WebhookDelivery(Base):
    """One event to one URL: retried with backoff until delivered or out of attempts."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_deliveries_status_next", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(String(2000))
    status: Mapped[str] = mapped_column(String(20), default="pending")  # pending|delivered|failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    last_attempt_at: Mapped[datetime | None] = mapped_column(DateTime)  # None: not tried yet
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    event: Mapped[Event] = relationship()


class IdempotencyKey(Base):
    """An ``Idempotency-Key`` of an upload: the same key and body again returns the same batch."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("user_id", "key", name="uq_idempotency_keys_user_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(255))
    fingerprint: Mapped[str] = mapped_column(String(64))  # sha256 of the request's content
    batch_id: Mapped[str | None] = mapped_column(  # None while the upload is being stored
        ForeignKey("batches.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
