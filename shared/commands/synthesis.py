"""Batches of new images from seeds, and the model configs a deployment serves.

A synthesis request (``POST /api/v1/batches`` with a JSON body) names seeds or a count, a
truncation, optional style mixing and a model config. Each item stores its spec
(``Item.synthesis``: seed, truncation, mix_seed, mix_from_slot) instead of an upload; the worker
makes its W+ code from the spec (``worker.render.synthesis``) and keeps it as the item's latent, so
previews, edits, finals and downloads are those of a photo. A seed means what it means in
NVIDIA's tools, so the same request gives the same images.

Several configs in one deployment: each worker serves one config and beats with its name
(``WorkerHeartbeat.model_name``); ``shared.commands.availability`` says which configs are live
(what the API lists), and a batch for a config without a live worker is refused (409, with the
worker's reason) instead of waiting forever.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, replace

from sqlalchemy.orm import Session

from shared.catalog.configs import ModelConfig, UnknownConfigError, get_model_config
from shared.catalog.edit_names import names_for
from shared.commands.availability import require_live
from shared.commands.batches import Batches
from shared.commands.quota import check_quota
from shared.items.states import ItemStatus
from shared.platform.settings import Settings
from shared.recipe.parse import Recipe, RecipeError, model_default_costs, parse_recipe
from shared.store.tables import Batch, Item, new_id

MAX_SEED = 2**32 - 1  # numpy's RandomState takes seeds in [0, 2**32)
PICKED_SEED_MAX = 2**31 - 1  # seeds ``count`` picks (shorter to read back)
_FIELDS = {"synthesis", "truncation", "mix", "model", "recipe"}
_MIX_FIELDS = {"seed", "from_slot"}


class SynthesisError(RecipeError):
    """A bad synthesis request; ``field`` names the culprit (``synthesis.seeds[2]``)."""


@dataclass(frozen=True)
class SynthesisRequest:
    """A checked request: the seeds (picked already when a count was asked), the shared spec."""

    seeds: tuple[int, ...]
    truncation: float
    mix_seed: int | None
    mix_from_slot: int | None
    model: str
    recipe: Recipe
    picked: bool  # seeds chosen by the service (``count``)

    def spec(self, seed: int) -> dict:
        return {"seed": seed, "truncation": self.truncation, "mix_seed": self.mix_seed,
                "mix_from_slot": self.mix_from_slot}


def _seed(value, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SynthesisError(field, "must be an integer")
    if not 0 <= value <= MAX_SEED:
        raise SynthesisError(field, f"must be from 0 to {MAX_SEED}, got {value}")
    return value


def _seeds(raw, limit: int) -> tuple[tuple[int, ...], bool]:
    if not isinstance(raw, dict) or not raw:
        raise SynthesisError("synthesis", 'must be {"seeds": [...]} or {"count": N}')
    unknown = set(raw) - {"seeds", "count"}
    if unknown:
        raise SynthesisError(f"synthesis.{sorted(unknown)[0]}", "unknown field; known: count, seeds")
    if "seeds" in raw and "count" in raw:
        raise SynthesisError("synthesis", "give seeds or count, not both")
    if "count" in raw:
        count = raw["count"]
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= limit:
            raise SynthesisError("synthesis.count", f"must be an integer from 1 to {limit}")
        return tuple(secrets.randbelow(PICKED_SEED_MAX + 1) for _ in range(count)), True
    seeds = raw["seeds"]
    if not isinstance(seeds, list) or not seeds:
        raise SynthesisError("synthesis.seeds", "must be a non-empty list of integers")
    if len(seeds) > limit:
        raise SynthesisError("synthesis.seeds", f"{len(seeds)} seeds; at most {limit} per batch")
    return tuple(_seed(s, f"synthesis.seeds[{i}]") for i, s in enumerate(seeds)), False


def _truncation(raw) -> float:
    if raw is None:
        return 0.7
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not 0.0 <= raw <= 2.0:
        raise SynthesisError("truncation", "must be a number from 0 to 2 (1: none, 0: w_avg)")
    return float(raw)


def _mix(raw, n_style: int) -> tuple[int | None, int | None]:
    if raw is None:
        return None, None
    if not isinstance(raw, dict):
        raise SynthesisError("mix", 'must be {"seed": S, "from_slot": K}')
    unknown = set(raw) - _MIX_FIELDS
    if unknown:
        raise SynthesisError(f"mix.{sorted(unknown)[0]}", "unknown field; known: from_slot, seed")
    if "seed" not in raw:
        raise SynthesisError("mix.seed", "is required")
    seed = _seed(raw["seed"], "mix.seed")
    slot = raw.get("from_slot", n_style // 2)
    if isinstance(slot, bool) or not isinstance(slot, int) or not 0 <= slot <= n_style:
        raise SynthesisError("mix.from_slot", f"must be an integer from 0 to {n_style}")
    return seed, slot


def model_config(settings: Settings, name) -> ModelConfig:
    """The catalogue entry of ``name`` (None: the deployment's default); 400 when unknown."""
    if name is None:
        name = settings.model
    if not isinstance(name, str) or not name:
        raise SynthesisError("model", "must be a model config name")
    try:
        return get_model_config(name, settings.weights_dir)
    except UnknownConfigError:
        raise SynthesisError(
            "model", f"unknown model {name!r}; GET /api/v1/models lists them") from None


def parse_request(raw, settings: Settings, session: Session, owner_id: int) -> SynthesisRequest:
    """A checked synthesis request; raises :class:`SynthesisError` naming the field."""
    if not isinstance(raw, dict):
        raise SynthesisError("body", "must be a JSON object")
    unknown = set(raw) - _FIELDS
    if unknown:
        raise SynthesisError(sorted(unknown)[0], f"unknown field; known: {', '.join(sorted(_FIELDS))}")
    if "synthesis" not in raw:
        raise SynthesisError("synthesis", "is required in a JSON batch (or upload photos)")
    config = model_config(settings, raw.get("model"))
    seeds, picked = _seeds(raw["synthesis"], min(settings.max_seeds, settings.max_files_per_batch))
    truncation = _truncation(raw.get("truncation"))
    mix_seed, mix_slot = _mix(raw.get("mix"), config.n_style)
    recipe_raw = raw.get("recipe") or {}
    if not isinstance(recipe_raw, dict):
        raise SynthesisError("recipe", "must be a JSON object")
    if recipe_raw.get("output", "crop") != "crop" or recipe_raw.get("refine_steps", 0):
        raise SynthesisError("recipe", 'a synthesised image is its own output: "crop" only, '
                             "no refine_steps")
    names = names_for(session, replace(settings, model=config.name), owner_id)
    recipe = parse_recipe({**recipe_raw, "output": "crop"}, config.resolution, names,
                          model_default_costs(config, settings.weights_dir,
                                              settings.preview_min_psnr))
    if "boundary" not in config.kinds:  # no attribute boundaries: only its own directions
        own = set(names.values())
        for key in recipe.edits:
            if key not in own:
                raise SynthesisError(f"edits.{key}", f"model {config.name} has no attribute "
                                     "boundaries; use its directions (GET /api/v1/models)")
    return SynthesisRequest(seeds=seeds, truncation=truncation, mix_seed=mix_seed,
                            mix_from_slot=mix_slot, model=config.name, recipe=recipe,
                            picked=picked)


def create_synthesis_batch(batches: Batches, owner_id: int, request: SynthesisRequest,
                           webhook_url: str | None = None, name: str | None = None) -> str:
    """One batch, one item per seed (no uploads); refused with 409 when no live worker serves
    the model. The items are released like a photo batch's (fair queues, the user's quota)."""
    with batches.sessions() as session:
        require_live(session, batches.settings, request.model)
    batch_id = new_id()
    recipe = request.recipe
    with batches.sessions.begin() as session:
        check_quota(session, batches.settings, owner_id, len(request.seeds))
        session.add(Batch(id=batch_id, owner_id=owner_id, recipe=recipe.as_dict(),
                          model_name=request.model, webhook_url=webhook_url, name=name))
        session.flush()
        for position, seed in enumerate(request.seeds):
            session.add(Item(
                id=new_id(), batch_id=batch_id, position=position, filename=f"seed{seed}.png",
                status=ItemStatus.QUEUED.value, upload_blob_id=None,
                synthesis=request.spec(seed), preview_cost=recipe.preview.as_dict(),
                final_cost=recipe.final.as_dict(), timings={}, edit_version=0, attempts=0,
            ))
    batches.sender.release_user(owner_id)
    return batch_id
