"""The mandatory privacy topics: customers/data_request, customers/redact, shop/redact."""

from __future__ import annotations

import logging
from typing import Any

from shopify_app.models import Shop, WebhookDelivery
from shopify_app.services.privacy import customer_data_request, redact_customer, redact_shop
from webhooks.handlers import handles

log = logging.getLogger(__name__)


@handles("customers/data_request")
def customers_data_request(
    shop: Shop | None, payload: dict[str, Any], delivery: WebhookDelivery
) -> None:
    if shop is None:
        # The shop's data is already gone (shop/redact): there is nothing to report.
        log.info("customers/data_request for a shop we hold no data for")
        return
    customer_data_request(shop, payload)


@handles("customers/redact")
def customers_redact(shop: Shop | None, payload: dict[str, Any], delivery: WebhookDelivery) -> None:
    if shop is None:
        log.info("customers/redact for a shop we hold no data for")
        return
    redact_customer(shop, payload, delivery)


@handles("shop/redact")
def shop_redact(shop: Shop | None, payload: dict[str, Any], delivery: WebhookDelivery) -> None:
    redact_shop(delivery.shop_domain, delivery.triggered_at)
