"""What the portal's templates add to the API's JSON (``web.api.serialize``, the one serializer):
a label per status, the error as text, the quality line, the image URLs by kind and the editor's
URL. The pages' scripts fetch the same API JSON and derive the same fields (``Portal.view`` in
static/portal.js), so the first render and every update agree."""

from __future__ import annotations

from flask import request, url_for

from shared.items import quality
from shared.store.tables import Batch, Item
from web.api import serialize

STATUS_LABELS: dict[str, str] = {
    "queued": "Queued",
    "previewing": "Rendering preview",
    "preview_ready": "Preview ready",
    "finalizing": "Rendering final",
    "done": "Done",
    "failed": "Failed",
    "canceled": "Canceled",
    "running": "Running",
    "empty": "Empty",
}


def batch_label(status: str, counts: dict[str, int]) -> str:
    """A batch's status in words that tell the truth: "Done, 2 failed", "Failed", "Canceled"."""
    label = STATUS_LABELS.get(status, status)
    if status in ("done", "preview_ready", "running"):
        extra = [f"{counts[k]} {k}" for k in ("failed", "canceled") if counts.get(k)]
        if extra:
            label += ", " + ", ".join(extra)
    return label


def _number(value, digits: int) -> str:
    return f"{float(value):.{digits}f}"


def quality_text(data: dict) -> str:
    """One line on an item's quality (from its API JSON): realism scores (0..1), how the face was
    projected and at what error, and the final's consistency with the last preview."""
    parts = []
    scores = [f"{kind} {_number(r['score'], 2)}" for kind, r in (data["realism"] or {}).items() if r]
    if scores:
        parts.append("Realism " + ", ".join(scores))
    p = data.get("projection") or {}
    if p.get("method") == "synthesis":  # an exact code from a seed: no projection error
        parts.append(f"Generated from seed {p.get('seed')}")
    elif p.get("method"):
        error = f", error {_number(p['error'], 4)}" if p.get("error") is not None else ""
        parts.append(f"Projected by {p['method']}{error}")
    c = data.get("consistency") or {}
    if c.get("psnr") is not None:
        lpips = f", LPIPS {_number(c['lpips'], 3)}" if c.get("lpips") is not None else ""
        parts.append(f"Final vs preview PSNR {_number(c['psnr'], 1)} dB{lpips}")
    return " \u00b7 ".join(parts)


def view_item(data: dict) -> dict:
    """An item's API JSON plus what the templates show."""
    error = data.get("error")
    return {
        **data,
        "status_label": STATUS_LABELS.get(data["status"], data["status"]),
        "error_text": error["message"] if error else None,
        "quality_text": quality_text(data),
        "urls": {kind: data[f"{kind}_url"] for kind in serialize.IMAGE_KINDS},
        "editor_url": url_for("portal.item_page", item_id=data["id"]),
    }


def item_view(item: Item) -> dict:
    return view_item(serialize.item_dict(item, item.batch))


def batch_view(batch: Batch, sort: str) -> dict:
    data = serialize.batch_dict(batch, sort)
    items = [view_item(i) for i in data["items"]]
    return {
        **data,
        "items": items,
        "sort": sort,
        "status_label": batch_label(data["status"], data["counts"]),
        "finals": sum(1 for i in items if i["status"] == "done" and i["final_url"]),
        "total": len(items),
    }


def portal_sort() -> str:
    """The batch page's ``?sort=``: a key of ``SORT_ORDERS``; anything else is upload order."""
    sort = request.args.get("sort", "position")
    return sort if sort in quality.SORT_ORDERS else "position"
