"""Parsing of the numeric request parameters (query strings, headers) of the API and of the
stream service (``web.streams``), with 400s that name the parameter."""

from __future__ import annotations

from collections.abc import Iterable

from web import openapi
from web.errors import ApiError

#: The largest id an Integer column holds (PostgreSQL's int4): a larger one is a 4xx, never
#: a query that fails on the database.
DB_INT_MAX = 2**31 - 1


def id_segment(raw: str) -> int | None:
    """A path segment naming an integer id, or None when it cannot name one (then: 404)."""
    if not raw.isascii() or not raw.isdigit() or len(raw) > 10 or int(raw) > DB_INT_MAX:
        return None
    return int(raw)


def int_param(raw: str | None, name: str, low: int, high: int, default: int) -> int:
    """``raw`` as an integer in [low, high]; ``default`` when absent or empty."""
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, "invalid_parameter", f"{name} must be an integer", name) from None
    if not low <= value <= high:
        raise ApiError(400, "invalid_parameter", f"{name} must be from {low} to {high}", name)
    return value


def check_known_query(rule: str, method: str, names: Iterable[str]) -> None:
    """A misspelt parameter (``per_pag=5``) is an error, not silently the default: 400 for a
    query parameter the OpenAPI document does not describe for ``rule`` (Flask's syntax)."""
    allowed = openapi.query_parameters(rule, method)
    unknown = sorted(set(names) - (allowed or frozenset()))
    if allowed is not None and unknown:
        raise ApiError(400, "unknown_parameter", f"unknown query parameter {unknown[0]!r}"
                       + (f"; known: {', '.join(sorted(allowed))}" if allowed else ""), unknown[0])
