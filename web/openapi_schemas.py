"""The schemas (``components/schemas``) of the OpenAPI document and the small helpers that
write them; web/openapi.py describes the paths with them."""

from __future__ import annotations

from shared.errors import ErrorCode, RequestErrorCode
from shared.item_status import BATCH_STATUSES, ItemStatus
from shared.quality import PROJECTION_METHODS
from shared.recipe import CHANNEL_RATIOS, FACE_MODES, MAX_REFINE_STEPS, OUTPUTS


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
# Enums come from the code that defines them, never copied.
STATUS = {"type": "string", "enum": [s.value for s in ItemStatus]}
BATCH_STATUS = {"type": "string", "enum": list(BATCH_STATUSES)}
ERROR_CODES = sorted({c.value for c in ErrorCode} | {c.value for c in RequestErrorCode})

SCHEMAS: dict = {
    "Error": {
        "type": "object", "required": ["error"],
        "properties": {"error": {
            "type": "object", "required": ["code", "message"],
            "properties": {
                "code": {"type": "string", "enum": ERROR_CODES},
                "message": {"type": "string"},
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
            "channels": {"type": "number", "enum": list(CHANNEL_RATIOS)},
            "resolution": {"type": "integer", "description": "a power of two up to the model's"},
        },
    },
    "Recipe": {
        "type": "object",
        "properties": {
            "edits": ref("Edits"), "preview": ref("Cost"), "final": ref("Cost"),
            "auto_finalize": {"type": "boolean"},
            "output": {"type": "string", "enum": list(OUTPUTS)},
            "faces": {"type": "string", "enum": list(FACE_MODES)},
            "refine_steps": {"type": "integer", "minimum": 0, "maximum": MAX_REFINE_STEPS},
            "keep_format": {"type": "boolean", "default": False, "description":
                            "finals in the upload's format (JPEG, PNG, WebP; others as PNG) "
                            "instead of JPEG (photo) or PNG (crop); no effect on synthesised "
                            "items"},
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
            "realism": {
                "type": "object", "description": "null inside when the model has no "
                "discriminator or the image is not rendered yet",
                "properties": {"preview": ref("Realism"), "final": ref("Realism")},
            },
            "projection": ref("Projection"), "consistency": ref("Consistency"),
            "seed": nullable({"type": "integer", "description": "a synthesised item's seed"}),
            "synthesis": nullable({"type": "object", "description": "a synthesised item's "
                                   "spec: seed, truncation, mix_seed, mix_from_slot"}),
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
            "id": ID, "name": nullable({"type": "string", "description": "the owner's name for it"}),
            "status": BATCH_STATUS, "url": URL,
            "items": {"type": "array", "items": ref("ItemRef")},
        },
    },
    "Batch": {
        "type": "object", "required": ["id", "status", "progress", "counts", "items"],
        "properties": {
            "id": ID, "name": nullable({"type": "string", "description": "the owner's name for it"}),
            "status": BATCH_STATUS,
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
            "id": ID, "name": nullable({"type": "string", "description": "the owner's name for it"}),
            "status": BATCH_STATUS, "progress": {"type": "number"},
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
            "directions": {"type": "array", "items": ref("GeneratorDirection")},
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
    "Realism": nullable({
        "type": "object", "required": ["logit", "score"],
        "description": "the discriminator's verdict on the rendered face(s): its logit (the "
                       "mean over the item's faces) and sigmoid(logit) as a 0..1 score",
        "properties": {"logit": {"type": "number"},
                       "score": {"type": "number", "minimum": 0, "maximum": 1}},
    }),
    "Projection": nullable({
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
    "Consistency": nullable({
        "type": "object", "required": ["psnr"],
        "description": "how close the final came to the item's last preview, compared at the "
                       "preview's resolution: PSNR (dB, 100 = identical) and LPIPS (null when "
                       "the LPIPS weights are not installed on the worker)",
        "properties": {"psnr": {"type": "number"}, "lpips": nullable({"type": "number"}),
                       "resolution": {"type": "integer"}},
    }),
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
            "source": nullable({"type": "string"}),
            "slots": {"type": "array", "items": {"type": "integer"}},
            "gain": {"type": "number"}, "accuracy": {"type": "number"},
            "margin": {"type": "number"},
            "positive": {"type": "array", "items": ID},
            "negative": {"type": "array", "items": ID},
            "created_at": {"type": "string", "format": "date-time"},
        },
    },
    "Directions": {
        "type": "object",
        "properties": {
            "model": {"type": "string"},
            "generator": {"type": "array", "items": ref("GeneratorDirection")},
            "user": {"type": "array", "items": ref("UserDirection")},
        },
    },
    "Strip": {
        "type": "object", "required": ["id", "status", "values"],
        "description": "previews of one item along one direction, frames side by side",
        "properties": {
            "id": ID, "item_id": ID, "direction": {"type": "string"},
            "values": {"type": "array", "items": {"type": "number"}},
            "cost": ref("Cost"),
            "status": {"type": "string", "enum": ["queued", "done", "failed"]},
            "error": nullable({"type": "string"}), "url": URL,
            "image_url": nullable(URL),
        },
    },
    "EvaluationRequest": {
        "type": "object", "required": ["kind", "n"], "additionalProperties": False,
        "properties": {
            "kind": {"type": "string", "enum": ["fid", "ppl", "consistency"]},
            "n": {"type": "integer", "minimum": 1,
                  "description": "samples per cost (FID: at least 2; at most ANYCOST_EVAL_MAX_N)"},
            "channels": {"type": "number", "enum": list(CHANNEL_RATIOS),
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
            "id": ID, "model": ref("ModelRef"),
            "kind": {"type": "string", "enum": ["fid", "ppl", "consistency"]},
            "status": {"type": "string", "enum": ["queued", "running", "done", "failed"]},
            "params": {"type": "object", "description": "the request, defaults filled in"},
            "result": nullable({
                "type": "object",
                "description": "metric, n, seed, settings used (data set, Inception sha256, "
                               "LPIPS net ...) and `results`: one entry per cost",
                "properties": {"results": {"type": "array", "items": {"type": "object"}}},
            }),
            "error": nullable({
                "type": "object",
                "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
            }),
            "worker": nullable({"type": "string"}), "attempts": {"type": "integer"},
            **{f"{k}_at": nullable({"type": "string", "format": "date-time"})
               for k in ("created", "started", "finished")},
            "url": URL,
        },
    },
}
