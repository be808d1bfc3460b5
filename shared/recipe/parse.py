"""The edit recipe: what to do to every photo of a batch, validated with errors that name the field.

```json
{"edits": {"smiling": 0.5, "young": -0.3},
 "preview": {"channels": 0.5, "resolution": 256},
 "final":   {"channels": 1.0, "resolution": 1024},
 "auto_finalize": false, "output": "photo", "faces": "largest", "refine_steps": 0,
 "keep_format": false}
```
The structure (types, enums, ranges, unknown fields) is checked by the Pydantic model
``shared.recipe.schema.Recipe``; what depends on the model (allowed resolutions, edit names) is
checked here. Edits are stored under their boundary keys ('31_Smiling'), or for the generator's
own and a user's directions under the keys ``extra_names`` maps them to ('sefa_00',
'user:freckles'; see ``shared.catalog.directions``); costs get the model's defaults.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

from pydantic import ValidationError

from shared.catalog.preview_costs import default_preview, legacy_preview
from shared.codes.attributes import resolve_attribute
from shared.recipe import schema
from shared.recipe.schema import CHANNEL_RATIOS, FACE_MODES, MAX_REFINE_STEPS, OUTPUTS

__all__ = ["CHANNEL_RATIOS", "FACE_MODES", "MAX_REFINE_STEPS", "OUTPUTS", "Cost", "Recipe",
           "RecipeError", "allowed_resolutions", "default_costs", "model_default_costs", "parse_cost",
           "parse_edits",
           "parse_recipe", "recipe_from_stored"]

class RecipeError(ValueError):
    """A recipe that cannot be used; ``field`` names the offending field (dotted path)."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def min_resolution(model_resolution: int) -> int:
    return min(128, model_resolution // 2)


def allowed_resolutions(model_resolution: int) -> list[int]:
    """Powers of two from 128 (or half a small model's size) up to the model's own."""
    out, r = [], min_resolution(model_resolution)
    while r <= model_resolution:
        out.append(r)
        r *= 2
    return out


@dataclass(frozen=True)
class Cost:
    channels: float
    resolution: int

    def as_dict(self) -> dict:
        return {"channels": self.channels, "resolution": self.resolution}


@dataclass(frozen=True)
class Recipe:
    edits: dict[str, float] = field(default_factory=dict)
    preview: Cost | None = None
    final: Cost | None = None
    auto_finalize: bool = False
    output: str = "photo"
    faces: str = "largest"
    refine_steps: int = 0  # optimisation steps on W+ for finals; 0 = encoder only
    keep_format: bool = False  # finals of photos in the upload's own format

    def as_dict(self) -> dict:
        data = asdict(self)
        data["preview"] = self.preview.as_dict() if self.preview else None
        data["final"] = self.final.as_dict() if self.final else None
        return data


def default_costs(model_resolution: int, preview: tuple[float, int] | None = None
                  ) -> tuple[Cost, Cost]:
    """(preview, final) defaults: ``preview`` when given (a model's measured default, see
    ``model_default_costs``), else half the channels at a quarter of the model's size."""
    channels, resolution = preview or legacy_preview(model_resolution)
    return Cost(float(channels), int(resolution)), Cost(1.0, model_resolution)


def model_default_costs(config, weights_dir, min_psnr: float) -> tuple[Cost, Cost]:
    """A model's defaults: its measured default preview (``shared.catalog.preview_costs``)."""
    return default_costs(config.resolution, default_preview(config, weights_dir, min_psnr))


def _resolve_edit_name(name: str, extra_names: Mapping[str, str] | None) -> str:
    try:
        return resolve_attribute(name)
    except KeyError as exc:
        key = (extra_names or {}).get(str(name).strip().lower())
        if key is None:
            more = " or a direction listed by GET /api/v1/attributes" if extra_names else ""
            raise KeyError(exc.args[0] + more) from None
        return key


def _error_text(kind: str, where: tuple[str, ...], value, pydantic_text: str) -> str:
    """Pydantic's error (``where``: the dotted path's parts) as the message people have always
    been shown for that field."""
    if kind == "extra_forbidden":
        if len(where) == 1:
            return f"unknown field; known: {', '.join(sorted(schema.RECIPE_FIELDS))}"
        return "unknown field"
    if where[0] == "edits":
        if len(where) == 1:
            return "must be an object of attribute -> value"
        if kind in ("less_than_equal", "greater_than_equal"):
            return f"value {value} is outside [-1, 1]"
        return "value must be a number in [-1, 1]"
    if where[-1] == "channels":
        return f"{value!r} is not one of {', '.join(str(c) for c in CHANNEL_RATIOS)}"
    if where[-1] == "resolution":
        return f"{value!r} is not an integer (a power of two up to the model's resolution)"
    if where[0] in ("preview", "final") and len(where) == 1:
        return "must be an object with channels and resolution"
    if where[0] == "output":
        return f"{value!r} is not one of {', '.join(OUTPUTS)}"
    if where[0] == "faces":
        return f"{value!r} is not one of {', '.join(FACE_MODES)}"
    if where[0] == "refine_steps":
        return f"must be an integer from 0 to {MAX_REFINE_STEPS}"
    if kind == "bool_type":
        return "must be true or false"
    return pydantic_text


def _recipe_error(exc: ValidationError, *prefix: str) -> RecipeError:
    """The first problem (an unknown field first: people mistype names) as a RecipeError naming
    the field by its dotted path; ``prefix``: where the validated value sits in a recipe."""
    errors = exc.errors(include_url=False)
    error = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    where = (*prefix, *(str(part) for part in error["loc"] if part != "[key]"))
    return RecipeError(".".join(where),
                       _error_text(error["type"], where, error["input"], error["msg"]))


def _resolved_edits(values: dict[str, float], field_name: str,
                    extra_names: Mapping[str, str] | None) -> dict[str, float]:
    """Names resolved to their stored keys; zero values dropped."""
    edits: dict[str, float] = {}
    for name, value in values.items():
        try:
            key = _resolve_edit_name(name, extra_names)
        except KeyError as exc:
            raise RecipeError(f"{field_name}.{name}", exc.args[0]) from None
        if value != 0:
            edits[key] = float(value)
    return edits


def parse_edits(
    raw, field_name: str = "edits", extra_names: Mapping[str, str] | None = None
) -> dict[str, float]:
    """Validate ``{name: value}``; names resolved to boundary keys (or by ``extra_names``,
    lower-case name -> stored key), values in [-1, 1]."""
    if raw is None:
        return {}
    try:
        values = schema.EDITS.validate_python(raw)
    except ValidationError as exc:
        error = _recipe_error(exc, "edits")
        raise RecipeError(field_name + error.field.removeprefix("edits"), error.message) from None
    return _resolved_edits(values, field_name, extra_names)


def _checked_cost(cost: schema.Cost | None, field_name: str, model_resolution: int,
                  default: Cost) -> Cost:
    """A structurally valid cost, defaults filled in, its resolution checked for the model."""
    if cost is None:
        return default
    channels = default.channels if cost.channels is None else cost.channels
    resolution = default.resolution if cost.resolution is None else cost.resolution
    allowed = allowed_resolutions(model_resolution)
    if resolution not in allowed:
        raise RecipeError(
            f"{field_name}.resolution",
            f"{resolution!r} is not one of {', '.join(map(str, allowed))} for this model",
        )
    return Cost(float(channels), int(resolution))


def parse_cost(raw, field_name: str, model_resolution: int, default: Cost) -> Cost:
    if raw is None:
        return default
    try:
        cost = schema.Cost.model_validate(raw)
    except ValidationError as exc:
        raise _recipe_error(exc, field_name) from None
    return _checked_cost(cost, field_name, model_resolution, default)


def parse_recipe(
    raw, model_resolution: int, extra_names: Mapping[str, str] | None = None,
    defaults: tuple[Cost, Cost] | None = None,
) -> Recipe:
    """A validated recipe from a dict or JSON text. Raises RecipeError naming the field.
    ``extra_names``: edit names beyond the built-in attributes (see ``parse_edits``);
    ``defaults``: the model's (preview, final) costs (``model_default_costs``)."""
    if raw is None or raw == "":
        raw = {}
    if isinstance(raw, str | bytes):
        try:
            raw = json.loads(raw)
        except ValueError as exc:
            raise RecipeError("recipe", f"is not valid JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise RecipeError("recipe", "must be a JSON object")
    try:
        shape = schema.Recipe.model_validate(raw)
    except ValidationError as exc:
        raise _recipe_error(exc) from None
    preview_default, final_default = defaults or default_costs(model_resolution)
    return Recipe(
        edits=_resolved_edits(shape.edits or {}, "edits", extra_names),
        preview=_checked_cost(shape.preview, "preview", model_resolution, preview_default),
        final=_checked_cost(shape.final, "final", model_resolution, final_default),
        auto_finalize=shape.auto_finalize,
        output=shape.output,
        faces=shape.faces,
        refine_steps=shape.refine_steps,
        keep_format=shape.keep_format,
    )


def recipe_from_stored(data: dict) -> Recipe:
    """A Recipe from the dict stored on a batch (already validated)."""
    return Recipe(
        edits=dict(data.get("edits") or {}),
        preview=Cost(**data["preview"]),
        final=Cost(**data["final"]),
        auto_finalize=bool(data.get("auto_finalize", False)),
        output=data.get("output", "photo"),
        faces=data.get("faces", "largest"),
        refine_steps=int(data.get("refine_steps", 0)),
        keep_format=bool(data.get("keep_format", False)),
    )
