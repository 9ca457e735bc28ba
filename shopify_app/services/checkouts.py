"""Checkouts seen through checkouts/create|update: one row per token, newest state wins."""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import IntegrityError

from shopify_app.extensions import db
from shopify_app.models import Checkout, Shop
from shopify_app.services.shopify_payloads import (
    address_country,
    first_valid_phone,
    int_id,
    money,
    obj,
    parse_time,
)


def _find(shop_id: int, token: str) -> Checkout | None:
    return db.session.scalars(Checkout.for_shop(shop_id).where(Checkout.token == token)).first()


def upsert_checkout(shop: Shop, payload: dict[str, Any]) -> tuple[Checkout | None, bool]:
    """Insert or update the checkout keyed by its token. Returns (row, applied): `applied` is
    False when the payload is older than what the row already holds (webhooks arrive out of
    order) — the row is then left as it was. (None, False) when the payload has no token."""
    token = payload.get("token")
    if not token:
        return None, False
    updated_at = parse_time(payload.get("updated_at")) or parse_time(payload.get("created_at"))
    row = _find(shop.id, str(token))
    if row is None:
        candidate = Checkout(shop_id=shop.id, token=str(token))
        try:
            with db.session.begin_nested():
                db.session.add(candidate)
            row = candidate
        except IntegrityError:  # the other topic's job inserted it a moment ago
            row = _find(shop.id, str(token))
            if row is None:
                raise
    elif (
        row.shopify_updated_at is not None
        and updated_at is not None
        and updated_at < row.shopify_updated_at
    ):
        return row, False

    customer = payload.get("customer") if isinstance(payload.get("customer"), dict) else {}
    region = address_country(payload) or shop.country
    phone = first_valid_phone(
        [
            payload.get("sms_marketing_phone"),
            payload.get("phone"),
            customer.get("phone"),
            obj(payload, "billing_address").get("phone"),
            obj(payload, "shipping_address").get("phone"),
        ],
        region,
    )
    row.customer_id = int_id(customer.get("id")) or row.customer_id
    row.phone = phone.e164 if phone is not None else row.phone
    row.email = payload.get("email") or customer.get("email") or row.email
    row.recovery_url = payload.get("abandoned_checkout_url") or row.recovery_url
    if payload.get("total_price") not in (None, ""):
        row.total = money(payload.get("total_price"), "total_price")
    row.currency = payload.get("presentment_currency") or payload.get("currency") or row.currency
    row.completed_at = parse_time(payload.get("completed_at")) or row.completed_at
    row.shopify_updated_at = updated_at or row.shopify_updated_at
    db.session.flush()
    return row, True
