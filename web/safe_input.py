"""Hostile input stops at the door with a 400: control characters in the path, query string or
headers, JSON nested deeper than any document of ours, NUL and control characters inside JSON
strings.

Why: a NUL byte reaching PostgreSQL raises in the driver (a 500), and a deeply nested JSON
document makes ``json.loads`` raise RecursionError (a 500 too). Checking once, before any view,
keeps every route safe, including routes added later.
"""

from __future__ import annotations

import json
import unicodedata

from flask import Flask, request
from flask.json.provider import DefaultJSONProvider

from shared.errors import RequestErrorCode
from web.errors import ApiError

#: Deeper than any recipe or edit body (3 levels) by far; far below the recursion limit.
MAX_JSON_DEPTH = 32
# Whitespace that JSON text and headers may carry; every other C0/C1 control is refused.
_ALLOWED_CONTROLS = frozenset("\t\n\r")


def has_control(text: str, allowed: frozenset[str] = frozenset()) -> bool:
    """Whether ``text`` contains a control character (Unicode category Cc) not in ``allowed``."""
    return any(unicodedata.category(ch) == "Cc" and ch not in allowed for ch in text)


def refuse(where: str, field: str | None = None) -> ApiError:
    return ApiError(400, RequestErrorCode.INVALID_CHARACTERS,
                    f"the {where} contains a NUL or control character", field)


def json_depth_exceeds(text: str, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether brackets outside strings nest deeper than ``limit`` (a linear scan, no recursion)."""
    depth = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > limit:
                return True
        elif ch in "]}":
            depth -= 1
    return False


def _check_strings(value, path: str) -> None:
    """Refuse control characters in any key or string of parsed JSON (depth already bounded)."""
    if isinstance(value, str):
        if has_control(value, _ALLOWED_CONTROLS):
            raise refuse("JSON body", path or None)
    elif isinstance(value, dict):
        for key, inner in value.items():
            if has_control(key, _ALLOWED_CONTROLS):
                raise refuse("JSON body", path or None)
            _check_strings(inner, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            _check_strings(inner, f"{path}[{index}]")


def loads_checked(text: str | bytes, field: str | None = None, *, invalid_raises: bool = False):
    """``json.loads`` that answers 400 (ApiError) for bad, too deep or control-laden JSON.
    ``invalid_raises``: leave the ValueError of text that is not JSON to the caller."""
    try:
        if isinstance(text, bytes | bytearray):
            text = text.decode("utf-8")
        if json_depth_exceeds(text):
            raise ApiError(400, RequestErrorCode.JSON_TOO_DEEP,
                           f"the JSON is nested deeper than {MAX_JSON_DEPTH} levels", field)
        value = json.loads(text)
    except ValueError as exc:  # includes UnicodeDecodeError
        if invalid_raises:
            raise
        raise ApiError(400, RequestErrorCode.INVALID_JSON, f"the JSON is not valid ({exc})",
                       field) from None
    _check_strings(value, field or "")
    return value


class CheckedJSONProvider(DefaultJSONProvider):
    """Flask's JSON provider, with ``loads`` (``request.get_json``) going through the checks.
    Text that is not JSON still raises ValueError, so ``get_json(silent=True)`` keeps working."""

    def loads(self, s: str | bytes, **kwargs):
        return loads_checked(s, invalid_raises=True)


def check_request() -> None:
    """``before_request``: the path, the query string and every header value."""
    if has_control(request.path):
        raise refuse("URL path")
    for key, value in request.args.items(multi=True):
        if has_control(key) or has_control(value):
            raise refuse("query string", key if not has_control(key) else None)
    for name, value in request.headers.items():
        # Header values are latin-1 text: only C0 controls and DEL are certain to be hostile.
        if any(ch < " " and ch != "\t" or ch == "\x7f" for ch in value):
            raise refuse(f"{name} header")


def init_app(app: Flask) -> None:
    sort_keys = app.json.sort_keys
    app.json = CheckedJSONProvider(app)
    app.json.sort_keys = sort_keys
    app.before_request(check_request)
