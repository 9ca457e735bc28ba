"""checkouts/create and checkouts/update: keep the Checkout row, take the SMS consent."""

from __future__ import annotations

import logging
from typing import Any

from shopify_app.models import Shop, WebhookDelivery
from shopify_app.services import flow_triggers
from shopify_app.services.checkout_consent import consent_from_checkout
from shopify_app.services.checkouts import upsert_checkout
from webhooks.handlers import handles

log = logging.getLogger(__name__)


@handles("checkouts/create", "checkouts/update")
def checkout_changed(shop: Shop | None, payload: dict[str, Any], delivery: WebhookDelivery) -> None:
    if shop is None:
        log.info("%s for a shop we do not know; ignored", delivery.topic)
        return
    checkout, applied = upsert_checkout(shop, payload)
    if checkout is None or not applied:
        # No token, or an older state than the one we hold: nothing newer to act on.
        return
    subscriber = consent_from_checkout(shop, payload, delivery)
    if subscriber is not None and checkout.subscriber_id is None:
        checkout.subscriber_id = subscriber.id
    flow_triggers.checkout_changed(shop, checkout)
