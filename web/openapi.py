"""The OpenAPI 3.1 description of REST API v1, written as data.

A test checks that every ``/api/v1`` rule of the app (path and method) appears here, so a new
route without a description fails the suite.
"""

from __future__ import annotations

from copy import deepcopy

from shared.quality import ORDERS, PROJECTION_METHODS, SORT_ORDERS

API_VERSION = "1.0.0"


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: dict) -> dict:
    return {"oneOf": [schema, {"type": "null"}]}


def _json(schema: dict, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict:
    return _json(_ref("Error"), description)


_ID = {"type": "string", "pattern": "^[0-9a-f]{32}$"}
_URL = {"type": "string", "format": "uri"}
_STATUS = {"type": "string", "enum": [
    "queued", "previewing", "preview_ready", "finalizing", "done", "failed", "canceled",
]}
_BATCH_STATUS = {"type": "string", "enum": [
    "empty", "queued", "running", "preview_ready", "done", "failed", "canceled",
]}

SCHEMAS: dict = {
    "Error": {
        "type": "object", "required": ["error"],
        "properties": {"error": {
            "type": "object", "required": ["code", "message"],
            "properties": {
                "code": {"type": "string"}, "message": {"type": "string"},
                "field": {"type": "string", "description": "the request field to blame"},
            },
        }},
    },
    "Edits": {
        "type": "object", "additionalProperties": {"type": "number", "minimum": -1, "maximum": 1},
        "description": "attribute (alias, CelebA name or boundary key), generator direction "
                       "(sefa_NN, pca_NN) or one of my directions (name or user:name) -> value "
                       "in [-1, 1]",
    },
    "Cost": {
        "type": "object",
        "properties": {
            "channels": {"type": "number", "enum": [0.25, 0.5, 0.75, 1.0]},
            "resolution": {"type": "integer", "description": "a power of two up to the model's"},
        },
    },
    "Recipe": {
        "type": "object",
        "properties": {
            "edits": _ref("Edits"), "preview": _ref("Cost"), "final": _ref("Cost"),
            "auto_finalize": {"type": "boolean"},
            "output": {"type": "string", "enum": ["photo", "crop"]},
            "faces": {"type": "string", "enum": ["largest", "all"]},
            "refine_steps": {"type": "integer", "minimum": 0, "maximum": 200},
        },
    },
    "ModelRef": {
        "type": "object",
        "properties": {"name": {"type": "string"}, "pretrained": {"type": ["boolean", "null"]}},
    },
    "ItemRef": {
        "type": "object", "required": ["id", "filename", "status"],
        "properties": {"id": _ID, "filename": {"type": "string"}, "status": _STATUS},
    },
    "Item": {
        "type": "object",
        "required": ["id", "filename", "status", "error", "preview_url", "final_url"],
        "properties": {
            "id": _ID, "batch_id": _ID, "position": {"type": "integer"},
            "filename": {"type": "string"}, "status": _STATUS,
            "error": _nullable({
                "type": "object",
                "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
            }),
            **{f"{k}_url": _nullable(_URL) for k in ("original", "projected", "preview", "final")},
            "edits": _ref("Edits"), "edit_version": {"type": "integer"},
            "attempts": {"type": "integer"},
            "timings": {"type": "object", "additionalProperties": {"type": "number"}},
            "preview_cost": _ref("Cost"), "final_cost": _ref("Cost"), "model": _ref("ModelRef"),
            "realism": {
                "type": "object", "description": "null inside when the model has no "
                "discriminator or the image is not rendered yet",
                "properties": {"preview": _ref("Realism"), "final": _ref("Realism")},
            },
            "projection": _ref("Projection"), "consistency": _ref("Consistency"),
            "created_at": {"type": "string", "format": "date-time"},
            "updated_at": {"type": "string", "format": "date-time"},
        },
    },
    "Realism": _nullable({
        "type": "object", "required": ["logit", "score"],
        "description": "the discriminator's verdict on the rendered face(s): its logit (the "
                       "mean over the item's faces) and sigmoid(logit) as a 0..1 score",
        "properties": {"logit": {"type": "number"},
                       "score": {"type": "number", "minimum": 0, "maximum": 1}},
    }),
    "Projection": _nullable({
        "type": "object", "required": ["method", "error"],
        "description": "how the face was projected into W+: the encoder alone, the encoder "
                       "then refine_steps of optimisation (finals), or optimisation from w_avg "
                       "(configs without an encoder; projection_steps steps). error: MSE in "
                       "[-1, 1] units against the aligned face at resolution",
        "properties": {
            "method": {"type": "string", "enum": list(PROJECTION_METHODS)},
            "error": {"type": "number", "minimum": 0},
            "resolution": {"type": "integer"},
            "error_start": {"type": "number", "description": "optimisation: error at w_avg"},
            "steps": {"type": "integer", "description": "optimisation steps"},
            "error_before_refine": {"type": "number"},
            "refine_steps": {"type": "integer"},
        },
    }),
    "Consistency": _nullable({
        "type": "object", "required": ["psnr"],
        "description": "how close the final came to the item's last preview, compared at the "
                       "preview's resolution: PSNR (dB, 100 = identical) and LPIPS (null when "
                       "the LPIPS weights are not installed on the worker)",
        "properties": {"psnr": {"type": "number"}, "lpips": _nullable({"type": "number"}),
                       "resolution": {"type": "integer"}},
    }),
    "Counts": {"type": "object", "additionalProperties": {"type": "integer"}},
    "BatchCreated": {
        "type": "object", "required": ["id", "status", "items"],
        "properties": {
            "id": _ID, "status": _BATCH_STATUS, "url": _URL,
            "items": {"type": "array", "items": _ref("ItemRef")},
        },
    },
    "Batch": {
        "type": "object", "required": ["id", "status", "progress", "counts", "items"],
        "properties": {
            "id": _ID, "status": _BATCH_STATUS,
            "progress": {"type": "number", "minimum": 0, "maximum": 1},
            "counts": _ref("Counts"), "created_at": {"type": "string", "format": "date-time"},
            "canceled_at": _nullable({"type": "string", "format": "date-time"}),
            "recipe": _ref("Recipe"), "model": _ref("ModelRef"), "download_url": _URL,
            "items": {"type": "array", "items": _ref("Item")},
        },
    },
    "BatchSummary": {
        "type": "object",
        "properties": {
            "id": _ID, "status": _BATCH_STATUS, "progress": {"type": "number"},
            "counts": _ref("Counts"), "item_count": {"type": "integer"},
            "created_at": {"type": "string", "format": "date-time"}, "model": _ref("ModelRef"),
            "url": _URL,
        },
    },
    "BatchPage": {
        "type": "object", "required": ["batches", "page", "per_page", "total", "pages"],
        "properties": {
            "batches": {"type": "array", "items": _ref("BatchSummary")},
            "page": {"type": "integer"}, "per_page": {"type": "integer"},
            "total": {"type": "integer"}, "pages": {"type": "integer"},
        },
    },
    "Accepted": {
        "type": "object",
        "properties": {
            "id": _ID, "status": _STATUS, "queued": {"type": "integer"},
            "edit_version": {"type": "integer"},
        },
    },
    "Attributes": {
        "type": "object",
        "properties": {
            "attributes": {"type": "array", "items": {
                "type": "object",
                "properties": {
                    "key": {"type": "string"}, "name": {"type": "string"},
                    "aliases": {"type": "array", "items": {"type": "string"}},
                },
            }},
            "aliases": {"type": "object", "additionalProperties": {"type": "string"}},
            "range": {"type": "array", "items": {"type": "number"}},
            "directions": {"type": "array", "items": _ref("GeneratorDirection")},
        },
    },
    "GeneratorDirection": {
        "type": "object", "required": ["key", "method", "slots", "gain"],
        "description": "a direction computed from the generator when its weights were installed; "
                       "an edit moves w[:, slots] += value * gain * direction",
        "properties": {
            "key": {"type": "string", "pattern": "^(sefa|pca)_[0-9]{2}$"},
            "method": {"type": "string", "enum": ["sefa", "pca"]},
            "index": {"type": "integer"},
            "slots": {"type": "array", "items": {"type": "integer"}},
            "gain": {"type": "number"}, "sigma": {"type": "number"},
            "eigenvalue": {"type": "number"}, "variance": {"type": "number"},
        },
    },
    "UserDirection": {
        "type": "object", "required": ["key", "name", "method", "slots", "gain"],
        "description": "a user's own direction; use it in edits as name or key",
        "properties": {
            "key": {"type": "string", "description": "user:<name>"},
            "name": {"type": "string", "pattern": "^[a-z][a-z0-9_]{0,39}$"},
            "method": {"type": "string", "enum": ["learned", "saved"]},
            "source": _nullable({"type": "string"}),
            "slots": {"type": "array", "items": {"type": "integer"}},
            "gain": {"type": "number"}, "accuracy": {"type": "number"},
            "margin": {"type": "number"},
            "positive": {"type": "array", "items": _ID},
            "negative": {"type": "array", "items": _ID},
            "created_at": {"type": "string", "format": "date-time"},
        },
    },
    "Directions": {
        "type": "object",
        "properties": {
            "model": {"type": "string"},
            "generator": {"type": "array", "items": _ref("GeneratorDirection")},
            "user": {"type": "array", "items": _ref("UserDirection")},
        },
    },
    "Strip": {
        "type": "object", "required": ["id", "status", "values"],
        "description": "previews of one item along one direction, frames side by side",
        "properties": {
            "id": _ID, "item_id": _ID, "direction": {"type": "string"},
            "values": {"type": "array", "items": {"type": "number"}},
            "cost": _ref("Cost"),
            "status": {"type": "string", "enum": ["queued", "done", "failed"]},
            "error": _nullable({"type": "string"}), "url": _URL,
            "image_url": _nullable(_URL),
        },
    },
    "CurrentModel": {
        "type": "object",
        "properties": {
            "name": {"type": "string"}, "resolution": {"type": "integer"},
            "pretrained": {"type": "boolean"}, "description": {"type": "string"},
            "edits_available": {"type": "boolean"},
            "channel_ratios": {"type": "array", "items": {"type": "number"}},
            "resolutions": {"type": "array", "items": {"type": "integer"}},
            "default_costs": {"type": "object", "properties": {
                "preview": _ref("Cost"), "final": _ref("Cost"),
            }},
            "costs": {"type": "array", "items": {
                "type": "object",
                "properties": {
                    "channels": {"type": "number"}, "resolution": {"type": "integer"},
                    "macs": {"type": "integer"}, "relative": {"type": "number"},
                },
            }},
        },
    },
    "EvaluationRequest": {
        "type": "object", "required": ["kind", "n"], "additionalProperties": False,
        "properties": {
            "kind": {"type": "string", "enum": ["fid", "ppl", "consistency"]},
            "n": {"type": "integer", "minimum": 1,
                  "description": "samples per cost (FID: at least 2; at most ANYCOST_EVAL_MAX_N)"},
            "channels": {"type": "number", "enum": [0.25, 0.5, 0.75, 1.0],
                         "description": "only this channel ratio (default: every one; PPL: 1.0)"},
            "resolution": {"type": "integer",
                           "description": "only this resolution (default: every one; PPL: full)"},
            "seed": {"type": "integer", "minimum": 0, "default": 0},
            "data": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$",
                     "description": "FID only: a data set folder under ANYCOST_EVAL_DATA_DIR on "
                                    "the workers (default: the full model's own samples)"},
        },
    },
    "Evaluation": {
        "type": "object", "required": ["id", "kind", "status", "params", "result", "error"],
        "properties": {
            "id": _ID, "model": _ref("ModelRef"),
            "kind": {"type": "string", "enum": ["fid", "ppl", "consistency"]},
            "status": {"type": "string", "enum": ["queued", "running", "done", "failed"]},
            "params": {"type": "object", "description": "the request, defaults filled in"},
            "result": _nullable({
                "type": "object",
                "description": "metric, n, seed, settings used (data set, Inception sha256, "
                               "LPIPS net ...) and `results`: one entry per cost",
                "properties": {"results": {"type": "array", "items": {"type": "object"}}},
            }),
            "error": _nullable({
                "type": "object",
                "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
            }),
            "worker": _nullable({"type": "string"}), "attempts": {"type": "integer"},
            **{f"{k}_at": _nullable({"type": "string", "format": "date-time"})
               for k in ("created", "started", "finished")},
            "url": _URL,
        },
    },
}

