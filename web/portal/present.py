"""What the portal's templates add to the API's JSON (``web.api.serialize``, the one serializer):
a label per status, the error as text, the quality line, the progress in words, the image URLs
by kind and the editor's URL. The pages' scripts fetch the same API JSON and derive the same
fields (``Portal.view`` in static/portal.js) from the labels and image kinds defined here, which
every page carries (``page_config``), so the first render and every update agree."""

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
#: Statuses in which an item has a preview to show (the batch page counts them as ready).
PREVIEW_SHOWN = ("preview_ready", "finalizing", "done")


def batch_label(status: str, counts: dict[str, int]) -> str:
    """A batch's status in words that tell the truth: "Done, 2 failed", "Failed", "Canceled"."""
    label = STATUS_LABELS.get(status, status)
    if status in ("done", "preview_ready", "running"):
        extra = [f"{counts[k]} {k}" for k in ("failed", "canceled") if counts.get(k)]
        if extra:
            label += ", " + ", ".join(extra)
    return label


def progress_text(counts: dict[str, int]) -> str:
    """A batch's progress in words: "Previews 2/2 ready · finals 0/2" (then failed, canceled).
    The same words as ``Portal.progressText`` in static/portal.js."""
    total = sum(counts.values())
    if not total:
        return "No photos"
    previews = sum(counts.get(k, 0) for k in PREVIEW_SHOWN)
    parts = [f"Previews {previews}/{total} ready", f"finals {counts.get('done', 0)}/{total}"]
    parts += [f"{counts[k]} {k}" for k in ("failed", "canceled") if counts.get(k)]
    return " \u00b7 ".join(parts)


def page_config() -> dict:
    """What every page's scripts read from the page (``#portal-config``): the status labels, the
    image kinds, which statuses have a preview, and the URLs they call (``{id}`` stands for an
    id), so no script carries its own copy or a hard-coded ``/api/v1``."""
    def template(endpoint: str, **ids: str) -> str:
        return url_for(endpoint, **{k: "__id__" for k in ids}).replace("__id__", "{id}")

    return {
        "status_labels": STATUS_LABELS,
        "image_kinds": list(serialize.IMAGE_KINDS),
        "preview_shown": list(PREVIEW_SHOWN),
        "urls": {
            "models": url_for("api.list_models"),
            "batches": url_for("api.create_batch"),
            "directions": url_for("api.list_directions"),
            "batch": template("api.get_batch", batch_id="x"),
            "batch_events": template("api.batch_events", batch_id="x"),
            "item": template("api.get_item", item_id="x"),
            "batch_page": template("portal.batch_page", batch_id="x"),
            "item_page": template("portal.item_page", item_id="x"),
        },
    }


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
        "progress_text": progress_text(data["counts"]),
        "finals": sum(1 for i in items if i["status"] == "done" and i["final_url"]),
        "previews": sum(1 for i in items if i["status"] in PREVIEW_SHOWN),
        "total": len(items),
    }


def portal_sort() -> str:
    """The batch page's ``?sort=``: a key of ``SORT_ORDERS``; anything else is upload order."""
    sort = request.args.get("sort", "position")
    return sort if sort in quality.SORT_ORDERS else "position"
