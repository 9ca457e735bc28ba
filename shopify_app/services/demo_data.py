"""Demo and benchmark data, built with set-based INSERT … SELECT (no row-by-row Python loops).

The generator is deterministic: "random" choices come from multiplicative hashes of the row
number, so the same arguments give the same shop on SQLite and PostgreSQL.

Speed (the aim: 1 000 000 subscribers and 5 000 000 orders in a few minutes on PostgreSQL)
comes from never going back over a big table: who orders what is a formula of the order number
(`OrderPlan`), so each subscriber's order count, spend and last order are aggregated from that
formula inside the INSERT that creates the subscriber, and the orders are then inserted in
subscriber order (their indexes and foreign-key checks walk forward instead of jumping about).
The only UPDATE is the attribution of the few orders placed after the demo campaign by people
who clicked it. For big runs on PostgreSQL the tables' plain indexes are built once after
their insert instead of row by row (`indexes_rebuilt_after`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, delete, func, select, text

from shopify_app.extensions import db
from shopify_app.models import Campaign, Link, Message, Order, Shop, Subscriber, utcnow

# Area codes with their zone, so demo numbers spread over the US time zones.
AREA_CODES = [
    ("212", "America/New_York", "NY"),
    ("617", "America/New_York", "MA"),
    ("404", "America/New_York", "GA"),
    ("312", "America/Chicago", "IL"),
    ("512", "America/Chicago", "TX"),
    ("303", "America/Denver", "CO"),
    ("602", "America/Phoenix", "AZ"),
    ("415", "America/Los_Angeles", "CA"),
    ("206", "America/Los_Angeles", "WA"),
    ("702", "America/Los_Angeles", "NV"),
]
SOURCES = ["widget", "checkout", "keyword", "import"]
FIRST_NAMES = ["Ava", "Liam", "Mia", "Noah", "Zoe", "Eli", "Ivy", "Leo"]
BUYER_SHARE = 60  # % of subscribers (the first ones by row number) who ever order
SUBSCRIBED_WITHIN = 15_552_000  # seconds: 180 days
ORDERED_WITHIN = 7_776_000  # seconds: 90 days
CAMPAIGN_DAYS_AGO = 3
CAMPAIGN_PRICE = "0.0083"
CAMPAIGN_URL = "https://demo.tidings.test/collections/sale"
REBUILD_INDEXES_FROM = 200_000  # rows: above this, build secondary indexes once, after

# 90% subscribed, 7% unsubscribed, 3% pending (of row number i)
STATUS_SQL = (
    "(CASE WHEN (i * 37) % 100 < 90 THEN 'subscribed' "
    "WHEN (i * 37) % 100 < 97 THEN 'unsubscribed' ELSE 'pending' END)"
)
# 96% delivered, 2% undelivered, 2% failed (of subscriber id)
DELIVERY_SQL = (
    "(CASE WHEN (s.id * 31) % 100 < 96 THEN 'delivered' "
    "WHEN (s.id * 31) % 100 < 98 THEN 'undelivered' ELSE 'failed' END)"
)


@dataclass
class DemoSummary:
    shop: str
    subscribers: int
    orders: int
    campaign_messages: int

    def __str__(self) -> str:
        return (
            f"demo shop {self.shop}: {self.subscribers} subscribers, {self.orders} orders, "
            f"a sent campaign to {self.campaign_messages} subscribers"
        )


@dataclass(frozen=True)
class OrderPlan:
    """Order j (1..orders) belongs to the subscriber of row number k + 1, k a non-decreasing
    function of j over the first BUYER_SHARE % of rows (later buyers order up to three times
    as often as earlier ones; the last 40 % of rows never order). Amounts and ages are hashes
    of j."""

    subscribers: int
    orders: int

    @property
    def buyers(self) -> int:
        return max(1, self.subscribers * BUYER_SHARE // 100) if self.subscribers else 0

    def columns(self) -> str:
        """SELECT list over `j`: k, cents, age (seconds before now). Integer arithmetic only
        (no overflow below 10^13 orders × buyers), so both dialects agree exactly."""
        b, m = self.buyers, max(self.orders, 1)
        # u = (j - 1) / m; k = b·u·(3 − u) / 2 runs from 0 to b, steeper at the start.
        k = f"((((j - 1) * {b}) / {m}) * (3 * {m} - (j - 1)) / (2 * {m}))"
        return (
            f"j, {k} AS k, ((j * 7907) % 20000) + 1500 AS cents, "
            f"(j * 104729) % {ORDERED_WITHIN} AS age"
        )


def _postgres() -> bool:
    return db.engine.dialect.name == "postgresql"


def _numbers(n_param: str, column: str = "i") -> str:
    """A FROM clause yielding `column` = 1..n on either dialect."""
    if _postgres():
        return f"generate_series(CAST(1 AS BIGINT), CAST(:{n_param} AS BIGINT)) AS seq({column})"
    return (
        f"(WITH RECURSIVE s({column}) AS (SELECT 1 UNION ALL SELECT {column} + 1 FROM s "
        f"WHERE {column} < :{n_param}) SELECT {column} FROM s) AS seq"
    )


def _ago(seconds_expr: str) -> str:
    """A timestamp `seconds_expr` seconds before :now, as the dialect stores UTCDateTime."""
    if _postgres():
        return f"(CAST(:now AS timestamptz) - make_interval(secs => ({seconds_expr})))"
    # SQLAlchemy's SQLite format, so string comparisons with bound values stay exact.
    return (
        f"(strftime('%Y-%m-%d %H:%M:%S', :now, '-' || ({seconds_expr}) || ' seconds') || '.000000')"
    )


@contextmanager
def indexes_rebuilt_after(table: Table, rows: int) -> Iterator[None]:
    """On PostgreSQL, for a big insert: drop the table's plain (non-unique) indexes and build
    them again afterwards — one sort each instead of millions of scattered index inserts.
    Inside the demo's transaction, so a failure puts them back; other sessions writing the
    table wait until the demo commits (a development-only command)."""
    if not _postgres() or rows < REBUILD_INDEXES_FROM:
        yield
        return
    plain = [index for index in table.indexes if not index.unique]
    connection = db.session.connection()
    for index in plain:
        connection.execute(text(f'DROP INDEX IF EXISTS "{index.name}"'))
    yield
    for index in plain:
        index.create(bind=connection, checkfirst=True)


def case_sql(expr: str, values: list[str]) -> str:
    """SQL choosing values[expr % len(values)]: spreads generated rows over fixed values."""
    whens = " ".join(f"WHEN {i} THEN '{v}'" for i, v in enumerate(values))
    return f"(CASE ({expr}) % {len(values)} {whens} END)"


def _stamp(moment: datetime) -> Any:
    """`moment` as a raw bind value for text() SQL (SQLite keeps naive UTC text)."""
    return moment if _postgres() else moment.replace(tzinfo=None).isoformat(sep=" ")


def ensure_demo_shop(domain: str) -> Shop:
    shop = Shop.by_domain(domain)
    if shop is None:
        shop = Shop(
            domain=domain,
            name="Tidings Demo Store",
            timezone="America/New_York",
            currency="USD",
            country="US",
            primary_domain="demo.tidings.test",
            installed_at=utcnow(),
        )
        shop.settings = {"brand_name": "Tidings Demo", "support_contact": "help@demo.test"}
        db.session.add(shop)
        db.session.flush()
    shop.uninstalled_at = None
    return shop


def clear_shop_data(shop: Shop) -> None:
    """Remove the shop's rows (the rest cascades from messages, subscribers and campaigns)."""
    db.session.execute(delete(Order).where(Order.shop_id == shop.id))
    db.session.execute(delete(Message).where(Message.shop_id == shop.id))
    db.session.execute(delete(Campaign).where(Campaign.shop_id == shop.id))
    db.session.execute(delete(Subscriber).where(Subscriber.shop_id == shop.id))


