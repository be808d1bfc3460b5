"""Hostile input stops at the door with a 400: control characters in the path, query string or
headers, JSON nested deeper than any document of ours, NUL and control characters inside JSON
strings (escaped ones: raw ones are not JSON at all).

Why: a NUL byte reaching PostgreSQL raises in the driver (a 500), and a deeply nested JSON
document makes ``json.loads`` raise RecursionError (a 500 too). Checking once, before any view,
keeps every route safe, including routes added later.
"""

from __future__ import annotations

import itertools
import json
import operator
import re
from collections.abc import Iterable

from flask import Flask, request
from flask.json.provider import DefaultJSONProvider

from shared.codes.errors import RequestErrorCode
from web.errors import ApiError

#: Deeper than any recipe or edit body (3 levels) by far; far below the recursion limit.
MAX_JSON_DEPTH = 32


# Unicode category Cc is exactly U+0000-U+001F and U+007F-U+009F.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
_CONTROL_BUT_WHITESPACE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def has_control(text: str, allow_whitespace: bool = False) -> bool:
    """Whether ``text`` contains a control character (Unicode category Cc); with
    ``allow_whitespace``, tab, newline and carriage return are fine."""
    pattern = _CONTROL_BUT_WHITESPACE if allow_whitespace else _CONTROL
    return pattern.search(text) is not None


def refuse(where: str, field: str | None = None) -> ApiError:
    return ApiError(400, RequestErrorCode.INVALID_CHARACTERS,
                    f"the {where} contains a NUL or control character", field)


_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
# After the strings are gone: openers to 2, closers to 0, so (value - 1) is the depth step.
_STEP = bytes.maketrans(b"[{]}", b"\x02\x02\x00\x00")


def json_depth_exceeds(text: str, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether brackets outside strings nest deeper than ``limit``. No recursion, and every loop
    runs in C (a 1 MB body costs a few milliseconds): the body may be as large as an upload."""
    if text.count("[") + text.count("{") <= limit:
        return False
    brackets = _JSON_STRING.sub("", text).encode("ascii", "ignore").translate(
        None, bytes(set(range(256)) - set(b"[]{}")))
    steps = map(operator.sub, brackets.translate(_STEP), itertools.repeat(1))
    return max(itertools.accumulate(steps), default=0) > limit


# An escape that decodes to a control character other than tab, newline and carriage return
# (raw control characters inside strings are already invalid JSON: json.loads is strict), not
# preceded by an escaped backslash ("\\\\b" is a backslash and a "b").
_ESCAPED_CONTROL = re.compile(
    r"(?<!\\)(?:\\\\)*\\(?:u00(?:0[0-8bcef]|1[0-9a-f]|7f|[89][0-9a-f])|[bf])", re.IGNORECASE)


def loads_checked(text: str | bytes, field: str | None = None, *, invalid_raises: bool = False):
    """``json.loads`` that answers 400 (ApiError) for bad, too deep or control-laden JSON.
    ``invalid_raises``: leave the ValueError of text that is not JSON to the caller."""
    try:
        if isinstance(text, bytes | bytearray):
            text = text.decode("utf-8")
        if json_depth_exceeds(text):
            raise ApiError(400, RequestErrorCode.JSON_TOO_DEEP,
                           f"the JSON is nested deeper than {MAX_JSON_DEPTH} levels", field)
        if "\\" in text and _ESCAPED_CONTROL.search(text):
            raise refuse("JSON body", field)
        value = json.loads(text)
    except ValueError as exc:  # includes UnicodeDecodeError
        if invalid_raises:
            raise
        raise ApiError(400, RequestErrorCode.INVALID_JSON, f"the JSON is not valid ({exc})",
                       field) from None
    return value


class CheckedJSONProvider(DefaultJSONProvider):
    """Flask's JSON provider, with ``loads`` (``request.get_json``) going through the checks.
    Text that is not JSON still raises ValueError, so ``get_json(silent=True)`` keeps working."""

    def loads(self, s: str | bytes, **kwargs):
        return loads_checked(s, invalid_raises=True)


def check_request() -> None:
    """``before_request``: the path, the query string and every header value."""
    check_parts(request.path, request.args.items(multi=True), request.headers.items())


def check_parts(path: str, args: Iterable[tuple[str, str]],
                headers: Iterable[tuple[str, str]]) -> None:
    """400 when the path, a query parameter or a header value holds a control character (the
    Flask app's check, and the stream service's)."""
    if has_control(path):
        raise refuse("URL path")
    for key, value in args:
        if has_control(key) or has_control(value):
            raise refuse("query string", key if not has_control(key) else None)
    for name, value in headers:
        # Header values are latin-1 text: only C0 controls and DEL are certain to be hostile.
        if any(ch < " " and ch != "\t" or ch == "\x7f" for ch in value):
            raise refuse(f"{name} header")


def init_app(app: Flask) -> None:
    sort_keys = app.json.sort_keys
    app.json = CheckedJSONProvider(app)
    app.json.sort_keys = sort_keys
    app.before_request(check_request)
