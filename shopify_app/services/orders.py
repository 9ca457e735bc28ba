"""Orders and refunds from Shopify webhooks: one row per order, amounts in the shop's currency.

Shopify delivers orders/create, orders/updated, orders/paid and refunds/create at least once and
in any order. So: one row per Shopify order id (insert-or-lock), an update older than the one
already applied changes nothing, refunds are rows keyed by refund id, and the buyer's counters
are recomputed from their orders rather than incremented.

Money: `total_price_set.shop_money` (else `total_price`, which Shopify gives in the shop
currency) is the order's value after edits and before refunds; refunds are subtracted from
it; a cancelled or test order is worth nothing. `current_total_price` is kept only to reconcile
with Shopify's admin — it already has refunds taken off, so it is never used with them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from shopify_app.extensions import db
from shopify_app.models import Order, OrderRefund, Shop, Subscriber, to_decimal, utcnow
from shopify_app.services.attribution import attribute_order
from shopify_app.services.shopify_payloads import (
    address_country,
    field_name,
    first_valid_phone,
    int_id,
    money,
    obj,
    objects,
    parse_time,
    required_id,
)

log = logging.getLogger(__name__)

CENT = Decimal("0.01")
_OK_TRANSACTION_STATUSES = ("success", "pending", None)


def _money_set(parent: dict[str, Any], key: str, side: str, where: str = "") -> Decimal | None:
    """parent[key][side].amount, a Shopify MoneyBag's amount in one currency."""
    field = field_name(where, key)
    amount = obj(obj(parent, key, where), side, field).get("amount")
    return None if amount in (None, "") else money(amount, f"{field}.{side}.amount")


def order_amounts(payload: dict[str, Any]) -> tuple[Decimal, Decimal | None, Decimal | None]:
    """(total, current_total, presentment_total): the first two in the shop's currency."""
    total = _money_set(payload, "total_price_set", "shop_money")
    if total is None:
        total = money(payload.get("total_price"), "total_price")
    current = _money_set(payload, "current_total_price_set", "shop_money")
    if current is None and payload.get("current_total_price") not in (None, ""):
        current = money(payload.get("current_total_price"), "current_total_price")
    presentment = _money_set(payload, "total_price_set", "presentment_money")
    return total, current, presentment


def order_phone(payload: dict[str, Any], shop_country: str) -> str | None:
    """The first textable number on the order, customer, billing or shipping address."""
    found = first_valid_phone(
        [
            payload.get("phone"),
            obj(payload, "customer").get("phone"),
            obj(payload, "billing_address").get("phone"),
            obj(payload, "shipping_address").get("phone"),
        ],
        address_country(payload) or shop_country,
    )
    return found.e164 if found else None


def _refund_parts(refund: dict[str, Any], side: str, where: str = "") -> Decimal:
    """What a refund gave back according to its parts, in shop or presentment money."""
    total = Decimal("0")

    def parts(key: str, *sets: str) -> Decimal:
        found = Decimal("0")
        for index, part in enumerate(objects(refund, key, where)):
            part_at = field_name(where, f"{key}[{index}]")
            for name in sets:
                found += _money_set(part, name, side, part_at) or 0
        return found

    total += parts("refund_line_items", "subtotal_set", "total_tax_set")
    total += parts("refund_shipping_lines", "subtotal_amount_set", "tax_amount_set")
    total += parts("duties", "amount_set")
    # Adjustments are signed the other way: a shipping refund is -8.00, a refund smaller than
    # its line items leaves a positive discrepancy.
    total -= parts("order_adjustments", "amount_set", "tax_amount_set")
    return total


