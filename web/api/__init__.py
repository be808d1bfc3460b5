"""REST API v1 (``/api/v1``): the contract in docs/ARCHITECTURE.md, described by the OpenAPI document.

Routes live in ``batches``, ``items``, ``directions``, ``evaluations``, ``tokens``,
``webhooks`` and ``meta``; ``web/openapi.py``
describes every one of them.
Every route needs a token except the public descriptions (``PUBLIC_ENDPOINTS``).
"""

from __future__ import annotations

# Route modules register themselves on ``bp`` when imported.
from web.api import (  # noqa: E402, F401
    batches,
    directions,
    evaluations,
    events,
    items,
    meta,
    synthesis,
    tokens,
    webhooks,
)
from web.api.blueprint import PUBLIC_ENDPOINTS, bp, current_user  # noqa: F401  (the API's surface)
