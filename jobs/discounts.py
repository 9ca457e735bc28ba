"""Discount jobs: prepare a campaign's codes, and retire expired discounts (periodic)."""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import Any

from shopify_app.extensions import db
from shopify_app.logs import log_context
from shopify_app.models import Campaign, Shop
from shopify_app.services import discounts

log = logging.getLogger(__name__)


def prepare_campaign_discount(campaign_id: int) -> dict[str, Any]:
    """Create a campaign's codes in Shopify; safe to run again (it resumes)."""
    campaign = db.session.get(Campaign, campaign_id)
    shop = db.session.get(Shop, campaign.shop_id) if campaign else None
    with log_context(shop=shop.domain if shop else None):
        result = discounts.prepare_campaign_discount(campaign_id)
    return {**asdict(result), "ok": result.ok}


def cleanup_expired() -> dict[str, int]:
    """Deactivate or delete, in Shopify and here, discounts whose end has passed and those of
    campaigns that ended before their first text."""
    return {"retired": discounts.cleanup_expired()}
