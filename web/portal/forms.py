"""Reading the portal's forms: the new-batch form into uploads and a recipe, with messages a
person can act on. The browser checks type and size first; these checks are the ones that count.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from werkzeug.datastructures import FileStorage, MultiDict

from shared.codes.attributes import ALIASES, ATTRIBUTES, bare_name
from shared.codes.imagetypes import MIME_TYPES
from shared.commands.batches import Upload
from shared.platform.settings import Settings
from shared.recipe.batch_names import NAME_FIELD, BatchNameError, parse_batch_name
from shared.recipe.parse import Recipe, RecipeError, model_default_costs, parse_recipe
from web.api.uploads import read_upload
from web.errors import ApiError

#: Slider positions run from -100 to 100 like the original editor's; the recipe takes value / 100.
SLIDER_SCALE = 100
#: What the file chooser offers (the server sniffs the bytes; the extension is only a hint).
ACCEPT = ".jpg,.jpeg,.png,.webp,.bmp,.tif,.tiff,.gif,.heic,.heif,.avif," + ",".join(
    sorted(set(MIME_TYPES.values()))
)


@dataclass(frozen=True)
class Slider:
    key: str  # boundary key, e.g. '31_Smiling'
    label: str
    field: str  # form field name


def _label(key: str) -> str:
    return bare_name(key).replace("_", " ")


#: The original editor's seven sliders first, then the other attributes.
MAIN_SLIDERS: tuple[Slider, ...] = tuple(
    Slider(key, alias.replace("_", " ").capitalize(), f"edit_{key}") for alias, key in ALIASES.items()
)
OTHER_SLIDERS: tuple[Slider, ...] = tuple(
    Slider(key, _label(key), f"edit_{key}") for key in ATTRIBUTES if key not in ALIASES.values()
)


@dataclass
class BatchForm:
    """The outcome of reading the form: either uploads + recipe, or errors (and what was sent,
    so the page can show the choices again). Files the upload check refused are in ``refused``
    (position among the chosen files, name, reason); with ``partial`` (the form's "create the
    batch from the good ones") they do not stop the batch."""

    uploads: list[Upload] = field(default_factory=list)
    recipe: Recipe | None = None
    name: str | None = None  # the batch's name (checked), None for none
    errors: list[str] = field(default_factory=list)
    refused: list[dict] = field(default_factory=list)
    partial: bool = False
    values: dict = field(default_factory=dict)
    #: With ``partial``: the files the page itself left out and why ("name: reason"), never
    #: sent; said back with the server's refusals so the message names every file left out.
    left_in_browser: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (not self.errors and self.recipe is not None and bool(self.uploads)
                and (self.partial or not self.refused))

    @property
    def left_out(self) -> list[str]:
        """Every file not in the batch and why: the page's own refusals, then the server's."""
        return self.left_in_browser + [r["reason"] for r in self.refused]

    @property
    def problems(self) -> list[str]:
        """Every reason the batch was not made, for the page."""
        return [r["reason"] for r in self.refused] + self.errors


def _number(form: MultiDict, name: str, errors: list[str], label: str) -> float | None:
    raw = form.get(name, "")
    if raw == "":
        return None
    try:
        value = float(raw)
    except ValueError:
        errors.append(f"{label}: {raw!r} is not a number.")
        return None
    if not math.isfinite(value):
        errors.append(f"{label}: {raw!r} is not a number.")
        return None
    return value


_CHECKED = {"on", "1", "true"}  # what a ticked checkbox sends


def recipe_dict_from_form(form: MultiDict, errors: list[str]) -> dict:
    """The recipe JSON the form describes (validated later by ``parse_recipe``)."""
    edits = {}
    for slider in MAIN_SLIDERS + OTHER_SLIDERS:
        value = _number(form, slider.field, errors, slider.label)
        if value:
            edits[slider.key] = value / SLIDER_SCALE
    recipe: dict = {"edits": edits, "auto_finalize": form.get("auto_finalize") in _CHECKED,
                    "keep_format": form.get("keep_format") in _CHECKED}
    recipe["output"] = form.get("output", "photo")  # parse_recipe names a bad one
    recipe["faces"] = form.get("faces", "largest")
    steps = _number(form, "refine_steps", errors, "Refinement steps")
    if steps is not None:
        # An integer in the recipe (parse_recipe checks the range); 2.5 stays a float and fails.
        recipe["refine_steps"] = int(steps) if steps == int(steps) else steps
    for stage in ("preview", "final"):
        cost = {}
        channels = _number(form, f"{stage}_channels", errors, f"{stage.capitalize()} channels")
        if channels is not None:
            cost["channels"] = channels
        res_log2 = _number(form, f"{stage}_res_log2", errors, f"{stage.capitalize()} resolution")
        if res_log2 is not None:
            if not 2 <= res_log2 <= 12 or res_log2 != int(res_log2):
                errors.append(f"{stage.capitalize()} resolution: {res_log2:g} is not a size step.")
            else:
                cost["resolution"] = 2 ** int(res_log2)
        recipe[stage] = cost
    return recipe


#: What the portal says for each refusal of ``web.api.uploads.read_upload`` (same check, words
#: for a person; ``{name}`` is the cleaned file name).
UPLOAD_PROBLEMS = {
    "empty_filename": "{name}: the file has no name.",
    "empty_file": "{name}: the file is empty.",
    "file_too_large": "{name}: larger than {mb} MB, the limit for one photo.",
    "unsupported_format": ("{name}: not a photo we can read. Use JPEG, PNG, WebP, BMP, TIFF or GIF "
                           "(HEIC and AVIF where the server supports them)."),
}


def check_upload(storage: FileStorage, position: int,
                 settings: Settings) -> tuple[Upload | None, str | None]:
    """One file of the form through the API's upload check: an Upload, or a message naming the
    file and what is wrong."""
    try:
        return read_upload(storage, position, settings), None
    except ApiError as exc:
        name = exc.extra.get("filename") or f"file {position + 1}"
        template = UPLOAD_PROBLEMS.get(exc.code, "{name}: " + exc.message)
        return None, template.format(name=name, mb=settings.max_file_mb)


#: The form field the page names each file it left out in (``name: reason``), and its bounds.
LEFT_OUT_FIELD, LEFT_OUT_CHARS = "left_out", 300


def _left_in_browser(form: MultiDict, max_files: int) -> list[str]:
    """The page's own "name: reason" lines: one line each, clipped, at most ``max_files`` (any
    other text is the user's own, only shown back to them, escaped)."""
    lines = (" ".join(str(v).split()) for v in form.getlist(LEFT_OUT_FIELD))
    return [line[:LEFT_OUT_CHARS] for line in lines if line][:max_files]


def read_batch_form(form: MultiDict, files: MultiDict, settings: Settings,
                    model) -> BatchForm:
    """``model``: the ModelConfig the batch goes to (its resolution, its measured defaults)."""
    result = BatchForm(values=form.to_dict(), partial=form.get("partial") in _CHECKED)
    if result.partial:
        result.left_in_browser = _left_in_browser(form, settings.max_files_per_batch)
    try:
        result.name = parse_batch_name(form.get(NAME_FIELD))
    except BatchNameError as exc:
        result.errors.append(f"Name: {exc.message}.")
    chosen = [f for f in files.getlist("files") if f and f.filename]
    if not chosen:
        result.errors.append("Choose at least one photo.")
    elif len(chosen) > settings.max_files_per_batch:
        result.errors.append(
            f"{len(chosen)} photos chosen; a batch takes at most {settings.max_files_per_batch}.")
    else:
        for position, storage in enumerate(chosen):
            upload, problem = check_upload(storage, position, settings)
            if problem:
                result.refused.append({"index": position, "filename": storage.filename,
                                       "reason": problem})
            else:
                result.uploads.append(upload)
    raw = recipe_dict_from_form(form, result.errors)
    try:
        result.recipe = parse_recipe(raw, model.resolution, defaults=model_default_costs(
            model, settings.weights_dir, settings.preview_min_psnr))
    except RecipeError as exc:
        result.errors.append(f"{exc.field}: {exc.message}")
    return result
