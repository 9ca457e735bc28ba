"""Periodic job: renew refresh tokens before their 90 days run out.

A shop that only receives webhooks never calls the Admin API, so nothing else would refresh its
token; after 90 days it could not be reached any more without the merchant opening the app.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import select

from shopify_app.auth.tokens import REFRESH_TOKEN_RENEW_WINDOW, refresh_if_expiring
from shopify_app.extensions import db
from shopify_app.logs import log_context
from shopify_app.models import Shop
from shopify_app.models.base import utcnow
from shopify_app.shopify.errors import ShopifyError

log = logging.getLogger(__name__)


def refresh_expiring_tokens(window_days: int | None = None) -> dict[str, int]:
    """Refresh every installed shop whose refresh token ends within the window.

    One shop's failure never stops the others; a refused refresh token marks that shop as
    needing re-authentication (see auth/tokens.py). Returns counts for the job result."""
    window = timedelta(days=window_days) if window_days is not None else REFRESH_TOKEN_RENEW_WINDOW
    cutoff = utcnow() + window
    due = list(
        db.session.execute(
            select(Shop.id, Shop.domain)
            .where(
                Shop.installed_at.is_not(None),
                Shop.uninstalled_at.is_(None),
                Shop.refresh_token_enc.is_not(None),
                Shop.refresh_token_expires_at < cutoff,
            )
            .order_by(Shop.refresh_token_expires_at)
        )
    )
    counts = {"due": len(due), "refreshed": 0, "failed": 0}
    for shop_id, domain in due:
        with log_context(shop=domain):
            try:
                if refresh_if_expiring(shop_id, window):
                    counts["refreshed"] += 1
            except ShopifyError as exc:
                counts["failed"] += 1
                log.warning("token renewal for %s failed: %s", domain, type(exc).__name__)
            finally:
                db.session.rollback()  # nothing pending; drop the snapshot before the next shop
    log.info("token renewal: %s", counts)
    return counts
