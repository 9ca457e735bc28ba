"""Helpers for the discount, order, attribution and stats tests: fixtures from
tests/fixtures/shopify, and rows (subscribers, campaigns, messages, links, clicks)."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

from shopify_app.extensions import db
from shopify_app.models import (
    Campaign,
    Click,
    ConsentEvent,
    Discount,
    DiscountCode,
    Link,
    Message,
    Shop,
    Subscriber,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "shopify"


@cache
def _raw(name: str) -> str:
    return (FIXTURES / f"{name}.json").read_text()


def fixture(name: str, **replace: str) -> dict[str, Any]:
    """A payload from tests/fixtures/shopify, with `__KEY__` placeholders filled in."""
    text = _raw(name)
    for key, value in replace.items():
        text = text.replace(f"__{key.upper()}__", value)
    return copy.deepcopy(json.loads(text))


def at(text: str) -> datetime:
    """An aware UTC datetime from an ISO string."""
    return datetime.fromisoformat(text).astimezone(UTC)


def subscriber(shop: Shop, phone: str | None, **fields: Any) -> Subscriber:
    row = Subscriber(
        shop_id=shop.id,
        phone=phone,
        status=fields.pop("status", "subscribed"),
        source=fields.pop("source", "widget"),
        subscribed_at=fields.pop("subscribed_at", at("2026-09-01T12:00:00+00:00")),
        **fields,
    )
    db.session.add(row)
    db.session.flush()
    return row


def campaign(shop: Shop, name: str = "Fall sale", **fields: Any) -> Campaign:
    row = Campaign(
        shop_id=shop.id,
        name=name,
        status=fields.pop("status", "sent"),
        body=fields.pop("body", "Fall sale: {discount_code} {link}"),
        **fields,
    )
    db.session.add(row)
    db.session.flush()
    return row


def message(
    shop: Shop,
    sub: Subscriber,
    *,
    sent: datetime | None,
    status: str = "delivered",
    campaign_id: int | None = None,
    **fields: Any,
) -> Message:
    delivered = fields.pop("delivered_at", sent if status == "delivered" else None)
    row = Message(
        shop_id=shop.id,
        subscriber_id=sub.id,
        campaign_id=campaign_id,
        kind=fields.pop("kind", "campaign" if campaign_id else "flow"),
        status=status,
        due_at=fields.pop("due_at", sent or at("2026-10-10T15:00:00Z")),
        sent_at=sent,
        delivered_at=delivered,
        segments=fields.pop("segments", 1 if sent else None),
        price=fields.pop("price", Decimal("0.00790") if sent else None),
        **fields,
    )
    db.session.add(row)
    db.session.flush()
    return row


def link(shop: Shop, msg: Message, token: str, url: str = "https://northwind.example/") -> Link:
    row = Link(
        shop_id=shop.id,
        token=token,
        message_id=msg.id,
        subscriber_id=msg.subscriber_id,
        campaign_id=msg.campaign_id,
        url=url,
    )
    db.session.add(row)
    db.session.flush()
    return row


def click(shop: Shop, row: Link, when: datetime, *, bot: bool = False) -> Click:
    item = Click(
        shop_id=shop.id,
        link_id=row.id,
        message_id=row.message_id,
        subscriber_id=row.subscriber_id,
        clicked_at=when,
        is_bot=bot,
        user_agent="facebookexternalhit/1.1" if bot else "Mozilla/5.0 (iPhone)",
    )
    db.session.add(item)
    db.session.flush()
    return item


def opt_out(shop: Shop, sub: Subscriber, when: datetime) -> ConsentEvent:
    event = ConsentEvent(
        shop_id=shop.id,
        subscriber_id=sub.id,
        kind="opted_out",
        source="keyword",
        occurred_at=when,
        evidence_id="SMtest",
    )
    db.session.add(event)
    db.session.flush()
    return event


def issued_code(shop: Shop, msg: Message, code: str, *, mode: str = "unique") -> DiscountCode:
    """A code Tidings issued for a message (unique) or its campaign (shared: msg's campaign)."""
    discount = (
        db.session.query(Discount).filter_by(shop_id=shop.id, campaign_id=msg.campaign_id).first()
    )
    if discount is None:
        discount = Discount(
            shop_id=shop.id,
            campaign_id=msg.campaign_id,
            mode=mode,
            title="Tidings: test",
            value_type="percentage",
            value=Decimal("15"),
            status="ready",
            shopify_id="gid://shopify/DiscountCodeNode/1",
        )
        db.session.add(discount)
        db.session.flush()
    row = DiscountCode(
        shop_id=shop.id,
        discount_id=discount.id,
        code=code.upper(),
        subscriber_id=msg.subscriber_id if mode == "unique" else None,
        message_id=msg.id if mode == "unique" else None,
        campaign_id=msg.campaign_id,
        status="ready",
    )
    db.session.add(row)
    db.session.flush()
    return row
