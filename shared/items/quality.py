"""Per-item quality as the API and the portal show it, and sorting a batch's items by it.

Three measures, recorded by the worker (``worker.render.quality``, ``worker.render.projection``):
- realism: the discriminator's logit ``l`` for the latest preview and for the final, stored as
  ``items.preview_realism`` / ``final_realism`` (NULL when the model has no discriminator); the
  0..1 score is ``sigmoid(l)``.
- projection: how the face got its W+ code (``encoder``, ``encoder+refine``, ``w_projector``
  (NVIDIA's projector, optionally ``+wplus``) or ``optimisation`` (a W+ fit))
  and the reconstruction error (MSE in [-1, 1] units at ``resolution``).
- consistency: how close the final came to the item's last preview (PSNR in dB, LPIPS when its
  weights are installed).

Pure Python: the web side imports it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

#: How a face was projected into W+.
PROJECTION_METHODS = ("encoder", "encoder+refine", "e4e", "e4e+refine", "psp", "psp+refine",
                      "optimisation", "w_projector", "w_projector+wplus", "synthesis")
#: Accepted ``sort`` values for a batch's items and their default order.
SORT_ORDERS = {"position": "asc", "realism": "desc"}
ORDERS = ("asc", "desc")


def sigmoid(logit: float) -> float:
    """The 0..1 realism score of a discriminator logit (stable for large |logit|)."""
    if logit >= 0:
        return 1.0 / (1.0 + math.exp(-logit))
    e = math.exp(logit)
    return e / (1.0 + e)


def realism(logit: float | None) -> dict | None:
    """``{"logit", "score"}`` for a stored logit, None when there is none."""
    if logit is None or not math.isfinite(logit):
        return None
    return {"logit": round(float(logit), 4), "score": round(sigmoid(float(logit)), 4)}


def item_realism(item) -> dict:
    """An item's realism: ``{"preview": {...} | None, "final": {...} | None}``."""
    return {"preview": realism(item.preview_realism), "final": realism(item.final_realism)}


def realism_logit(item) -> float | None:
    """The logit a batch sorts by: the final's once there is one, else the latest preview's."""
    return item.final_realism if item.final_realism is not None else item.preview_realism


def sort_items(items: Iterable, sort: str = "position", order: str | None = None) -> list:
    """A batch's items sorted by ``sort`` (a key of SORT_ORDERS) in ``order`` (asc/desc, default
    per key: most realistic first). Items without a realism score come last, by position."""
    if sort not in SORT_ORDERS:
        raise ValueError(f"sort must be one of {', '.join(SORT_ORDERS)}")
    order = order or SORT_ORDERS[sort]
    if order not in ORDERS:
        raise ValueError(f"order must be one of {', '.join(ORDERS)}")
    items = sorted(items, key=lambda i: i.position)
    if sort == "position":
        return items[::-1] if order == "desc" else items
    scored = [i for i in items if realism_logit(i) is not None]
    unscored = [i for i in items if realism_logit(i) is None]
    # sorted() is stable: equal scores keep their position order.
    scored.sort(key=realism_logit, reverse=order == "desc")
    return scored + unscored
