"""The OpenAPI 3.1 description of REST API v1, written as data.

A test checks that every ``/api/v1`` rule of the app (path and method) appears here, so a new
route without a description fails the suite. The query parameters described here are the only
ones the API accepts (``query_parameters``; others are a 400 ``unknown_parameter``).
"""

from __future__ import annotations

from copy import deepcopy
from functools import lru_cache

from shared.items.quality import ORDERS, SORT_ORDERS
from shared.recipe.batch_names import MAX_NAME_CHARS
from web.openapi_components import ID as _ID
from web.openapi_components import component_schemas
from web.openapi_components import error as _error
from web.openapi_components import json_body as _json
from web.openapi_components import ref as _ref

API_VERSION = "1.0.0"


_STRIP_ID = {"name": "strip_id", "in": "path", "required": True, "schema": _ID}
_DIRECTION_BODY = {"required": True, "content": {"application/json": {"schema": {"oneOf": [
    _ref("LearnDirection"), _ref("SaveDirection")]}}}}
_STRIP_BODY = {"required": True, "content": {"application/json": {"schema": _ref("StripRequest")}}}
_BATCH_ID = {"name": "batch_id", "in": "path", "required": True, "schema": _ID}
_ITEM_ID = {"name": "item_id", "in": "path", "required": True, "schema": _ID}
_MODEL_NAME = {"name": "model_name", "in": "path", "required": True, "schema": {"type": "string"},
               "description": "a model config of the catalogue, e.g. anycost-ffhq-config-f"}
_MODEL_QUERY = {"name": "model", "in": "query", "required": False, "schema": {"type": "string"},
                "description": "a model config (GET /api/v1/models); default: the service's model"}
_NOT_FOUND = {"404": _error("no such batch or item for this user")}
_CONFLICT = {"409": _error("the item is not in a state that allows this")}
_IMAGE = {"content": {f"image/{t}": {"schema": {"type": "string", "format": "binary"}}
                      for t in ("png", "jpeg", "webp")}}


_RETRY_AFTER = {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}}
_COMMON = {
    "429": {**_error("too many requests (rate limit)"), "headers": _RETRY_AFTER},
    "503": {**_error("database_unavailable: try again after Retry-After seconds"),
            "headers": _RETRY_AFTER},
}


def _op(summary: str, responses: dict, *, params: list | None = None, body: dict | None = None,
        public: bool = False, tag: str = "batches") -> dict:
    op: dict = {"summary": summary, "tags": [tag], "responses": responses}
    if params:
        op["parameters"] = params
    if body:
        op["requestBody"] = body
    if public:
        op["security"] = []
    else:
        op["responses"] = {**responses, "401": _error("missing or invalid token")}
    # Any request: control characters or deep JSON (400), rate limits (429), database away (503).
    op["responses"] = {"400": _error("bad request: e.g. control characters or deep JSON"),
                       **op["responses"], **_COMMON}
    return op


_WAIT = {
    "name": "wait", "in": "query", "schema": {"type": "integer", "minimum": 0, "maximum": 30},
    "description": "long-poll: wait up to this many seconds for the preview of edit version "
                   "``v`` (or a newer one); 404 not_ready with item_status when it did not come "
                   "(failed, canceled, time up). The response's X-Edit-Version says which edit "
                   "the picture shows; it may come before the item's JSON says preview_ready (the "
                   "worker's preview lane). 503 with Retry-After when the caller has 4 waits open "
                   "or the server no room for another. 0 (default): answer at once",
}


def _image_path(kind: str) -> dict:
    return {"get": _op(
        f"The item's {kind} image", tag="items", params=[_ITEM_ID, {
            "name": "download", "in": "query", "schema": {"type": "string"},
            "description": "any value: send as an attachment",
        }, {
            "name": "v", "in": "query", "schema": {"type": "string"},
            "description": "the edit version in the item's image URLs (cache busting); with "
                           "``wait`` (preview only) the version to wait for",
        }, *([_WAIT] if kind == "preview" else [])],
        responses={"200": {"description": f"{kind} image bytes", **_IMAGE},
                   "304": {"description": "not modified (ETag)"},
                   "404": _error("no such item, or the image is not ready")},
    )}


