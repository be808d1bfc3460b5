"""What a user can do with edit directions, for the REST API and the portal alike: list them,
learn one from examples, save a generator direction under a name, delete one, and ask for a
strip of previews along a direction (the explorer). SQL and queue messages only: learning is a
small numpy problem (``shared.commands.learning``); strips are rendered by a worker.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from shared.catalog.configs import UnknownConfigError, get_model_config
from shared.catalog.directions import (
    DirectionNameError,
    check_direction_name,
    generator_directions,
    user_key,
)
from shared.catalog.edit_names import names_for, user_rows
from shared.commands.errors import CommandError
from shared.commands.learning import latent_feature, learn_direction
from shared.platform.queue import Dispatcher
from shared.platform.settings import Settings
from shared.recipe.parse import RecipeError, parse_edits
from shared.store.tables import Batch, DirectionStrip, Item, Latent, UserDirection, utcnow

log = logging.getLogger(__name__)

STRIP_STEPS = (3, 11)  # fewest and most frames of a strip
DEFAULT_STRIP_STEPS = 7
MAX_EXAMPLES = 500  # per side
LEARNED, SAVED = "learned", "saved"  # how a user's direction came to be (UserDirection.method)
DIRECTION_METHODS = (LEARNED, SAVED)
STRIP_STATUSES = ("queued", "done", "failed")  # DirectionStrip.status


def describe(row: UserDirection) -> dict:
    """A user direction as the API shows it (no vector)."""
    meta = row.meta or {}
    return {
        "key": user_key(row.name), "name": row.name, "model": row.model_name,
        "method": row.method, "source": row.source,
        "slots": list(row.slots), "gain": row.gain,
        **{k: meta[k] for k in ("accuracy", "margin", "positive", "negative") if k in meta},
        "created_at": row.created_at.isoformat() + "Z",
    }


def describe_strip(strip: DirectionStrip) -> dict:
    return {"id": strip.id, "item_id": strip.item_id, "direction": strip.direction,
            "values": list(strip.values), "cost": dict(strip.cost), "status": strip.status,
            "error": strip.error_message}


def _id_list(raw, field: str) -> list[str]:
    if not isinstance(raw, list) or not all(isinstance(i, str) and i for i in raw):
        raise CommandError("invalid_examples", f"{field} must be a list of item ids")
    ids = list(dict.fromkeys(raw))
    if len(ids) > MAX_EXAMPLES:
        raise CommandError("invalid_examples", f"{field}: at most {MAX_EXAMPLES} items")
    return ids


class UserDirections:
    def __init__(self, settings: Settings, sessions: sessionmaker[Session], dispatcher: Dispatcher):
        self.settings = settings
        self.sessions = sessions
        self.dispatcher = dispatcher

    def listing(self, owner_id: int, model: str | None = None) -> list[dict]:
        """The user's directions for ``model`` (default: the service's)."""
        with self.sessions() as session:
            return [describe(r) for r in user_rows(session, owner_id,
                                                   model or self.settings.model)]

    def _new_name(self, session: Session, owner_id: int, raw_name, model: str) -> str:
        """A free name for a new direction of ``model`` (names are per user and model)."""
        try:
            name = check_direction_name(raw_name)
        except DirectionNameError as exc:
            raise CommandError("invalid_name", str(exc)) from None
        taken = session.scalar(select(UserDirection.id).where(
            UserDirection.owner_id == owner_id, UserDirection.model_name == model,
            UserDirection.name == name))
        if taken is not None:
            raise CommandError("name_taken", f"you already have a direction called {name!r} "
                               f"for model {model}", 409)
        return name

    def _examples(self, session: Session, owner_id: int, ids: Sequence[str], field: str) -> dict:
        """The owner's items among ``ids`` whose code is from their batch's model (id -> row
        with the code and ``model``); any other is refused by id."""
        rows = session.execute(
            select(Item.id, Latent.data, Latent.shape, Batch.model_name.label("model"))
            .join(Batch, Batch.id == Item.batch_id).join(Latent, Latent.item_id == Item.id)
            .where(Item.id.in_(list(ids)), Batch.owner_id == owner_id,
                   Latent.model_name == Batch.model_name)
        ).all()
        found = {r.id: r for r in rows}
        missing = [i for i in ids if i not in found]
        if missing:
            raise CommandError("invalid_examples", f"{field}: {len(missing)} item(s) are not yours or "
                               f"have no code yet (preview them first): {', '.join(missing[:5])}")
        return found

    def _model_of(self, examples: dict, model: str | None) -> str:
        """The one model every example's code is from (and ``model``, when asked for)."""
        models = sorted({r.model for r in examples.values()})
        if len(models) > 1:
            raise CommandError("invalid_examples", f"the examples are items of models "
                               f"{', '.join(models)}: learn from the items of one model")
        if model is not None and models != [model]:
            raise CommandError("invalid_examples", f"the examples are items of model {models[0]}, "
                               f"not {model}")
        return models[0]

    def learn(self, owner_id: int, raw_name, positive, negative, model: str | None = None) -> dict:
        """Learn ``name`` from items that have the attribute and items that lack it. The
        direction belongs to the examples' model (all from one; ``model``, when given, must be
        it): a slider of that model's items."""
        pos, neg = _id_list(positive, "positive"), _id_list(negative, "negative")
        if set(pos) & set(neg):
            raise CommandError("invalid_examples", "an item cannot be both positive and negative")
        with self.sessions.begin() as session:
            examples = {**self._examples(session, owner_id, pos, "positive"),
                        **self._examples(session, owner_id, neg, "negative")}
            model = self._model_of(examples, model)
            name = self._new_name(session, owner_id, raw_name, model)
            n_style = self._config(model).n_style
            try:
                learned = learn_direction(
                    [latent_feature(examples[i].data, examples[i].shape) for i in pos],
                    [latent_feature(examples[i].data, examples[i].shape) for i in neg], n_style)
            except ValueError as exc:
                raise CommandError("invalid_examples", str(exc)) from None
            row = UserDirection(
                owner_id=owner_id, model_name=model, name=name, method=LEARNED,
                vector=learned.vector, slots=learned.slots, gain=learned.gain,
                meta={"accuracy": learned.accuracy, "margin": learned.margin, "positive": pos,
                      "negative": neg},
                created_at=utcnow(),
            )
            session.add(row)
            session.flush()
            return describe(row)

    def _config(self, model: str):
        try:
            return get_model_config(model, self.settings.weights_dir)
        except UnknownConfigError:
            raise CommandError("invalid_examples", f"model {model} is no longer in the "
                               "catalogue (GET /api/v1/models)") from None

    def save(self, owner_id: int, raw_name, source, model: str | None = None) -> dict:
        """Keep a generator direction (``sefa_03``) of ``model`` (default: the service's)
        under a name of the user's choosing."""
        model = model or self.settings.model
        entry = next((d for d in generator_directions(self.settings.weights_dir, model)
                      if d["key"] == source), None)
        if entry is None:
            raise CommandError("unknown_direction", f"{source!r} is not a generator direction of "
                               f"model {model}")
        with self.sessions.begin() as session:
            name = self._new_name(session, owner_id, raw_name, model)
            row = UserDirection(
                owner_id=owner_id, model_name=model, name=name, method=SAVED,
                source=entry["key"], vector=None, slots=entry["slots"], gain=entry["gain"],
                meta={}, created_at=utcnow(),
            )
            session.add(row)
            session.flush()
            return describe(row)

    def delete(self, owner_id: int, name: str, model: str | None = None) -> None:
        """Delete the user's direction ``name`` of ``model`` (default: the service's)."""
        with self.sessions.begin() as session:
            row = session.scalar(select(UserDirection).where(
                UserDirection.owner_id == owner_id,
                UserDirection.model_name == (model or self.settings.model),
                UserDirection.name == name.removeprefix("user:")))
            if row is None:
                raise CommandError("not_found", "no such direction", 404)
            session.delete(row)

    # --- the explorer ------------------------------------------------------------------------

    def request_strip(self, owner_id: int, item_id: str, direction, steps=None) -> dict:
        """Queue previews of ``item_id`` along ``direction`` at values -1 .. +1 (``steps``
        frames), on top of the item's current edits, at its preview cost."""
        steps = DEFAULT_STRIP_STEPS if steps is None else steps
        lo, hi = STRIP_STEPS
        if isinstance(steps, bool) or not isinstance(steps, int) or not lo <= steps <= hi:
            raise CommandError("invalid_steps", f"steps must be an integer from {lo} to {hi}")
        if not isinstance(direction, str) or not direction:
            raise CommandError("invalid_direction", "name a direction (e.g. sefa_00, smiling)")
        with self.sessions.begin() as session:
            item = session.get(Item, item_id)
            if item is None or item.batch.owner_id != owner_id:
                raise CommandError("not_found", "no such item", 404)
            model = item.batch.model_name  # the strip goes to that model's workers
            try:  # the names of the item's model: its directions and the user's for it
                [key] = parse_edits({direction: 1.0}, "direction", names_for(
                    session, replace(self.settings, model=model), owner_id))
            except RecipeError as exc:
                raise CommandError("invalid_direction", exc.message) from None
            latent = item.latent
            if latent is None or latent.model_name != model:
                raise CommandError("not_ready", "this item has no code yet: wait for its preview", 409)
            values = [round(-1 + 2 * i / (steps - 1), 4) for i in range(steps)]
            strip = DirectionStrip(owner_id=owner_id, item_id=item.id, direction=key,
                                   values=values, cost=dict(item.preview_cost), status="queued")
            session.add(strip)
            session.flush()
            strip_id = strip.id
            out = describe_strip(strip)
        try:
            self.dispatcher.send_strip(strip_id, model)
        except Exception as exc:  # a strip is cheap to ask for again: say so rather than wait
            log.warning("could not queue strip %s: %s", strip_id, exc)
            with self.sessions.begin() as session:
                strip = session.get(DirectionStrip, strip_id)
                strip.status, strip.error_message = "failed", "the queue is unavailable; try again"
                out = describe_strip(strip)
        return out

    def get_strip(self, session: Session, owner_id: int, strip_id: str) -> DirectionStrip:
        strip = session.get(DirectionStrip, strip_id)
        if strip is None or strip.owner_id != owner_id:
            raise CommandError("not_found", "no such strip", 404)
        return strip


__all__ = ["UserDirections", "describe", "describe_strip"]
