"""Recompute a shop's attribution after the merchant changed the windows."""

from __future__ import annotations

from typing import Any

from shopify_app.extensions import db
from shopify_app.logs import log_context
from shopify_app.models import Shop
from shopify_app.services.recompute import run_recompute, write_status


def recompute_shop(shop_id: int) -> dict[str, Any]:
    shop = db.session.get(Shop, shop_id)
    if shop is None:
        return write_status(shop_id, status="failed", error="shop not found")
    with log_context(shop=shop.domain):
        try:
            return run_recompute(shop_id)
        except Exception:
            db.session.rollback()
            raise
