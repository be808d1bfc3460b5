"""Reading an upload request: the recipe field and the photos, checked before anything is stored.

Limits: the whole request (Flask's MAX_CONTENT_LENGTH -> 413), files per batch (413), one file's
size (413). Types: the first bytes must look like an accepted image (magic numbers, never the
name or the client's Content-Type) or the request is refused with 415. The user's file name is
kept for display only (control characters removed, length capped); it never becomes a path.

All or nothing, unless the request opts in with the form field ``partial=true``: then the files
that pass make the batch and each refused one is reported (``read_some_uploads``).
"""

from __future__ import annotations

import unicodedata

from flask import Request
from werkzeug.datastructures import FileStorage

from shared.codes.imagetypes import ACCEPTED_FORMATS, mime_type, sniff_format
from shared.commands.batches import Upload
from shared.platform.settings import Settings
from web.errors import ApiError

MB = 1024 * 1024
MAX_FILENAME_CHARS = 200


def display_filename(raw: str, position: int) -> str:
    """The user's name for a photo, safe to show: last path component, no control or format
    characters (which includes bidi overrides), NFC, at most MAX_FILENAME_CHARS characters."""
    name = unicodedata.normalize("NFC", raw).replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip()
    if len(name) > MAX_FILENAME_CHARS:
        stem, dot, ext = name.rpartition(".")
        if dot and 0 < len(ext) <= 10:  # keep a short extension visible
            name = stem[: MAX_FILENAME_CHARS - len(ext) - 1] + "." + ext
        else:
            name = name[:MAX_FILENAME_CHARS]
    return name or f"photo-{position + 1}"


def recipe_text(request: Request) -> str | None:
    """The ``recipe`` field, as form text or as an uploaded JSON file (``curl -F recipe=@r.json``)."""
    if "recipe" in request.files:
        data = request.files["recipe"].read(MB + 1)
        if len(data) > MB:
            raise ApiError(413, "too_large", "the recipe is larger than 1 MB", "recipe")
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise ApiError(400, "invalid_recipe", "the recipe is not UTF-8 text", "recipe") from None
    return request.form.get("recipe")


PARTIAL_FIELD = "partial"


def wants_partial(request: Request) -> bool:
    """The request's opt-in to a batch of the files that pass (form field ``partial``)."""
    return request.form.get(PARTIAL_FIELD, "").strip().lower() in ("true", "1", "on", "yes")


def _files(request: Request, settings: Settings) -> list[FileStorage]:
    files: list[FileStorage] = request.files.getlist("files")
    if not files:
        hint = " (it was sent as text; send it as a file part)" if "files" in request.form else ""
        raise ApiError(400, "no_files", f"a batch needs at least one photo in 'files'{hint}", "files")
    if len(files) > settings.max_files_per_batch:
        raise ApiError(
            413, "too_many_files",
            f"{len(files)} files; at most {settings.max_files_per_batch} per batch", "files",
        )
    return files


def read_uploads(request: Request, settings: Settings) -> list[Upload]:
    """Every photo of the request, or the first refusal (ApiError)."""
    return [read_upload(storage, position, settings)
            for position, storage in enumerate(_files(request, settings))]


def read_some_uploads(request: Request, settings: Settings) -> tuple[list[Upload], list[dict]]:
    """``partial=true``: the photos that pass, and one entry per refused file (its field, name,
    code and message). When none passes, the first refusal is raised as without the flag."""
    uploads, refused, first = [], [], None
    for position, storage in enumerate(_files(request, settings)):
        try:
            uploads.append(read_upload(storage, position, settings))
        except ApiError as exc:
            first = first or exc
            refused.append({"field": exc.field, "filename": exc.extra.get("filename"),
                            "code": exc.code, "message": exc.message})
    if not uploads:
        raise first
    return uploads, refused


def read_upload(storage: FileStorage, position: int, settings: Settings) -> Upload:
    """One photo of an upload, checked (size, magic number) and its name cleaned; ApiError when
    it is refused. The only upload check: the API and the portal's form both call it."""
    limit = settings.max_file_mb * MB
    field = f"files[{position}]"
    if not storage.filename:
        raise ApiError(400, "empty_filename", f"file {position + 1} has no file name", field)
    name = display_filename(storage.filename, position)
    data = storage.read(limit + 1)
    if len(data) > limit:
        raise ApiError(
            413, "file_too_large", f"{name!r} is larger than {settings.max_file_mb} MB", field,
            filename=name,
        )
    if not data:
        raise ApiError(400, "empty_file", f"{name!r} is empty", field, filename=name)
    fmt = sniff_format(data)
    if fmt is None or fmt not in ACCEPTED_FORMATS:
        raise ApiError(
            415, "unsupported_format",
            f"{name!r} is not an image we accept (JPEG, PNG, WebP, BMP, TIFF, GIF, HEIC, AVIF)",
            field, filename=name,
        )
    return Upload(filename=name, data=data, content_type=mime_type(fmt))
