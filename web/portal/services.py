"""What the portal needs from the app (settings, database sessions, blob store, ``Batches``, the
model's catalogue entry): the app factory's ``web.extensions.Services``, looked up per request."""

from __future__ import annotations

from web.extensions import Services, services

__all__ = ["Services", "services"]
