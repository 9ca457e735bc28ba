"""customers/create, customers/update, customers_marketing_consent/update: SMS consent given or
withdrawn in Shopify (checkout, customer account, admin) and the customer id link."""

from __future__ import annotations

import logging
from typing import Any

from shopify_app.models import Shop, WebhookDelivery
from shopify_app.services.checkout_consent import consent_from_customer
from webhooks.handlers import handles

log = logging.getLogger(__name__)


@handles("customers/create", "customers/update", "customers_marketing_consent/update")
def customer_consent(shop: Shop | None, payload: dict[str, Any], delivery: WebhookDelivery) -> None:
    if shop is None:
        log.info("%s for a shop we do not know; ignored", delivery.topic)
        return
    consent_from_customer(shop, payload, delivery)