def refund_amount(
    refund: dict[str, Any],
    shop_currency: str,
    fallback_rate: Decimal | None = None,
    where: str = "",
) -> Decimal:
    """Money a refund returned, in the shop's currency.

    The refund transactions are what left the merchant's account, but they are in the
    currency the customer paid in. When that is not the shop's, the shop-money side comes from
    the refund's parts (line items, shipping, duties, adjustments), which Shopify reports in
    both currencies; a custom amount is converted at the parts' (else the order's) rate.
    """
    transactions = [
        (field_name(where, f"transactions[{index}]"), t)
        for index, t in enumerate(objects(refund, "transactions", where))
        if t.get("kind") == "refund" and t.get("status") in _OK_TRANSACTION_STATUSES
    ]
    if not transactions:
        return Decimal("0.00")  # nothing went back to the customer (a restock only)
    paid = sum((money(t.get("amount"), f"{at}.amount") for at, t in transactions), Decimal("0"))
    if all((t.get("currency") or shop_currency) == shop_currency for _, t in transactions):
        return paid.quantize(CENT)
    parts_shop = _refund_parts(refund, "shop_money", where)
    parts_presented = _refund_parts(refund, "presentment_money", where)
    if parts_presented > 0:
        if parts_presented == paid:
            return parts_shop.quantize(CENT)
        rate = parts_shop / parts_presented
    elif fallback_rate is not None:
        rate = fallback_rate
    else:
        log.warning(
            "refund %s in a foreign currency with no exchange rate; amount taken as is",
            refund.get("id"),
        )
        return paid.quantize(CENT)
    return (paid * rate).quantize(CENT, rounding=ROUND_HALF_UP)


def _dialect_insert(model: Any) -> Any:
    """INSERT … ON CONFLICT for the table (Core, not ORM-bulk, so RETURNING is reliable)."""
    insert = pg_insert if db.engine.dialect.name == "postgresql" else sqlite_insert
    return insert(model.__table__)


def record_refund(
    shop: Shop,
    refund: dict[str, Any],
    *,
    shopify_order_id: int,
    fallback_rate: Decimal | None = None,
    where: str = "",
) -> bool:
    """Store one refund once (by its id). True when it was new. `where` is the refund's
    place in the payload, for a MalformedPayload's reason ("refunds[0]")."""
    now = utcnow()
    stmt = (
        _dialect_insert(OrderRefund)
        .values(
            shop_id=shop.id,
            shopify_refund_id=required_id(refund, "id", where),
            shopify_order_id=shopify_order_id,
            amount=refund_amount(refund, shop.currency, fallback_rate, where),
            refunded_at=parse_time(refund.get("processed_at") or refund.get("created_at")),
            created_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=["shop_id", "shopify_refund_id"])
        .returning(OrderRefund.__table__.c.id)
    )
    return db.session.execute(stmt).first() is not None


def _order_fields(
    shop: Shop, payload: dict[str, Any], triggered_at: datetime | None
) -> dict[str, Any]:
    total, current, presentment = order_amounts(payload)
    customer = obj(payload, "customer")
    codes = [
        {"code": str(d.get("code")), "amount": str(d.get("amount", "")), "type": d.get("type")}
        for d in payload.get("discount_codes") or []
        if isinstance(d, dict) and d.get("code")
    ]
    return {
        "name": payload.get("name"),
        "checkout_token": payload.get("checkout_token"),
        "customer_id": int_id(customer.get("id")),
        "phone": order_phone(payload, shop.country),
        "currency": str(payload.get("currency") or shop.currency)[:3],
        "total": total.quantize(CENT),
        "current_total": current.quantize(CENT) if current is not None else None,
        "presentment_currency": payload.get("presentment_currency"),
        "presentment_total": presentment.quantize(CENT) if presentment is not None else None,
        "financial_status": payload.get("financial_status"),
        "test": bool(payload.get("test")),
        "cancelled_at": parse_time(payload.get("cancelled_at")),
        "ordered_at": (
            parse_time(payload.get("created_at"))
            or parse_time(payload.get("processed_at"))
            or triggered_at
            or utcnow()
        ),
        "shopify_updated_at": parse_time(payload.get("updated_at")) or triggered_at,
        "landing_site": payload.get("landing_site"),
        "discount_codes": codes,
    }


def _exchange_rate(order: Order) -> Decimal | None:
    if order.presentment_total and order.presentment_currency != order.currency:
        return order.total / order.presentment_total
    return None


def refresh_amounts(order: Order) -> None:
    """The refunded sum from the refund rows (the database derives `net_total` from it)."""
    order.refunded = db.session.scalar(
        select(func.coalesce(func.sum(OrderRefund.amount), 0)).where(
            OrderRefund.shop_id == order.shop_id,
            OrderRefund.shopify_order_id == order.shopify_order_id,
        )
    )
    order.refunded = to_decimal(order.refunded).quantize(CENT)