_STRIP_ID = {"name": "strip_id", "in": "path", "required": True, "schema": _ID}
_DIRECTION_BODY = {"required": True, "content": {"application/json": {"schema": {"oneOf": [
    {"type": "object", "required": ["name", "positive", "negative"], "properties": {
        "name": {"type": "string"},
        "positive": {"type": "array", "items": _ID, "minItems": 5,
                     "description": "items that have the attribute (previewed: codes stored)"},
        "negative": {"type": "array", "items": _ID, "minItems": 5,
                     "description": "items that lack it"}}},
    {"type": "object", "required": ["name", "source"], "properties": {
        "name": {"type": "string"},
        "source": {"type": "string", "description": "a generator direction, e.g. sefa_03"}}},
]}}}}
_STRIP_BODY = {"required": True, "content": {"application/json": {"schema": {
    "type": "object", "required": ["direction"],
    "properties": {"direction": {"type": "string", "description": "any edit name"},
                   "steps": {"type": "integer", "minimum": 3, "maximum": 11, "default": 7}},
}}}}
_BATCH_ID = {"name": "batch_id", "in": "path", "required": True, "schema": _ID}
_ITEM_ID = {"name": "item_id", "in": "path", "required": True, "schema": _ID}
_MODEL_NAME = {"name": "model_name", "in": "path", "required": True, "schema": {"type": "string"},
               "description": "a model config of the catalogue, e.g. anycost-ffhq-config-f"}
