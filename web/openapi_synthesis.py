"""OpenAPI pieces of synthesis batches and the models list (``web.api.synthesis``): the JSON
request body of ``POST /api/v1/batches`` and the ``GET /api/v1/models`` answer. ``web.openapi``
merges them into the document."""

from __future__ import annotations

from shared.batch_names import MAX_NAME_CHARS
from shared.synthesis import MAX_SEED
from web.openapi_schemas import ref

SEED = {"type": "integer", "minimum": 0, "maximum": MAX_SEED,
        "description": "NVIDIA's convention: z = numpy.random.RandomState(seed).randn(1, 512)"}

SCHEMAS: dict = {
    "SynthesisRequest": {
        "type": "object", "required": ["synthesis"], "additionalProperties": False,
        "description": "new images from seeds (no photos): one item per seed; previews, edits, "
                       "finals and the zip as for photos. The same request gives the same images",
        "properties": {
            "synthesis": {"oneOf": [
                {"type": "object", "required": ["seeds"], "additionalProperties": False,
                 "properties": {"seeds": {"type": "array", "minItems": 1, "items": SEED,
                                          "description": "at most ANYCOST_MAX_SEEDS"}}},
                {"type": "object", "required": ["count"], "additionalProperties": False,
                 "properties": {"count": {"type": "integer", "minimum": 1, "description":
                                          "the service picks this many seeds (reported)"}}},
            ]},
            "truncation": {"type": "number", "minimum": 0, "maximum": 2, "default": 0.7,
                           "description": "psi: w_avg + psi * (w - w_avg); 0 gives w_avg"},
            "mix": {"type": "object", "required": ["seed"], "additionalProperties": False,
                    "description": "style mixing: W+ slots from from_slot on come from seed",
                    "properties": {"seed": SEED, "from_slot": {"type": "integer", "minimum": 0}}},
            "model": {"type": "string", "description": "a config with a live worker "
                      "(GET /api/v1/models); default: the service's ANYCOST_MODEL"},
            "recipe": {"type": "object", "description": "as for photos (edits, preview, final, "
                       "auto_finalize); output is always crop"},
            "webhook_url": {"type": "string", "format": "uri"},
            "name": {"type": "string", "maxLength": MAX_NAME_CHARS,
                     "description": "the batch's name (as for photos)"},
        },
    },
    "SynthesisCreated": {
        "type": "object", "required": ["id", "status", "items", "seeds", "model"],
        "properties": {
            "id": {"type": "string"}, "name": {"type": ["string", "null"]},
            "status": {"type": "string"},
            "url": {"type": "string", "format": "uri"}, "model": {"type": "string"},
            "seeds": {"type": "array", "items": SEED},
            "items": {"type": "array", "items": {
                "type": "object", "required": ["id", "filename", "status", "seed"],
                "properties": {"id": {"type": "string"}, "filename": {"type": "string"},
                               "status": {"type": "string"}, "seed": SEED}}},
        },
    },
    "ServedModel": {
        "type": "object",
        "required": ["name", "resolution", "pretrained", "files", "costs", "default"],
        "properties": {
            "name": {"type": "string"}, "default": {"type": "boolean"},
            "resolution": {"type": "integer"}, "pretrained": {"type": "boolean"},
            "description": {"type": "string"},
            "files": {"type": "object", "description": "which files this config has installed",
                      "properties": {k: {"type": "boolean"} for k in
                                     ("encoder", "boundary", "discriminator", "directions")}},
            "directions": {"type": "array", "items": {"type": "string"}},
            "photos": {"type": "boolean", "description": "photo uploads go to this config"},
            "default_costs": {"type": "object"},
            "costs": {"type": "array", "items": {"type": "object", "properties": {
                "channels": {"type": "number"}, "resolution": {"type": "integer"},
                "macs": {"type": "integer"}, "relative": {"type": "number"}}}},
        },
    },
    "ServedModels": {
        "type": "object", "required": ["models", "default"],
        "properties": {"models": {"type": "array", "items": ref("ServedModel")},
                       "default": {"type": "string"}},
    },
}