def refresh_subscriber_counters(shop_id: int, subscriber_ids: Iterable[int | None]) -> None:
    """orders_count, total_spent and last_order_at recomputed from the subscriber's orders
    (test and cancelled ones left out), so a duplicate delivery can never inflate them."""
    for subscriber_id in sorted({s for s in subscriber_ids if s is not None}):
        # Lock the subscriber first: two orders of one buyer ingested at once then count one
        # after the other, and the second sees the first's committed order.
        db.session.execute(
            select(Subscriber.id)
            .where(Subscriber.shop_id == shop_id, Subscriber.id == subscriber_id)
            .with_for_update()
        )
        count, spent, last = db.session.execute(
            select(
                func.count(Order.id),
                func.coalesce(func.sum(Order.net_total), 0),
                func.max(Order.ordered_at),
            ).where(
                Order.shop_id == shop_id,
                Order.subscriber_id == subscriber_id,
                Order.test.is_(False),
                Order.cancelled_at.is_(None),
            )
        ).one()
        db.session.execute(
            update(Subscriber)
            .where(Subscriber.shop_id == shop_id, Subscriber.id == subscriber_id)
            .values(
                orders_count=count, total_spent=to_decimal(spent).quantize(CENT), last_order_at=last
            )
        )


def _lock_order(shop_id: int, shopify_order_id: int) -> Order | None:
    return db.session.scalars(
        Order.for_shop(shop_id)
        .where(Order.shopify_order_id == shopify_order_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).first()


def ingest_order(
    shop: Shop,
    payload: dict[str, Any],
    *,
    triggered_at: datetime | None = None,
    buyer: Subscriber | None = None,
) -> Order:
    """Create or update the order from an orders/* payload and attribute it (once).

    `buyer` is the subscriber the caller already matched (checkout consent on the order); the
    attribution rules use it when the order itself names nobody we know. Returns the Order so
    the webhook handler can hand it to further services.
    """
    shopify_order_id = required_id(payload, "id")
    fields = _order_fields(shop, payload, triggered_at)
    now = utcnow()
    inserted = (
        db.session.execute(
            _dialect_insert(Order)
            .values(
                shop_id=shop.id,
                shopify_order_id=shopify_order_id,
                created_at=now,
                updated_at=now,
                **fields,
            )
            .on_conflict_do_nothing(index_elements=["shop_id", "shopify_order_id"])
            .returning(Order.__table__.c.id)
        ).first()
        is not None
    )
    order = _lock_order(shop.id, shopify_order_id)
    assert order is not None
    if not inserted:
        seen = order.shopify_updated_at
        incoming = fields["shopify_updated_at"]
        if seen is not None and incoming is not None and incoming < seen:
            log.info(
                "order %s: update from %s is older than the one applied; ignored",
                shopify_order_id,
                incoming.isoformat(),
            )
            return order
        for key, value in fields.items():
            setattr(order, key, value)
    previous_subscriber = order.subscriber_id
    if order.subscriber_id is None and buyer is not None and buyer.shop_id == shop.id:
        order.subscriber_id = buyer.id
    for index, refund in enumerate(payload.get("refunds") or []):
        if isinstance(refund, dict) and refund.get("id"):
            record_refund(
                shop,
                refund,
                shopify_order_id=shopify_order_id,
                fallback_rate=_exchange_rate(order),
                where=f"refunds[{index}]",
            )
    refresh_amounts(order)
    attribute_order(order)
    db.session.flush()
    refresh_subscriber_counters(shop.id, (previous_subscriber, order.subscriber_id))
    return order


def ingest_refund(shop: Shop, payload: dict[str, Any]) -> Order | None:
    """refunds/create: store the refund once; if its order is here, take it off its value."""
    shopify_order_id = required_id(payload, "order_id")
    order = _lock_order(shop.id, shopify_order_id)
    new = record_refund(
        shop,
        payload,
        shopify_order_id=shopify_order_id,
        fallback_rate=_exchange_rate(order) if order else None,
    )
    if order is None:
        log.info("refund for order %s that has not arrived yet; kept for it", shopify_order_id)
        return None
    if new:
        refresh_amounts(order)
        db.session.flush()
        refresh_subscriber_counters(shop.id, (order.subscriber_id,))
    return order
