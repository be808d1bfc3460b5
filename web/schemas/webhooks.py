"""Webhook deliveries as the API shows them: one event to one URL, its tries and last answer."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from shared.items.webhooks import DELIVERED, FAILED, PENDING
from web.schemas.common import DateTime, Id, Url


class DeliveredEvent(BaseModel):
    id: str = Field(description="the webhook-id header: the same on every try")
    type: str = Field(description="item.preview_ready, item.done, item.failed, batch.completed ...")
    item_id: Id | None
    created_at: DateTime


class WebhookDelivery(BaseModel):
    """pending: waiting for its next try (next_attempt_at); delivered: a 2xx came back;
    failed: out of tries, or the URL can never be delivered to (last_error says why)."""

    id: int
    batch_id: Id
    event: DeliveredEvent
    url: Url
    status: Literal[PENDING, DELIVERED, FAILED]
    attempts: int = Field(ge=0, description="tries so far")
    last_status_code: int | None = Field(description="the HTTP status of the last try; null: "
                                         "not tried yet, or no answer (see last_error)")
    last_error: str | None = Field(description="why the last try failed; null after a 2xx")
    last_attempt_at: DateTime | None
    next_attempt_at: DateTime | None = Field(description="when the next try is due; null "
                                             "unless pending")
    delivered_at: DateTime | None
    created_at: DateTime


class WebhookDeliveryPage(BaseModel):
    deliveries: list[WebhookDelivery] = Field(description="newest first")
    page: int
    per_page: int
    total: int
    pages: int