def insert_subscribers(shop: Shop, plan: OrderPlan, *, now: datetime, sent_at: datetime) -> None:
    """Subscribers with their order counters (from `plan`) and, for those subscribed, the
    demo campaign counted as received; then their consent events."""
    # (area code, line) pairs are unique: the area cycles with i, the line grows with i / 10.
    area = case_sql("i", [a for a, _, _ in AREA_CODES])
    zone = case_sql("i", [z for _, z, _ in AREA_CODES])
    region = case_sql("i", [r for _, _, r in AREA_CODES])
    created = _ago(f"((i * 7919) % {SUBSCRIBED_WITHIN})")
    spent = "ROUND(a.cents / 100.0, 2)"
    db.session.execute(
        text(f"""
        INSERT INTO subscriber (shop_id, phone, first_name, country, region, timezone, status,
            source, subscribed_at, unsubscribed_at, phone_invalid, orders_count, total_spent,
            last_order_at, messages_received, last_message_at, created_at, updated_at)
        SELECT :shop_id,
               '+1' || {area} || CAST(2000000 + i / 10 AS TEXT),
               {case_sql("i * 13", FIRST_NAMES)},
               'US', {region}, {zone}, {STATUS_SQL},
               {case_sql("i * 11", SOURCES)},
               CASE WHEN {STATUS_SQL} = 'pending' THEN NULL ELSE {created} END,
               CASE WHEN {STATUS_SQL} = 'unsubscribed' THEN {created} ELSE NULL END,
               false, COALESCE(a.n, 0), COALESCE({spent}, 0),
               CASE WHEN a.n IS NULL THEN NULL ELSE {_ago("a.age")} END,
               CASE WHEN {STATUS_SQL} = 'subscribed' THEN 1 ELSE 0 END,
               CASE WHEN {STATUS_SQL} = 'subscribed' THEN :sent ELSE NULL END,
               {created}, {created}
        FROM {_numbers("n")}
        LEFT JOIN (SELECT k, count(*) AS n, sum(cents) AS cents, min(age) AS age
                   FROM (SELECT {plan.columns()} FROM {_numbers("m", "j")}) AS o
                   GROUP BY k) AS a ON a.k = seq.i - 1
        ORDER BY i
    """),
        {
            "shop_id": shop.id,
            "n": plan.subscribers,
            "m": plan.orders,
            "now": _stamp(now),
            "sent": _stamp(sent_at),
        },
    )
    db.session.execute(
        text("""
        INSERT INTO consent_event (shop_id, subscriber_id, kind, source, occurred_at,
            consent_text, evidence_id, created_at, updated_at)
        SELECT s.shop_id, s.id, 'confirmed', s.source, s.created_at,
               'Demo consent (seeded)', 'demo', s.created_at, s.created_at
        FROM subscriber s WHERE s.shop_id = :shop_id AND s.status <> 'pending'
        ORDER BY s.id
    """),
        {"shop_id": shop.id},
    )


