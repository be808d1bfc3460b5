"""Helpers for the API tests: images, uploads, reading the Celery messages waiting in Redis."""

from __future__ import annotations

import base64
import io
import json

import redis
from PIL import Image


def image_bytes(fmt: str = "PNG", size: int = 16, color=(200, 120, 80)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (size, size), color).save(out, format=fmt)
    return out.getvalue()


def upload(client, headers: dict, files: list[tuple[bytes, str]], recipe=None):
    """POST /api/v1/batches with (bytes, filename) pairs and a recipe (dict or raw text)."""
    data: dict = {"files": [(io.BytesIO(b), name) for b, name in files]}
    if recipe is not None:
        data["recipe"] = recipe if isinstance(recipe, str) else json.dumps(recipe)
    return client.post("/api/v1/batches", data=data, headers=headers,
                       content_type="multipart/form-data")


def queued_messages(redis_url: str, queue: str) -> list[tuple[str, list]]:
    """(task name, args[0]) of each kombu message waiting in the Redis list ``queue``."""
    client = redis.Redis.from_url(redis_url)
    out = []
    for raw in reversed(client.lrange(queue, 0, -1)):  # LPUSHed: oldest last
        message = json.loads(raw)
        body = json.loads(base64.b64decode(message["body"]))
        out.append((message["headers"]["task"], body[0][0]))
    client.close()
    return out
