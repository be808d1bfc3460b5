"""Webhook routes: the caller's deliveries (what was sent where, tries, the last answer). The
signing secret is made in ``web.api.tokens``; sending is ``shared.items.webhooks``."""

from __future__ import annotations

from flask import request

from shared.commands.webhook_deliveries import list_deliveries
from shared.items.webhooks import PENDING
from shared.store.tables import Event, WebhookDelivery
from web.api.blueprint import bp, current_user
from web.api.params import int_param
from web.api.serialize import iso
from web.extensions import db

MAX_PER_PAGE = 100


def delivery_dict(delivery: WebhookDelivery, event: Event) -> dict:
    return {
        "id": delivery.id, "batch_id": event.batch_id,
        "event": {"id": event.public_id, "type": event.kind, "item_id": event.item_id,
                  "created_at": iso(event.created_at)},
        "url": delivery.url, "status": delivery.status, "attempts": delivery.attempts,
        "last_status_code": delivery.last_status_code, "last_error": delivery.last_error,
        "last_attempt_at": iso(delivery.last_attempt_at),
        "next_attempt_at": iso(delivery.next_attempt_at) if delivery.status == PENDING else None,
        "delivered_at": iso(delivery.delivered_at), "created_at": iso(delivery.created_at),
    }


@bp.get("/webhooks/deliveries")
def list_webhook_deliveries():
    """My batches' deliveries, newest first; ``?batch=<id>`` only that batch's."""
    user = current_user()
    page = int_param(request.args.get("page"), "page", 1, 1_000_000, 1)
    per_page = int_param(request.args.get("per_page"), "per_page", 1, MAX_PER_PAGE, 20)
    batch_id = request.args.get("batch") or None
    rows, total = list_deliveries(db(), user.id, batch_id, page, per_page)
    return {"deliveries": [delivery_dict(d, e) for d, e in rows], "page": page,
            "per_page": per_page, "total": total, "pages": (total + per_page - 1) // per_page}
