"""The OpenAPI document's ``components/schemas``, generated from the Pydantic models
(``web.schemas``, ``shared.recipe.schema``), and the small helpers ``web.openapi`` writes its
paths with."""

from __future__ import annotations

from functools import lru_cache

from pydantic.json_schema import GenerateJsonSchema, models_json_schema

from web.schemas import COMPONENTS
from web.schemas.common import ID_PATTERN

REF_TEMPLATE = "#/components/schemas/{model}"
ID = {"type": "string", "pattern": ID_PATTERN}


class OpenApiJsonSchema(GenerateJsonSchema):
    """Pydantic's JSON Schema (2020-12, as OpenAPI 3.1 wants it) without a title on every
    field, and without ``"default": null`` on a field that may be left out but is never null."""

    def field_title_should_be_set(self, schema) -> bool:
        return False

    def default_schema(self, schema):
        json_schema = super().default_schema(schema)
        if json_schema.get("default", ...) is None and not _allows_null(json_schema):
            del json_schema["default"]
        return json_schema


def _allows_null(json_schema: dict) -> bool:
    kinds = json_schema.get("type")
    return (kinds == "null" or (isinstance(kinds, list) and "null" in kinds)
            or any(_allows_null(s) for s in json_schema.get("anyOf", ())))


@lru_cache(maxsize=1)
def _generated() -> dict:
    _, top = models_json_schema([(model, "validation") for model in COMPONENTS],
                                ref_template=REF_TEMPLATE, schema_generator=OpenApiJsonSchema)
    return top["$defs"]


def component_schemas() -> dict:
    """Every model's JSON Schema by name, the models they reference included (a fresh copy is
    made by ``web.openapi.document``)."""
    return _generated()


def ref(name: str) -> dict:
    if name not in _generated():
        raise KeyError(f"no component schema {name!r}")
    return {"$ref": REF_TEMPLATE.format(model=name)}


def json_body(schema: dict, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def error(description: str) -> dict:
    return json_body(ref("Error"), description)