def first_subscriber_id(shop: Shop, expected: int) -> int:
    """The id of row number 1. Orders address subscribers as first id + k, which needs the
    ids of one INSERT to be consecutive (another writer on the table could break that)."""
    low, high, n = db.session.execute(
        select(func.min(Subscriber.id), func.max(Subscriber.id), func.count()).where(
            Subscriber.shop_id == shop.id
        )
    ).one()
    if n != expected or (n and high - low + 1 != n):
        raise RuntimeError(
            "demo subscriber ids are not consecutive (another process was inserting "
            "subscribers); run `flask demo` again"
        )
    return int(low or 0)


def insert_orders(shop: Shop, plan: OrderPlan, *, now: datetime) -> None:
    """The orders of `plan`, in subscriber order; their totals match the counters."""
    if plan.orders <= 0 or plan.subscribers <= 0:
        return
    first_id = first_subscriber_id(shop, plan.subscribers)
    ordered = _ago("o.age")
    db.session.execute(
        text(f"""
        INSERT INTO shop_order (shop_id, shopify_order_id, name, subscriber_id, currency, total,
            refunded, test, ordered_at, discount_codes, created_at, updated_at)
        SELECT :shop_id, 9000000000 + o.j, '#D' || CAST(o.j AS TEXT), :first_id + o.k,
               :currency, ROUND(o.cents / 100.0, 2), 0, false, {ordered}, '[]', {ordered},
               {ordered}
        FROM (SELECT {plan.columns()} FROM {_numbers("m", "j")}) AS o
        ORDER BY o.j
    """),
        {
            "shop_id": shop.id,
            "m": plan.orders,
            "now": _stamp(now),
            "first_id": first_id,
            "currency": shop.currency or "USD",
        },
    )


