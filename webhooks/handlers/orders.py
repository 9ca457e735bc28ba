"""orders/create, orders/updated, orders/paid and refunds/create.

Each runs inside the delivery's job, which commits. The order services are idempotent, so a
redelivered or out-of-order webhook changes nothing it should not.
"""

from __future__ import annotations

import logging
from typing import Any

from shopify_app.models import Shop, WebhookDelivery
from shopify_app.services import flow_triggers
from shopify_app.services.checkout_consent import consent_from_order
from shopify_app.services.orders import ingest_order, ingest_refund
from shopify_app.services.shopify_payloads import required_id
from webhooks.handlers import handles

log = logging.getLogger(__name__)


@handles("orders/create", "orders/updated", "orders/paid")
def order_changed(shop: Shop | None, payload: dict[str, Any], delivery: WebhookDelivery) -> None:
    if shop is None:
        log.info("%s for a shop we do not know; ignored", delivery.topic)
        return
    required_id(payload, "id")  # fail on the missing id, not on whatever trips over it later
    # Consent ticked at checkout first: the buyer may become a subscriber with this order.
    buyer = consent_from_order(shop, payload, delivery)
    # The hook point for further order services (flows: an order ends abandoned-checkout runs).
    order = ingest_order(shop, payload, triggered_at=delivery.triggered_at, buyer=buyer)
    flow_triggers.order_arrived(shop, order, payload)


@handles("refunds/create")
def refund_created(shop: Shop | None, payload: dict[str, Any], delivery: WebhookDelivery) -> None:
    if shop is None:
        log.info("refunds/create for a shop we do not know; ignored")
        return
    required_id(payload, "id")
    required_id(payload, "order_id")
    ingest_refund(shop, payload)
