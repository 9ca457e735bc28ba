"""Daily series for the charts, with days in the shop's time zone.

PostgreSQL buckets rows by local day itself (`timezone(zone, ts)`). SQLite knows no time zones,
so there rows are summed per UTC quarter hour — every zone's offset is a whole number of quarter
hours — and the quarters are folded into local days here. Either way one aggregate query per
metric, never a row per event.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Date, Integer, Select, and_, cast, func, literal, select

from shopify_app.extensions import db
from shopify_app.models import Click, ConsentEvent, FlowRun, Message, Order, Shop, Subscriber
from shopify_app.services.stats_sql import cents, from_cents, is_postgres, money_str

MAX_DAYS = 366
METRICS = ("sent", "clicks", "orders", "revenue", "new_subscribers", "unsubscribes")


@dataclass(frozen=True)
class SeriesScope:
    """Everything in the shop, or one campaign's / one flow's messages and orders."""

    shop_id: int
    campaign_id: int | None = None
    flow_id: int | None = None

    def messages(self, stmt: Select[Any]) -> Select[Any]:
        stmt = stmt.where(Message.shop_id == self.shop_id)
        if self.campaign_id is not None:
            stmt = stmt.where(Message.campaign_id == self.campaign_id)
        if self.flow_id is not None:
            stmt = stmt.join(FlowRun, FlowRun.id == Message.flow_run_id).where(
                FlowRun.flow_id == self.flow_id
            )
        return stmt

    def orders(self) -> Any:
        if self.campaign_id is not None:
            return Order.campaign_id == self.campaign_id
        if self.flow_id is not None:
            return Order.flow_id == self.flow_id
        return Order.attribution_reason.is_not(None)

    @property
    def whole_shop(self) -> bool:
        return self.campaign_id is None and self.flow_id is None


def local_bounds(first: date, last: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """UTC instants of local midnight starting `first` and ending `last`."""
    start = datetime.combine(first, time(0), zone).astimezone(UTC)
    end = datetime.combine(last + timedelta(days=1), time(0), zone).astimezone(UTC)
    return start, end


def _bucket(column: Any, zone: ZoneInfo) -> Any:
    if is_postgres():
        return cast(func.timezone(literal(zone.key), column), Date)
    quarter = cast(func.strftime("%M", column), Integer) / 15 * 15
    return func.strftime("%Y-%m-%d %H:", column).op("||")(func.printf("%02d", quarter))


def _local_day(bucket: Any, zone: ZoneInfo) -> date:
    if isinstance(bucket, date) and not isinstance(bucket, datetime):
        return bucket
    if isinstance(bucket, datetime):
        moment = bucket
    else:
        moment = datetime.strptime(str(bucket), "%Y-%m-%d %H:%M")
    return moment.replace(tzinfo=UTC).astimezone(zone).date()


def _daily(
    column: Any,
    build: Callable[[Any], Select[Any]],
    zone: ZoneInfo,
) -> dict[date, list[Any]]:
    """{local day: [sums...]} of a query built over the bucket of `column`."""
    bucket = _bucket(column, zone).label("bucket")
    out: dict[date, list[Any]] = {}
    for row in db.session.execute(build(bucket).group_by(bucket)):
        day = _local_day(row[0], zone)
        values = list(row[1:])
        current = out.setdefault(day, [0] * len(values))
        for i, value in enumerate(values):
            current[i] += value if value is not None else 0
    return out


def daily_series(
    shop: Shop,
    first: date,
    last: date,
    *,
    campaign_id: int | None = None,
    flow_id: int | None = None,
) -> list[dict[str, Any]]:
    """One row per local day from `first` to `last` (inclusive)."""
    if last < first:
        raise ValueError("the series ends before it starts")
    if (last - first).days + 1 > MAX_DAYS:
        raise ValueError(f"a series covers at most {MAX_DAYS} days")
    zone = ZoneInfo(shop.timezone or "UTC")
    start, end = local_bounds(first, last, zone)
    scope = SeriesScope(shop.id, campaign_id, flow_id)

    sent = _daily(
        Message.sent_at,
        lambda b: scope.messages(select(b, func.count())).where(
            Message.sent_at >= start, Message.sent_at < end
        ),
        zone,
    )
    clicks = _daily(
        Click.clicked_at,
        lambda b: scope.messages(
            select(b, func.count()).select_from(Click).join(Message, Message.id == Click.message_id)
        ).where(
            Click.shop_id == shop.id,
            Click.is_bot.is_(False),
            Click.clicked_at >= start,
            Click.clicked_at < end,
        ),
        zone,
    )
    orders = _daily(
        Order.ordered_at,
        lambda b: select(b, func.count(), func.coalesce(func.sum(cents(Order.net_total)), 0)).where(
            Order.shop_id == shop.id,
            scope.orders(),
            Order.test.is_(False),
            Order.cancelled_at.is_(None),
            Order.ordered_at >= start,
            Order.ordered_at < end,
        ),
        zone,
    )
    growth: dict[date, list[Any]] = {}
    quits: dict[date, list[Any]] = {}
    if scope.whole_shop:
        growth = _daily(
            Subscriber.subscribed_at,
            lambda b: select(b, func.count()).where(
                Subscriber.shop_id == shop.id,
                Subscriber.subscribed_at >= start,
                Subscriber.subscribed_at < end,
            ),
            zone,
        )
        quits = _daily(
            ConsentEvent.occurred_at,
            lambda b: select(b, func.count()).where(
                and_(
                    ConsentEvent.shop_id == shop.id,
                    ConsentEvent.kind == "opted_out",
                    ConsentEvent.occurred_at >= start,
                    ConsentEvent.occurred_at < end,
                )
            ),
            zone,
        )

    rows = []
    day = first
    while day <= last:
        order_values = orders.get(day, [0, 0])
        rows.append(
            {
                "date": day.isoformat(),
                "sent": int(sent.get(day, [0])[0]),
                "clicks": int(clicks.get(day, [0])[0]),
                "orders": int(order_values[0]),
                "revenue": money_str(from_cents(order_values[1])),
                "new_subscribers": int(growth.get(day, [0])[0]) if scope.whole_shop else None,
                "unsubscribes": int(quits.get(day, [0])[0]) if scope.whole_shop else None,
            }
        )
        day += timedelta(days=1)
    return rows