_BATCH_NAME = {"type": "string", "maxLength": MAX_NAME_CHARS, "description":
               "the batch's name: one line, no control characters, stripped; blank for none "
               "(400 invalid_name otherwise)"}
_RENAME_BODY = {"required": True, "content": {"application/json": {"schema": _ref("BatchRename")}}}
_UPLOAD = {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["files"],
    "properties": {
        "files": {"type": "array", "minItems": 1,
                  "items": {"type": "string", "format": "binary"}},
        "recipe": {"type": "string", "description": "the recipe as JSON text", "contentMediaType":
                   "application/json"},
        "webhook_url": {"type": "string", "format": "uri", "description":
                        "events of this batch are POSTed here, signed (Standard Webhooks); "
                        "may also be the recipe's webhook_url key"},
        "name": _BATCH_NAME,
        "partial": {"type": "string", "enum": ["true", "false"], "default": "false",
                    "description": "true: make the batch of the photos that pass and list the "
                                   "others in the answer's refused (at least one must pass); "
                                   "otherwise one bad photo refuses the whole upload"},
    },
}}}}
_EDITS_BODY = {"required": True, "content": {"application/json": {"schema": _ref("EditsRequest")}}}
_PAGE_PARAMS = [
    {"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1, "default": 1}},
    {"name": "per_page", "in": "query",
     "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}},
]

_SORT_PARAMS = [
    {"name": "sort", "in": "query", "description": "item order: position (upload order) or "
     "realism (the final's score once there is one, else the latest preview's; most realistic "
     "first; items without a score last)",
     "schema": {"type": "string", "enum": list(SORT_ORDERS), "default": "position"}},
    {"name": "order", "in": "query", "description": "asc or desc; default asc for position, "
     "desc for realism", "schema": {"type": "string", "enum": list(ORDERS)}},
]

PATHS: dict = {
    "/api/v1/batches": {
        "post": _op("Upload photos with a recipe, or make new images from seeds (JSON)",
                    body={"required": True, "content": {
                        **_UPLOAD["content"],
                        "application/json": {"schema": _ref("SynthesisRequest")}}}, params=[{
            "name": "Idempotency-Key", "in": "header", "required": False,
            "schema": {"type": "string", "minLength": 1, "maxLength": 255},
            "description": "the same user and key within 24 h returns the first batch (200); "
                           "the same key with a different request is a 422",
        }], responses={
            "200": _json(_ref("BatchCreated"), "Idempotency-Key replay: the batch made before"),
            "201": {"description": "the batch; previews are queued", "content": {
                "application/json": {"schema": {"anyOf": [
                    _ref("BatchCreated"), _ref("SynthesisCreated")]}}}},
            "400": _error("bad recipe or synthesis field (field named), webhook URL or key, or "
                          "missing files"),
            "409": _error("webhook_secret_missing, idempotency_in_progress (Retry-After), or "
                          "model_unavailable: no live worker serves the model"),
            "413": _error("too many files, a file too large, or the request too large"),
            "415": _error("a file is not an accepted image type"),
            "429": _error("over your quota of waiting photos (quota_exceeded); see Retry-After"),
            "422": _error("idempotency_key_reused: the key was used for another request"),
        }),
        "get": _op("My batches, newest first", params=[*_PAGE_PARAMS, {
            "name": "q", "in": "query", "schema": {"type": "string", "maxLength": MAX_NAME_CHARS},
            "description": "only batches whose name contains this text, ignoring case",
        }], responses={
            "200": _json(_ref("BatchPage"), "one page"),
            "400": _error("bad page, per_page or q"),
        }),
    },
    "/api/v1/batches/{batch_id}": {"get": _op(
        "A batch with its items", params=[_BATCH_ID, *_SORT_PARAMS],
        responses={"200": _json(_ref("Batch"), "the batch"),
                   "400": _error("bad sort or order"), **_NOT_FOUND},
    ), "patch": _op(
        "Rename the batch (or clear its name with null)", params=[_BATCH_ID], body=_RENAME_BODY,
        responses={"200": _json(_ref("BatchSummary"), "the renamed batch"),
                   "400": _error("invalid_body or invalid_name (field name)"), **_NOT_FOUND},
    ), "delete": _op(
        "Delete the batch and every byte of it (uploads, previews, finals, latents)",
        params=[_BATCH_ID], responses={"204": {"description": "deleted"}, **_NOT_FOUND},
    )},
    "/api/v1/batches/{batch_id}/finalize": {"post": _op(
        "Queue finals for every preview_ready item", params=[_BATCH_ID],
        responses={"202": _json(_ref("Accepted"), "queued: how many finals"), **_NOT_FOUND},
    )},
    "/api/v1/batches/{batch_id}/cancel": {"post": _op(
        "Cancel every item that is not finished", params=[_BATCH_ID],
        responses={"200": _json(_ref("Canceled"), "how many items were canceled"),
                   **_NOT_FOUND},
    )},
    "/api/v1/batches/{batch_id}/download": {"get": _op(
        "A zip of the batch's finished images (file name: <name slug>-<id prefix>.zip for a "
        "named batch, else batch-<id prefix>-finals.zip)", params=[_BATCH_ID],
        responses={"200": {"description": "zip archive", "content": {"application/zip": {
            "schema": {"type": "string", "format": "binary"}}}},
            "404": _error("no such batch"),
            "409": _error("not_ready: no finished images yet (finalize first)")},
    )},
    "/api/v1/items/{item_id}": {"get": _op(
        "One item", tag="items", params=[_ITEM_ID],
        responses={"200": _json(_ref("Item"), "the item"), **_NOT_FOUND},
    )},
    "/api/v1/items/{item_id}/finalize": {"post": _op(
        "Queue the final of one preview_ready item", tag="items", params=[_ITEM_ID],
        responses={"202": _json(_ref("Accepted"), "queued"), **_NOT_FOUND, **_CONFLICT},
    )},
    "/api/v1/items/{item_id}/edits": {
        method: _op(
            "Change the item's edits (and optionally its preview cost); renders a new preview",
            tag="items", params=[_ITEM_ID], body=_EDITS_BODY,
            responses={"202": _json(_ref("Accepted"), "the new edit_version"),
                       "400": _error("bad edits (field named)"), **_NOT_FOUND, **_CONFLICT},
        ) for method in ("patch", "post")
    },
    "/api/v1/items/{item_id}/retry": {"post": _op(
        "Queue a failed item again", tag="items", params=[_ITEM_ID],
        responses={"202": _json(_ref("Accepted"), "queued"), **_NOT_FOUND, **_CONFLICT},
    )},
    **{f"/api/v1/items/{{item_id}}/{kind}": _image_path(kind)
       for kind in ("original", "projected", "preview", "final")},
    "/api/v1/directions": {
        "get": _op("A model's generator directions and my own for it", tag="directions",
                   params=[_MODEL_QUERY], responses={
                       "200": _json(_ref("Directions"), "directions"),
                       "400": _error("unknown model")}),
        "post": _op("Learn a direction from examples, or save a generator direction under a "
                    "name", tag="directions", body=_DIRECTION_BODY, responses={
                        "201": _json(_ref("UserDirection"), "the new direction"),
                        "400": _error("bad name, too few or unusable examples, unknown source"),
                        "409": _error("I already have a direction of that name")}),
    },
    "/api/v1/directions/{name}": {"delete": _op(
        "Delete one of my directions", tag="directions",
        params=[{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}},
                _MODEL_QUERY],
        responses={"204": {"description": "deleted"}, "400": _error("unknown model"),
                   "404": _error("no such direction")},
    )},
    "/api/v1/items/{item_id}/strips": {"post": _op(
        "Previews of the item along one direction (-1 .. +1), rendered at its preview cost",
        tag="directions", params=[_ITEM_ID], body=_STRIP_BODY,
        responses={"202": _json(_ref("Strip"), "queued"),
                   "400": _error("unknown direction or bad steps"), **_NOT_FOUND,
                   "409": _error("the item has no stored code yet")},
    )},
    "/api/v1/strips/{strip_id}": {"get": _op(
        "A strip and its status", tag="directions", params=[_STRIP_ID],
        responses={"200": _json(_ref("Strip"), "the strip"), "404": _error("no such strip")},
    )},
    "/api/v1/strips/{strip_id}/image": {"get": _op(
        "The strip's image: its frames side by side", tag="directions", params=[_STRIP_ID],
        responses={"200": {"description": "PNG", "content": {"image/png": {
            "schema": {"type": "string", "format": "binary"}}}},
            "404": _error("no such strip, or not rendered")},
    )},
    "/api/v1/attributes": {"get": _op(
        "The edit attributes, their aliases and the model's own directions", tag="service",
        public=True,
        responses={"200": _json(_ref("Attributes"), "attributes")},
    )},
    "/api/v1/models": {"get": _op(
        "The model configs that have a live worker: resolution, costs, installed files",
        tag="service", responses={"200": _json(_ref("ServedModels"), "models")},
    )},
    "/api/v1/models/current": {"get": _op(
        "The model this service runs, its allowed costs and their MACs", tag="service",
        public=True, responses={"200": _json(_ref("CurrentModel"), "model")},
    )},
    "/api/v1/models/{model_name}/evaluations": {
        "post": _op("Start an evaluation (FID, PPL or consistency) of a model", tag="evaluations",
                    params=[_MODEL_NAME], body={"required": True, "content": {
                        "application/json": {"schema": _ref("EvaluationRequest")}}},
                    responses={"202": _json(_ref("Evaluation"), "queued on the evaluate queue"),
                               "400": _error("bad request (field named in the message)"),
                               "404": _error("no such model"),
                               "429": _error("too many evaluations queued or running (yours, "
                                             "or the service's); see Retry-After"),
                               "503": _error("the job queue is unavailable")}),
        "get": _op("Your evaluations of the model, newest first (at most 50)",
                   tag="evaluations",
                   params=[_MODEL_NAME],
                   responses={"200": _json(_ref("EvaluationList"), "the evaluations"),
                              "404": _error("no such model")}),
    },
    "/api/v1/models/{model_name}/evaluations/{evaluation_id}": {"get": _op(
        "One evaluation (poll until status is done or failed)", tag="evaluations",
        params=[_MODEL_NAME, {"name": "evaluation_id", "in": "path", "required": True,
                              "schema": _ID}],
        responses={"200": _json(_ref("Evaluation"), "the evaluation"),
                   "404": _error("no such model or evaluation (another user's is not found)")},
    )},
    "/api/v1/openapi.json": {"get": _op(
        "This document", tag="service", public=True,
        responses={"200": {"description": "OpenAPI 3.1 document",
                           "content": {"application/json": {}}}},
    )},
    "/api/v1/batches/{batch_id}/events": {"get": _op(
        "The batch's events as server-sent events (snapshot, item.*, batch.completed)",
        params=[_BATCH_ID,
                {"name": "timeout", "in": "query", "schema": {"type": "integer", "minimum": 1},
                 "description": "seconds before the stream ends (at most the server's limit)"},
                {"name": "Last-Event-ID", "in": "header", "required": False,
                 "schema": {"type": "string", "pattern": "^[0-9]{1,10}$"},
                 "description": "resume after this event id (at most 2147483647: 400 past it)"},
                {"name": "last_event_id", "in": "query", "required": False,
                 "schema": {"type": "string", "pattern": "^[0-9]{1,10}$"},
                 "description": "the same, for clients that cannot set headers"}],
        responses={"200": {"description": "text/event-stream; ends after batch.completed, "
                                          "the timeout, or the end of the credential",
                           "content": {"text/event-stream": {"schema": {"type": "string"}}}},
                   "429": {**_error("too many of your event streams are open"),
                           "headers": _RETRY_AFTER},
                   "503": {**_error("no room for another stream in this server process now"),
                           "headers": _RETRY_AFTER},
                   **_NOT_FOUND},
    )},
    "/api/v1/tokens": {
        "get": _op("My live API tokens (never the tokens themselves)", tag="tokens", responses={
            "200": _json(_ref("TokenList"), "the tokens"),
        }),
        "post": _op("A new API token, shown once (one made with a token expires no later than "
                    "it and is revoked with it)", tag="tokens", body={
            "required": False, "content": {"application/json": {"schema": _ref("TokenRequest")}}},
            responses={"201": _json(_ref("Token"), "the token (field token, shown once)")}),
    },
    "/api/v1/tokens/{token_id}": {"delete": _op(
        "Revoke one of my tokens", tag="tokens",
        params=[{"name": "token_id", "in": "path", "required": True, "schema": {"type": "string"}}],
        responses={"204": {"description": "revoked"}, "404": _error("no such live token")},
    )},
    "/api/v1/webhooks/secret": {"post": _op(
        "A new webhook signing secret (whsec_...), shown once; replaces the old one",
        tag="tokens", responses={"201": _json(_ref("WebhookSecret"), "the secret")},
    )},
    "/api/v1/webhooks/deliveries": {"get": _op(
        "My batches' webhook deliveries, newest first: status, tries, the last answer",
        tag="tokens", params=[*_PAGE_PARAMS, {
            "name": "batch", "in": "query", "schema": _ID,
            "description": "only this batch's deliveries (404 when it is not mine)"}],
        responses={"200": _json(_ref("WebhookDeliveryPage"), "one page"),
                   "400": _error("bad page or per_page"), "404": _error("no such batch")},
    )},
    "/api/v1/me/password": {"post": _op(
        "Change my portal password; every other session ends", tag="tokens", body={
            "required": True, "content": {"application/json": {"schema": _ref("PasswordChange")}}},
        responses={"204": {"description": "changed"},
                   "403": _error("wrong_password: the current password is not right")},
    )},
    "/api/v1/me": {"get": _op(
        "Who the token belongs to", tag="service",
        responses={"200": _json(_ref("Me"), "the user")},
    )},
}


@lru_cache(maxsize=256)
def query_parameters(rule: str, method: str) -> frozenset[str] | None:
    """The query parameters documented for a Flask rule and method (None: not described)."""
    operation = PATHS.get(rule.replace("<", "{").replace(">", "}"), {}).get(method.lower())
    if operation is None:
        return None
    return frozenset(p["name"] for p in operation.get("parameters", []) if p["in"] == "query")


@lru_cache(maxsize=256)
def body_fields(rule: str, method: str) -> frozenset[str] | None:
    """The top-level keys a JSON request body may have, for a Flask rule and method: those of
    its schema (of any of its alternatives), when every alternative is a model that forbids
    others (``extra="forbid"``); None when the body is not described or allows any key."""
    operation = PATHS.get(rule.replace("<", "{").replace(">", "}"), {}).get(method.lower())
    schema = (((operation or {}).get("requestBody") or {}).get("content", {})
              .get("application/json", {}).get("schema"))
    if schema is None:
        return None
    components = component_schemas()
    fields: set[str] = set()
    for alternative in schema.get("oneOf") or schema.get("anyOf") or [schema]:
        ref = alternative.get("$ref", "")
        model = components.get(ref.rsplit("/", 1)[-1], {}) if ref else alternative
        if model.get("additionalProperties") is not False:
            return None
        fields.update(model.get("properties", {}))
    return frozenset(fields)


def document(server_url: str | None = None) -> dict:
    """The whole OpenAPI document (a fresh copy: callers may change it)."""
    doc = {
        "openapi": "3.1.0",
        "info": {
            "title": "Anycost batch face editor",
            "version": API_VERSION,
            "description": "Upload portraits with an edit recipe, get cheap previews from an "
                           "Anycost GAN sub-network, then full-cost finals.",
        },
        "servers": [{"url": server_url}] if server_url else [],
        "security": [{"bearer": []}],
        "paths": PATHS,
        "components": {
            "schemas": component_schemas(),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
    return deepcopy(doc)
