"""The schemas (``components/schemas``) of the OpenAPI document and the small helpers that
write them; web/openapi.py describes the paths with them."""

from __future__ import annotations


def ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: dict) -> dict:
    return {"oneOf": [schema, {"type": "null"}]}


def json_body(schema: dict, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def error(description: str) -> dict:
    return json_body(ref("Error"), description)


ID = {"type": "string", "pattern": "^[0-9a-f]{32}$"}
URL = {"type": "string", "format": "uri"}
STATUS = {"type": "string", "enum": [
    "queued", "previewing", "preview_ready", "finalizing", "done", "failed", "canceled",
]}
BATCH_STATUS = {"type": "string", "enum": [
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
        "description": "attribute (alias, CelebA name or boundary key) -> value in [-1, 1]",
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
            "edits": ref("Edits"), "preview": ref("Cost"), "final": ref("Cost"),
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
        "properties": {"id": ID, "filename": {"type": "string"}, "status": STATUS},
    },
    "Item": {
        "type": "object",
        "required": ["id", "filename", "status", "error", "preview_url", "final_url"],
        "properties": {
            "id": ID, "batch_id": ID, "position": {"type": "integer"},
            "filename": {"type": "string"}, "status": STATUS,
            "error": nullable({
                "type": "object",
                "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
            }),
            **{f"{k}_url": nullable(URL) for k in ("original", "projected", "preview", "final")},
            "edits": ref("Edits"), "edit_version": {"type": "integer"},
            "attempts": {"type": "integer"},
            "timings": {"type": "object", "additionalProperties": {"type": "number"}},
            "preview_cost": ref("Cost"), "final_cost": ref("Cost"), "model": ref("ModelRef"),
            "created_at": {"type": "string", "format": "date-time"},
            "updated_at": {"type": "string", "format": "date-time"},
        },
    },
    "Counts": {"type": "object", "additionalProperties": {"type": "integer"}},
    "Token": {
        "type": "object", "required": ["id", "prefix", "created_at", "live"],
        "properties": {
            "id": {"type": "integer"}, "name": {"type": ["string", "null"]},
            "prefix": {"type": "string"},
            "created_at": {"type": "string", "format": "date-time"},
            "last_used_at": nullable({"type": "string", "format": "date-time"}),
            "expires_at": nullable({"type": "string", "format": "date-time"}),
            "live": {"type": "boolean", "description": "neither expired nor revoked"},
            "current": {"type": "boolean", "description": "the token of this request"},
            "token": {"type": "string", "description": "the token itself: only when created"},
        },
    },
    "BatchCreated": {
        "type": "object", "required": ["id", "status", "items"],
        "properties": {
            "id": ID, "status": BATCH_STATUS, "url": URL,
            "items": {"type": "array", "items": ref("ItemRef")},
        },
    },
    "Batch": {
        "type": "object", "required": ["id", "status", "progress", "counts", "items"],
        "properties": {
            "id": ID, "status": BATCH_STATUS,
            "progress": {"type": "number", "minimum": 0, "maximum": 1},
            "counts": ref("Counts"), "created_at": {"type": "string", "format": "date-time"},
            "canceled_at": nullable({"type": "string", "format": "date-time"}),
            "recipe": ref("Recipe"), "model": ref("ModelRef"), "download_url": URL,
            "items": {"type": "array", "items": ref("Item")},
        },
    },
    "BatchSummary": {
        "type": "object",
        "properties": {
            "id": ID, "status": BATCH_STATUS, "progress": {"type": "number"},
            "counts": ref("Counts"), "item_count": {"type": "integer"},
            "created_at": {"type": "string", "format": "date-time"}, "model": ref("ModelRef"),
            "url": URL,
        },
    },
    "BatchPage": {
        "type": "object", "required": ["batches", "page", "per_page", "total", "pages"],
        "properties": {
            "batches": {"type": "array", "items": ref("BatchSummary")},
            "page": {"type": "integer"}, "per_page": {"type": "integer"},
            "total": {"type": "integer"}, "pages": {"type": "integer"},
        },
    },
    "Accepted": {
        "type": "object",
        "properties": {
            "id": ID, "status": STATUS, "queued": {"type": "integer"},
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
                "preview": ref("Cost"), "final": ref("Cost"),
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
}
