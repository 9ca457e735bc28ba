"""Helpers for the campaign and segment tests: subscribers, campaigns, rows and their states."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select

from shopify_app.extensions import db
from shopify_app.models import Campaign, Message, Shop, Subscriber, utcnow
from tests.integration.send_support import day_zone, id_of

EVERYONE = {"builtin": "all"}


def subscriber(shop: Shop | int, phone: str, **fields: Any) -> Subscriber:
    now = utcnow()
    values: dict[str, Any] = {
        "status": "subscribed",
        "source": "widget",
        "country": "US",
        "timezone": day_zone(),
        "first_name": "Ann",
        "subscribed_at": now,
    }
    values.update(fields)
    sub = Subscriber(shop_id=id_of(shop), phone=phone, **values)
    db.session.add(sub)
    db.session.commit()
    return sub


def subscribers(
    shop: Shop | int, n: int, *, prefix: str = "+1202555", start: int = 0, **fields: Any
) -> list[Subscriber]:
    return [subscriber(shop, f"{prefix}{i:04d}", **fields) for i in range(start, start + n)]


def campaign(
    shop: Shop | int,
    body: str = "Hi {first_name}, the sale is on.",
    *,
    rules: dict[str, Any] | None = None,
    **fields: Any,
) -> Campaign:
    values: dict[str, Any] = {
        "name": "Sale",
        "status": "draft",
        "audience": {"rules": rules or EVERYONE},
    }
    values.update(fields)
    row = Campaign(shop_id=id_of(shop), body=body, **values)
    db.session.add(row)
    db.session.commit()
    return row


def reload(row: Any) -> Any:
    db.session.expire_all()
    return db.session.get(type(row), id_of(row))


def rows_of(campaign_id: int) -> list[Message]:
    db.session.expire_all()
    return list(
        db.session.scalars(
            select(Message).where(Message.campaign_id == campaign_id).order_by(Message.id)
        )
    )


def statuses(campaign_id: int) -> dict[str, int]:
    found = db.session.execute(
        select(Message.status, func.count())
        .where(Message.campaign_id == campaign_id)
        .group_by(Message.status)
    ).all()
    db.session.rollback()
    return {status: int(n) for status, n in found}


def spent(campaign_id: int) -> Decimal:
    value = db.session.scalar(
        select(func.sum(Message.price)).where(Message.campaign_id == campaign_id)
    )
    db.session.rollback()
    return Decimal(str(value or 0))


def aware(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))