def insert_sent_campaign(shop: Shop, *, sent_at: datetime) -> Campaign:
    """A finished campaign to every subscribed number, with outcomes, links and clicks."""
    campaign = Campaign(
        shop_id=shop.id,
        name="Black Friday early access",
        status="sent",
        body="{brand}: Black Friday starts now for subscribers: 25% off with {discount_code} "
        f"{CAMPAIGN_URL}",
        audience={
            "rules": {"builtin": "all"},
            "exclusions": {},
            "segment_id": None,
            "segment_name": None,
            "snapshot_at": sent_at.isoformat(),
        },
        send_at=sent_at,
        started_at=sent_at,
        materialized_at=sent_at,
        audience_complete_at=sent_at,
        finished_at=sent_at + timedelta(minutes=4),
    )
    db.session.add(campaign)
    db.session.flush()
    params = {"shop_id": shop.id, "cid": campaign.id, "sent": _stamp(sent_at)}
    db.session.execute(
        text(f"""
        INSERT INTO message (shop_id, subscriber_id, kind, campaign_id, status, marketing,
            due_at, body, segments, encoding, price, provider_sid, error_code, attempts,
            sent_at, delivered_at, failed_at, created_at, updated_at)
        SELECT s.shop_id, s.id, 'campaign', :cid, {DELIVERY_SQL}, true, :sent,
               'Tidings Demo: Black Friday starts now for subscribers', 1, 'GSM-7',
               {CAMPAIGN_PRICE}, 'SMdemo' || CAST(:cid AS TEXT) || '_' || CAST(s.id AS TEXT),
               CASE WHEN {DELIVERY_SQL} = 'failed' THEN 30007 ELSE NULL END, 1, :sent,
               CASE WHEN {DELIVERY_SQL} = 'delivered' THEN :sent ELSE NULL END,
               CASE WHEN {DELIVERY_SQL} = 'delivered' THEN NULL ELSE :sent END, :sent, :sent
        FROM subscriber s WHERE s.shop_id = :shop_id AND s.status = 'subscribed' ORDER BY s.id
    """),
        params,
    )
    db.session.execute(
        text("""
        INSERT INTO link (shop_id, token, message_id, subscriber_id, campaign_id, url,
            created_at, updated_at)
        SELECT m.shop_id, 'demo' || CAST(m.id + 10000000 AS TEXT), m.id, m.subscriber_id,
               m.campaign_id,
               :url, m.sent_at, m.sent_at
        FROM message m WHERE m.campaign_id = :cid ORDER BY m.id
    """),
        {**params, "url": CAMPAIGN_URL},
    )
    db.session.execute(
        text("""
        INSERT INTO click (shop_id, link_id, message_id, subscriber_id, clicked_at, is_bot,
            created_at, updated_at)
        SELECT l.shop_id, l.id, l.message_id, l.subscriber_id, :sent, false, :sent, :sent
        FROM link l JOIN message m ON m.id = l.message_id
        WHERE l.campaign_id = :cid AND m.status = 'delivered' AND (l.id * 17) % 100 < 12
        ORDER BY l.id
    """),
        params,
    )
    campaign.recipients_count = int(
        db.session.scalar(
            text("SELECT count(*) FROM message WHERE campaign_id = :cid"), {"cid": campaign.id}
        )
        or 0
    )
    return campaign


def attribute_orders(shop: Shop, campaign: Campaign) -> None:
    """Clickers' orders placed after the campaign, 40 % of them, credited to it by click.
    Only orders after the send are looked at (ix_order_shop_created): a few per cent."""
    db.session.execute(
        text("""
        UPDATE shop_order SET message_id = (SELECT c.message_id FROM click c
                 JOIN link l ON l.id = c.link_id
                 WHERE c.subscriber_id = shop_order.subscriber_id AND l.campaign_id = :cid
                 ORDER BY c.id LIMIT 1),
               campaign_id = :cid, attribution_reason = 'click', attributed_at = ordered_at
        WHERE shop_id = :shop_id AND ordered_at >= :sent AND message_id IS NULL
          AND (id * 7) % 100 < 40
          AND subscriber_id IN (SELECT c.subscriber_id FROM click c
                 JOIN link l ON l.id = c.link_id WHERE l.campaign_id = :cid)
    """),
        {"shop_id": shop.id, "cid": campaign.id, "sent": _stamp(campaign.send_at)},
    )


def seed_demo(domain: str, *, subscribers: int, orders: int) -> DemoSummary:
    """Replace the demo shop's data with a fresh, deterministic data set."""
    if subscribers < 0 or orders < 0:
        raise ValueError("subscribers and orders must be 0 or more")
    now = utcnow().replace(microsecond=0)
    sent_at = now - timedelta(days=CAMPAIGN_DAYS_AGO)
    plan = OrderPlan(subscribers, orders if subscribers else 0)
    shop = ensure_demo_shop(domain)
    clear_shop_data(shop)
    db.session.flush()
    with indexes_rebuilt_after(Subscriber.__table__, subscribers):
        insert_subscribers(shop, plan, now=now, sent_at=sent_at)
    with indexes_rebuilt_after(Order.__table__, plan.orders):
        insert_orders(shop, plan, now=now)
    with (
        indexes_rebuilt_after(Message.__table__, subscribers),
        indexes_rebuilt_after(Link.__table__, subscribers),
    ):
        campaign = insert_sent_campaign(shop, sent_at=sent_at)
    attribute_orders(shop, campaign)
    db.session.commit()
    if _postgres():
        # Fresh planner statistics, so the first segment count uses the right plans.
        db.session.execute(text("ANALYZE subscriber, shop_order, message, link, click"))
        db.session.commit()
    return DemoSummary(domain, subscribers, plan.orders, campaign.recipients_count)
