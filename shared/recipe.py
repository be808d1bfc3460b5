"""The edit recipe: what to do to every photo of a batch, validated with errors that name the field.

```json
{"edits": {"smiling": 0.5, "young": -0.3},
 "preview": {"channels": 0.5, "resolution": 256},
 "final":   {"channels": 1.0, "resolution": 1024},
 "auto_finalize": false, "output": "photo", "faces": "largest", "refine_steps": 0,
 "keep_format": false}
```
Edits are stored under their boundary keys ('31_Smiling'), or for the generator's own and a
user's directions under the keys ``extra_names`` maps them to ('sefa_00', 'user:freckles'; see
``shared.directions``); costs get the model's defaults. ``keep_format``: finals of photos are written in the upload's own
format (JPEG, PNG, WebP; any other format as PNG) instead of JPEG ("photo") or PNG ("crop").
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

from shared.attributes import resolve_attribute

CHANNEL_RATIOS: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0)
OUTPUTS = ("photo", "crop")
FACE_MODES = ("largest", "all")
MAX_REFINE_STEPS = 200


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
    keep_format: bool = False  # finals in the upload's format (worker.images)

    def as_dict(self) -> dict:
        data = asdict(self)
        data["preview"] = self.preview.as_dict() if self.preview else None
        data["final"] = self.final.as_dict() if self.final else None
        return data


def default_costs(model_resolution: int) -> tuple[Cost, Cost]:
    preview = Cost(0.5, max(min_resolution(model_resolution), model_resolution // 4))
    return preview, Cost(1.0, model_resolution)


def _resolve_edit_name(name: str, extra_names: Mapping[str, str] | None) -> str:
    try:
        return resolve_attribute(name)
    except KeyError as exc:
        key = (extra_names or {}).get(str(name).strip().lower())
        if key is None:
            more = " or a direction listed by GET /api/v1/attributes" if extra_names else ""
            raise KeyError(exc.args[0] + more) from None
        return key


def parse_edits(
    raw, field_name: str = "edits", extra_names: Mapping[str, str] | None = None
) -> dict[str, float]:
    """Validate ``{name: value}``; names resolved to boundary keys (or by ``extra_names``,
    lower-case name -> stored key), values in [-1, 1]."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise RecipeError(field_name, "must be an object of attribute -> value")
    edits: dict[str, float] = {}
    for name, value in raw.items():
        try:
            key = _resolve_edit_name(name, extra_names)
        except KeyError as exc:
            raise RecipeError(f"{field_name}.{name}", exc.args[0]) from None
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise RecipeError(f"{field_name}.{name}", "value must be a number in [-1, 1]")
        if not -1.0 <= value <= 1.0:
            raise RecipeError(f"{field_name}.{name}", f"value {value} is outside [-1, 1]")
        if value != 0:
            edits[key] = float(value)
    return edits


def parse_cost(raw, field_name: str, model_resolution: int, default: Cost) -> Cost:
    if raw is None:
        return default
    if not isinstance(raw, dict):
        raise RecipeError(field_name, "must be an object with channels and resolution")
    unknown = set(raw) - {"channels", "resolution"}
    if unknown:
        raise RecipeError(f"{field_name}.{sorted(unknown)[0]}", "unknown field")
    channels = raw.get("channels", default.channels)
    if isinstance(channels, bool) or channels not in CHANNEL_RATIOS:
        raise RecipeError(
            f"{field_name}.channels",
            f"{channels!r} is not one of {', '.join(str(c) for c in CHANNEL_RATIOS)}",
        )
    resolution = raw.get("resolution", default.resolution)
    allowed = allowed_resolutions(model_resolution)
    if isinstance(resolution, bool) or resolution not in allowed:
        raise RecipeError(
            f"{field_name}.resolution",
            f"{resolution!r} is not one of {', '.join(map(str, allowed))} for this model",
        )
    return Cost(float(channels), int(resolution))


_FIELDS = {"edits", "preview", "final", "auto_finalize", "output", "faces", "refine_steps",
           "keep_format"}


def parse_recipe(
    raw, model_resolution: int, extra_names: Mapping[str, str] | None = None
) -> Recipe:
    """A validated recipe from a dict or JSON text. Raises RecipeError naming the field.
    ``extra_names``: edit names beyond the built-in attributes (see ``parse_edits``)."""
    if raw is None or raw == "":
        raw = {}
    if isinstance(raw, str | bytes):
        try:
            raw = json.loads(raw)
        except ValueError as exc:
            raise RecipeError("recipe", f"is not valid JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise RecipeError("recipe", "must be a JSON object")
    unknown = set(raw) - _FIELDS
    if unknown:
        raise RecipeError(sorted(unknown)[0], f"unknown field; known: {', '.join(sorted(_FIELDS))}")
    preview_default, final_default = default_costs(model_resolution)
    auto = raw.get("auto_finalize", False)
    if not isinstance(auto, bool):
        raise RecipeError("auto_finalize", "must be true or false")
    output = raw.get("output", "photo")
    if output not in OUTPUTS:
        raise RecipeError("output", f"{output!r} is not one of {', '.join(OUTPUTS)}")
    faces = raw.get("faces", "largest")
    if faces not in FACE_MODES:
        raise RecipeError("faces", f"{faces!r} is not one of {', '.join(FACE_MODES)}")
    steps = raw.get("refine_steps", 0)
    if isinstance(steps, bool) or not isinstance(steps, int) or not 0 <= steps <= MAX_REFINE_STEPS:
        raise RecipeError("refine_steps", f"must be an integer from 0 to {MAX_REFINE_STEPS}")
    keep_format = raw.get("keep_format", False)
    if not isinstance(keep_format, bool):
        raise RecipeError("keep_format", "must be true or false")
    return Recipe(
        edits=parse_edits(raw.get("edits"), extra_names=extra_names),
        preview=parse_cost(raw.get("preview"), "preview", model_resolution, preview_default),
        final=parse_cost(raw.get("final"), "final", model_resolution, final_default),
        auto_finalize=auto,
        output=output,
        faces=faces,
        refine_steps=steps,
        keep_format=keep_format,
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
