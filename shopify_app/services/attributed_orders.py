"""Attributed orders: the one query behind the orders CSV and the paged JSON list.

The list holds what the stats count as an order (services/stats.py `_orders`): attributed,
neither a test nor cancelled. The CSV keeps those two kinds too, flagged in its own columns,
so a merchant can reconcile it with Shopify's order list.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any

from sqlalchemy import Select, and_, or_, select

from shopify_app.extensions import db
from shopify_app.models import Campaign, Flow, Order
from shopify_app.services.stats_sql import money_str


def orders_query(
    shop_id: int,
    since: datetime,
    until: datetime,
    *,
    campaign_id: int | None = None,
    flow_id: int | None = None,
    reason: str | None = None,
    counted_only: bool = False,
) -> Select[tuple[Order]]:
    """The shop's attributed orders placed in [since, until), optionally of one campaign, one
    flow or one reason; `counted_only` leaves out test and cancelled orders as the stats do."""
    stmt = Order.for_shop(shop_id).where(
        Order.attribution_reason.is_not(None), Order.ordered_at >= since, Order.ordered_at < until
    )
    if counted_only:
        stmt = stmt.where(Order.test.is_(False), Order.cancelled_at.is_(None))
    if campaign_id is not None:
        stmt = stmt.where(Order.campaign_id == campaign_id)
    if flow_id is not None:
        stmt = stmt.where(Order.flow_id == flow_id)
    if reason is not None:
        stmt = stmt.where(Order.attribution_reason == reason)
    return stmt


@dataclass(frozen=True)
class OrderPage:
    items: list[dict[str, Any]]
    # (ordered_at, id) of the page's last order when another page follows.
    next_after: tuple[datetime, int] | None


def _names(model: type[Campaign] | type[Flow], shop_id: int, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    return dict(
        db.session.execute(
            select(model.id, model.name).where(model.shop_id == shop_id, model.id.in_(ids))
        ).all()
    )


def attributed_orders_page(
    shop_id: int,
    since: datetime,
    until: datetime,
    *,
    campaign_id: int | None = None,
    flow_id: int | None = None,
    reason: str | None = None,
    after: tuple[datetime, int] | None = None,
    limit: int = 50,
    zone: tzinfo = UTC,
) -> OrderPage:
    """Counted attributed orders, newest first (by order time, then id), a page at a time:
    `after` is the previous page's `next_after`. Times are also given in `zone`."""
    stmt = orders_query(
        shop_id,
        since,
        until,
        campaign_id=campaign_id,
        flow_id=flow_id,
        reason=reason,
        counted_only=True,
    )
    if after is not None:
        # Keyset on (ordered_at, id): orders arrive out of order (backfills, late webhooks),
        # so the id alone would not give the newest first. Spelled out for SQLite.
        at, last_id = after
        stmt = stmt.where(
            or_(Order.ordered_at < at, and_(Order.ordered_at == at, Order.id < last_id))
        )
    rows = list(
        db.session.scalars(stmt.order_by(Order.ordered_at.desc(), Order.id.desc()).limit(limit + 1))
    )
    more = len(rows) > limit
    rows = rows[:limit]
    campaigns = _names(Campaign, shop_id, {o.campaign_id for o in rows if o.campaign_id})
    flows = _names(Flow, shop_id, {o.flow_id for o in rows if o.flow_id})
    items = [
        {
            "id": o.id,
            "shopify_order_id": o.shopify_order_id,
            "name": o.name,
            "ordered_at": o.ordered_at,
            "ordered_at_local": o.ordered_at.astimezone(zone).isoformat(),
            "currency": o.currency,
            "net_total": money_str(o.net_total),
            "reason": o.attribution_reason,
            "campaign_id": o.campaign_id,
            "campaign_name": campaigns.get(o.campaign_id) if o.campaign_id else None,
            "flow_id": o.flow_id,
            "flow_name": flows.get(o.flow_id) if o.flow_id else None,
            "message_id": o.message_id,
            "subscriber_id": o.subscriber_id,
        }
        for o in rows
    ]
    return OrderPage(items, (rows[-1].ordered_at, rows[-1].id) if more and rows else None)
