"""app/uninstalled and app/scopes_update."""

from __future__ import annotations

import logging
from typing import Any

from shopify_app.models import Shop, WebhookDelivery, utcnow
from shopify_app.services.shop_lifecycle import uninstall, update_scopes
from shopify_app.services.shopify_payloads import MalformedPayload
from webhooks.handlers import handles

log = logging.getLogger(__name__)


@handles("app/uninstalled")
def app_uninstalled(shop: Shop | None, payload: dict[str, Any], delivery: WebhookDelivery) -> None:
    if shop is None:
        log.info("app/uninstalled for a shop we do not know; nothing to stop")
        return
    uninstall(shop, delivery.triggered_at or utcnow())


@handles("app/scopes_update")
def app_scopes_update(
    shop: Shop | None, payload: dict[str, Any], delivery: WebhookDelivery
) -> None:
    if shop is None:
        log.info("app/scopes_update for a shop we do not know; ignored")
        return
    current = payload.get("current")
    if not isinstance(current, list):
        raise MalformedPayload("current is not a list of scopes")
    update_scopes(shop, (str(s) for s in current))
