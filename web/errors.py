"""JSON errors for the API: every 4xx/5xx under ``/api`` is ``{"error": {"code", "message"}}``
(plus ``field`` when one request field is to blame). Pages outside ``/api`` keep Flask's defaults
so the portal can render its own.

A database that cannot be reached (connection refused, dropped, pool exhausted) is a 503
``database_unavailable`` with ``Retry-After`` everywhere, never a 500: the request may simply be
sent again. 429s carry ``Retry-After`` too.
"""

from __future__ import annotations

import logging

from flask import Flask, Response, jsonify, request
from sqlalchemy import exc as sa_exc
from werkzeug.exceptions import HTTPException, InternalServerError

from shared.codes.errors import ErrorCode, RequestErrorCode
from shared.commands.errors import CommandError
from shared.recipe.batch_names import BatchNameError
from shared.recipe.parse import RecipeError
from shared.store.blobs import BlobNotFound

log = logging.getLogger(__name__)

API_PREFIX = "/api/"
#: Seconds a client should wait before sending a request again after a 503 from the database.
DB_RETRY_AFTER_SECONDS = 5

# Stable codes for the HTTP errors Werkzeug raises by itself.
HTTP_CODES = {
    400: RequestErrorCode.BAD_REQUEST,
    401: RequestErrorCode.UNAUTHORIZED,
    403: RequestErrorCode.FORBIDDEN,
    404: RequestErrorCode.NOT_FOUND,
    405: RequestErrorCode.METHOD_NOT_ALLOWED,
    409: RequestErrorCode.CONFLICT,
    413: RequestErrorCode.TOO_LARGE,
    415: RequestErrorCode.UNSUPPORTED_MEDIA_TYPE,
    429: RequestErrorCode.TOO_MANY_REQUESTS,
    500: ErrorCode.INTERNAL_ERROR,
    503: RequestErrorCode.UNAVAILABLE,
}


class ApiError(Exception):
    """Raised by API views for a request that cannot be done."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None,
                 headers: dict | None = None, **extra):
        super().__init__(message)
        self.status = status
        self.code = str(code)
        self.message = message
        self.field = field
        self.headers = headers or {}
        self.extra = extra


def error_document(code: str, message: str, field: str | None = None, **extra) -> dict:
    """The JSON body of an error answer (the Flask app's and the stream service's)."""
    body: dict = {"code": code, "message": message}
    if field is not None:
        body["field"] = field
    body.update(extra)
    return {"error": body}


def error_headers(status: int) -> dict[str, str]:
    """Headers every error answer of ``status`` carries."""
    return {"WWW-Authenticate": 'Bearer realm="anycost"'} if status == 401 else {}


def error_response(
    status: int, code: str, message: str, field: str | None = None, **extra
) -> Response:
    response = jsonify(error_document(code, message, field, **extra))
    response.status_code = status
    response.headers.update(error_headers(status))
    return response


def _is_api() -> bool:
    return request.path.startswith(API_PREFIX) or request.path == API_PREFIX.rstrip("/")


def is_database_outage(exc: BaseException) -> bool:
    """Whether ``exc`` says the database cannot be reached now (not that a query was wrong)."""
    if isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError | sa_exc.TimeoutError |
                  sa_exc.DisconnectionError):
        return True
    return isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated


def database_unavailable_response() -> Response:
    message = "the database is unavailable; try again shortly"
    if _is_api() or request.path.startswith("/portal/"):  # the portal's scripts read JSON
        response = error_response(503, RequestErrorCode.DATABASE_UNAVAILABLE, message)
    else:
        response = Response(f"503 Service Unavailable: {message}\n", status=503,
                            mimetype="text/plain")
    response.headers["Retry-After"] = str(DB_RETRY_AFTER_SECONDS)
    return response


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        response = error_response(exc.status, exc.code, exc.message, exc.field, **exc.extra)
        response.headers.update(exc.headers)
        return response

    @app.errorhandler(sa_exc.SQLAlchemyError)
    def _database_error(exc: sa_exc.SQLAlchemyError):
        if is_database_outage(exc):
            log.warning("database unavailable on %s %s: %s", request.method, request.path,
                        str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            return database_unavailable_response()
        return _unexpected(exc)

    @app.errorhandler(RecursionError)
    def _too_deep(_exc: RecursionError):
        # Only hostile input nests this deep (safe_input refuses deep JSON before it parses).
        return error_response(400, RequestErrorCode.JSON_TOO_DEEP, "the request is nested too deeply")

    @app.errorhandler(CommandError)
    def _job_error(exc: CommandError):
        response = error_response(exc.status, exc.code, exc.message)
        if exc.retry_after is not None:  # 429 quota_exceeded, 503 ...
            response.headers["Retry-After"] = str(exc.retry_after)
        return response

    @app.errorhandler(RecipeError)
    def _recipe_error(exc: RecipeError):
        return error_response(400, "invalid_recipe", str(exc), exc.field)

    @app.errorhandler(BatchNameError)
    def _name_error(exc: BatchNameError):
        return error_response(400, RequestErrorCode.INVALID_NAME, exc.message, exc.field)

    @app.errorhandler(BlobNotFound)
    def _blob_missing(_exc: BlobNotFound):
        return error_response(404, "not_found", "the image is no longer stored")

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        if not _is_api():
            return exc
        status = exc.code or 500
        code = HTTP_CODES.get(status, "error")
        message = exc.description or exc.name
        if status == 413:
            message = "the request is larger than the upload limit"
        response = error_response(status, code, message)
        allowed = getattr(exc, "valid_methods", None)
        if status == 405 and allowed:
            response.headers["Allow"] = ", ".join(allowed)
        return response

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.path)
        if not _is_api():
            return InternalServerError()
        return error_response(500, "internal_error", "something went wrong on our side")
