"""CSV exports: a campaign's results per recipient, and attributed orders.

Streamed in keyset batches, each batch with one aggregate query per figure, so a campaign of a
million recipients exports in constant memory. Free-text cells that a spreadsheet would run
as a formula are defused with a leading apostrophe.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from shopify_app.extensions import db
from shopify_app.models import Campaign, Click, Flow, Message, Order, Subscriber, Variant
from shopify_app.services.attributed_orders import orders_query
from shopify_app.services.stats_sql import cents, from_cents, money_str

BATCH = 5000
RESULT_COLUMNS = (
    "message_id",
    "subscriber_id",
    "phone",
    "variant",
    "status",
    "skip_reason",
    "error_code",
    "sent_at",
    "delivered_at",
    "segments",
    "cost",
    "clicks",
    "orders",
    "revenue",
)
ORDER_COLUMNS = (
    "order",
    "shopify_order_id",
    "ordered_at",
    "currency",
    "total",
    "refunded",
    "net_revenue",
    "test",
    "cancelled",
    "reason",
    "campaign_id",
    "campaign",
    "flow_id",
    "flow",
    "message_id",
    "subscriber_id",
    "attributed_at",
)


def safe_cell(value: Any) -> Any:
    """A cell a spreadsheet will not evaluate (CSV injection)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _iso(moment: datetime | None) -> str:
    return moment.isoformat() if moment else ""


def _lines(header: Iterable[str], rows: Iterator[Iterable[Any]]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    yield buffer.getvalue()
    for row in rows:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow(row)
        yield buffer.getvalue()


def _result_rows(shop_id: int, campaign_id: int) -> Iterator[list[Any]]:
    labels = {
        v.id: v.label
        for v in db.session.scalars(
            Variant.for_shop(shop_id).where(Variant.campaign_id == campaign_id)
        )
    }
    # Paged by subscriber: (campaign_id, subscriber_id) is the campaign's unique index, so
    # each page is one index range however large the campaign.
    last_subscriber = 0
    while True:
        batch = db.session.execute(
            select(
                Message.id,
                Message.subscriber_id,
                Subscriber.phone,
                Message.variant_id,
                Message.status,
                Message.skip_reason,
                Message.error_code,
                Message.sent_at,
                Message.delivered_at,
                Message.segments,
                Message.price,
            )
            .join(Subscriber, Subscriber.id == Message.subscriber_id)
            .where(
                Message.shop_id == shop_id,
                Message.campaign_id == campaign_id,
                Message.subscriber_id > last_subscriber,
            )
            .order_by(Message.subscriber_id)
            .limit(BATCH)
        ).all()
        if not batch:
            return
        ids = [row.id for row in batch]
        clicks = dict(
            db.session.execute(
                select(Click.message_id, func.count())
                .where(Click.shop_id == shop_id, Click.message_id.in_(ids), Click.is_bot.is_(False))
                .group_by(Click.message_id)
            ).all()
        )
        orders = {
            mid: (n, revenue)
            for mid, n, revenue in db.session.execute(
                select(
                    Order.message_id,
                    func.count(),
                    func.coalesce(func.sum(cents(Order.net_total)), 0),
                )
                .where(
                    Order.shop_id == shop_id,
                    Order.message_id.in_(ids),
                    Order.test.is_(False),
                    Order.cancelled_at.is_(None),
                )
                .group_by(Order.message_id)
            )
        }
        for row in batch:
            n, revenue = orders.get(row.id, (0, 0))
            yield [
                row.id,
                row.subscriber_id,
                row.phone or "",
                labels.get(row.variant_id, ""),
                row.status,
                row.skip_reason or "",
                row.error_code or "",
                _iso(row.sent_at),
                _iso(row.delivered_at),
                row.segments or "",
                str(row.price) if row.price is not None else "",
                clicks.get(row.id, 0),
                n,
                money_str(from_cents(revenue)),
            ]
        last_subscriber = batch[-1].subscriber_id


def campaign_results_csv(shop_id: int, campaign_id: int) -> Iterator[str]:
    """One line per recipient: outcome, cost, human clicks, attributed orders and revenue."""
    if Campaign.get_for_shop(shop_id, campaign_id) is None:
        raise LookupError(f"campaign {campaign_id}")
    return _lines(RESULT_COLUMNS, _result_rows(shop_id, campaign_id))


def _order_rows(
    shop_id: int, since: datetime, until: datetime, campaign_id: int | None, flow_id: int | None
) -> Iterator[list[Any]]:
    names = {c.id: c.name for c in db.session.scalars(Campaign.for_shop(shop_id))}
    flows = {f.id: f.name for f in db.session.scalars(Flow.for_shop(shop_id))}
    stmt = orders_query(shop_id, since, until, campaign_id=campaign_id, flow_id=flow_id)
    last_id = 0
    while True:
        batch = list(
            db.session.scalars(stmt.where(Order.id > last_id).order_by(Order.id).limit(BATCH))
        )
        if not batch:
            return
        for order in batch:
            yield [
                safe_cell(order.name or ""),
                order.shopify_order_id,
                _iso(order.ordered_at),
                order.currency,
                money_str(order.total),
                money_str(order.refunded),
                money_str(order.net_total),
                "yes" if order.test else "no",
                "yes" if order.cancelled_at else "no",
                order.attribution_reason,
                order.campaign_id or "",
                safe_cell(names.get(order.campaign_id, "")),
                order.flow_id or "",
                safe_cell(flows.get(order.flow_id, "")),
                order.message_id or "",
                order.subscriber_id or "",
                _iso(order.attributed_at),
            ]
            db.session.expunge(order)  # constant memory over a long export
        last_id = batch[-1].id


def attributed_orders_csv(
    shop_id: int,
    since: datetime,
    until: datetime,
    *,
    campaign_id: int | None = None,
    flow_id: int | None = None,
) -> Iterator[str]:
    """Every attributed order placed in [since, until), with its reason and its source."""
    return _lines(ORDER_COLUMNS, _order_rows(shop_id, since, until, campaign_id, flow_id))
