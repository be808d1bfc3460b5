"""``VALIDATE_RESPONSES`` (Flask config, off by default; the test apps turn it on): every JSON
answer of ``/api/v1`` is checked against the OpenAPI document's schema for its route, method and
status, and a mismatch raises ``ResponseMismatch`` (in tests it reaches the test; elsewhere it is
a 500 and a log line). An undocumented error status must still be an ``Error``; an undocumented
success status is a mismatch.

The validator is jsonschema-rs (a development dependency: schemathesis uses it too), imported
only when the check is on.
"""

from __future__ import annotations

from functools import lru_cache

from flask import Flask, Response, current_app, request

from web import openapi
from web.openapi_components import ref

CONFIG_KEY = "VALIDATE_RESPONSES"
API_V1 = "/api/v1/"


class ResponseMismatch(RuntimeError):
    """An answer that the OpenAPI document does not describe."""


def init_app(app: Flask) -> None:
    app.config.setdefault(CONFIG_KEY, False)
    app.after_request(_check_response)


def _check_response(response: Response) -> Response:
    if (not current_app.config[CONFIG_KEY] or not request.path.startswith(API_V1)
            or request.method in ("HEAD", "OPTIONS") or not response.is_json):
        return response
    rule = request.url_rule.rule if request.url_rule is not None else None
    check(rule, request.method, response.status_code, response.get_json())
    return response


def check(rule: str | None, method: str, status: int, body) -> None:
    """Raise ``ResponseMismatch`` unless ``body`` is what the document says ``method`` on the
    Flask ``rule`` (None: no route matched) answers with ``status``."""
    path = rule.replace("<", "{").replace(">", "}") if rule else None
    validator = _validator(path, method.lower(), status)
    if validator is None:
        return
    errors = [f"{'/'.join(map(str, e.instance_path)) or '(body)'}: {e.message}"
              for e in validator.iter_errors(body)]
    if errors:
        raise ResponseMismatch(f"{method.upper()} {rule} {status} does not match the OpenAPI "
                               f"document: " + "; ".join(errors[:5]))


@lru_cache(maxsize=512)
def _validator(path: str | None, method: str, status: int):
    schema = _schema_for(_document(), path, method, status)
    if schema is None:
        return None
    import jsonschema_rs

    return jsonschema_rs.validator_for({**schema, "components": _document()["components"]})


@lru_cache(maxsize=1)
def _document() -> dict:
    return openapi.document()


def _schema_for(doc: dict, path: str | None, method: str, status: int) -> dict | None:
    operation = doc["paths"].get(path, {}).get(method) if path else None
    documented = (operation or {}).get("responses", {}).get(str(status))
    if documented is None:
        if status >= 400:
            return ref("Error")
        raise ResponseMismatch(f"{method.upper()} {path} answered {status}, which the OpenAPI "
                               "document does not list")
    content = documented.get("content", {})
    if "application/json" not in content:
        raise ResponseMismatch(f"{method.upper()} {path} {status} answered JSON; the OpenAPI "
                               f"document lists {', '.join(content) or 'no body'}")
    return content["application/json"].get("schema")
