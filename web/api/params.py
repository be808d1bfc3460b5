"""Parsing of the API's numeric request parameters (query strings, headers), with 400s that name
the parameter."""

from __future__ import annotations

from web.errors import ApiError


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