_NOT_FOUND = {"404": _error("no such batch or item for this user")}
_CONFLICT = {"409": _error("the item is not in a state that allows this")}
_IMAGE = {"content": {f"image/{t}": {"schema": {"type": "string", "format": "binary"}}
                      for t in ("png", "jpeg", "webp")}}


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
    return op


def _image_path(kind: str) -> dict:
    return {"get": _op(
        f"The item's {kind} image", tag="items", params=[_ITEM_ID, {
            "name": "download", "in": "query", "schema": {"type": "string"},
            "description": "any value: send as an attachment",
        }],
        responses={"200": {"description": f"{kind} image bytes", **_IMAGE},
                   "304": {"description": "not modified (ETag)"},
                   "404": _error("no such item, or the image is not ready")},
    )}


_UPLOAD = {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["files"],
    "properties": {
        "files": {"type": "array", "items": {"type": "string", "format": "binary"}},
        "recipe": {"type": "string", "description": "the recipe as JSON text", "contentMediaType":
                   "application/json"},
    },
}}}}
_EDITS_BODY = {"required": True, "content": {"application/json": {"schema": {
    "type": "object", "required": ["edits"],
    "properties": {"edits": _ref("Edits"), "preview": _ref("Cost")},
}}}}
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
        "post": _op("Upload photos with a recipe", body=_UPLOAD, responses={
            "201": _json(_ref("BatchCreated"), "the batch; previews are queued"),
            "400": _error("bad recipe (field named) or missing files"),
            "413": _error("too many files, a file too large, or the request too large"),
            "415": _error("a file is not an accepted image type"),
            "429": _error("over your quota of waiting photos (quota_exceeded); see Retry-After"),
        }),
        "get": _op("My batches, newest first", params=_PAGE_PARAMS, responses={
            "200": _json(_ref("BatchPage"), "one page"),
            "400": _error("bad page or per_page"),
        }),
    },
    "/api/v1/batches/{batch_id}": {"get": _op(
        "A batch with its items", params=[_BATCH_ID, *_SORT_PARAMS],
        responses={"200": _json(_ref("Batch"), "the batch"),
                   "400": _error("bad sort or order"), **_NOT_FOUND},
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
        responses={"200": _json({"type": "object", "properties": {
            "id": _ID, "canceled": {"type": "integer"}}}, "how many items were canceled"),
            **_NOT_FOUND},
    )},
    "/api/v1/batches/{batch_id}/download": {"get": _op(
        "A zip of the batch's finished images", params=[_BATCH_ID],
        responses={"200": {"description": "zip archive", "content": {"application/zip": {
            "schema": {"type": "string", "format": "binary"}}}},
            "404": _error("no such batch, or no finished images yet")},
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
        "get": _op("The model's generator directions and my own", tag="directions", responses={
            "200": _json(_ref("Directions"), "directions")}),
        "post": _op("Learn a direction from examples, or save a generator direction under a "
                    "name", tag="directions", body=_DIRECTION_BODY, responses={
                        "201": _json(_ref("UserDirection"), "the new direction"),
                        "400": _error("bad name, too few or unusable examples, unknown source"),
                        "409": _error("I already have a direction of that name")}),
    },
    "/api/v1/directions/{name}": {"delete": _op(
        "Delete one of my directions", tag="directions",
        params=[{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}],
        responses={"204": {"description": "deleted"}, "404": _error("no such direction")},
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
                               "503": _error("the job queue is unavailable")}),
        "get": _op("The model's evaluations, newest first (at most 50)", tag="evaluations",
                   params=[_MODEL_NAME],
                   responses={"200": _json({"type": "object", "properties": {
                       "model": {"type": "string"},
                       "evaluations": {"type": "array", "items": _ref("Evaluation")}}},
                       "the evaluations"), "404": _error("no such model")}),
    },
    "/api/v1/models/{model_name}/evaluations/{evaluation_id}": {"get": _op(
        "One evaluation (poll until status is done or failed)", tag="evaluations",
        params=[_MODEL_NAME, {"name": "evaluation_id", "in": "path", "required": True,
                              "schema": _ID}],
        responses={"200": _json(_ref("Evaluation"), "the evaluation"),
                   "404": _error("no such model or evaluation")},
    )},
    "/api/v1/openapi.json": {"get": _op(
        "This document", tag="service", public=True,
        responses={"200": {"description": "OpenAPI 3.1 document",
                           "content": {"application/json": {}}}},
    )},
    "/api/v1/me": {"get": _op(
        "Who the token belongs to", tag="service",
        responses={"200": _json({"type": "object", "properties": {
            "id": {"type": "integer"}, "username": {"type": "string"}}}, "the user")},
    )},
}


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
            "schemas": SCHEMAS,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
    return deepcopy(doc)
