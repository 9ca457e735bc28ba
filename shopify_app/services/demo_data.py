"""Demo and benchmark data, built with set-based INSERT … SELECT (no row-by-row Python loops).

The generator is deterministic: "random" choices come from multiplicative hashes of the row
number, so the same arguments give the same shop on SQLite and PostgreSQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, func, select, text

from shopify_app.extensions import db
from shopify_app.models import Campaign, Shop, Subscriber, utcnow

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


def _numbers(n_param: str) -> str:
    """A FROM clause yielding i = 1..n on either dialect."""
    if db.engine.dialect.name == "postgresql":
        return f"generate_series(CAST(1 AS BIGINT), :{n_param}) AS seq(i)"
    return (
        f"(WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s "
        f"WHERE i < :{n_param}) SELECT i FROM s) AS seq"
    )


def _ago(seconds_expr: str) -> str:
    """A timestamp `seconds_expr` seconds before :now, as the dialect stores UTCDateTime."""
    if db.engine.dialect.name == "postgresql":
        return f"(CAST(:now AS timestamptz) - make_interval(secs => ({seconds_expr})))"
    return f"strftime('%Y-%m-%d %H:%M:%f', :now, '-' || ({seconds_expr}) || ' seconds')"


def _case(expr: str, values: list[str]) -> str:
    whens = " ".join(f"WHEN {i} THEN '{v}'" for i, v in enumerate(values))
    return f"(CASE ({expr}) % {len(values)} {whens} END)"


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
    """Remove the shop's rows (everything cascades from subscribers and campaigns)."""
    from shopify_app.models import Order

    db.session.execute(delete(Order).where(Order.shop_id == shop.id))
    db.session.execute(delete(Campaign).where(Campaign.shop_id == shop.id))
    db.session.execute(delete(Subscriber).where(Subscriber.shop_id == shop.id))


def insert_subscribers(shop: Shop, count: int) -> None:
    now = utcnow()
    # (area code, line) pairs are unique: the area cycles with i, the line grows with i / 10.
    area = _case("i", [a for a, _, _ in AREA_CODES])
    zone = _case("i", [z for _, z, _ in AREA_CODES])
    region = _case("i", [r for _, _, r in AREA_CODES])
    # 90% subscribed, 7% unsubscribed, 3% pending
    status = (
        "(CASE WHEN (i * 37) % 100 < 90 THEN 'subscribed' "
        "WHEN (i * 37) % 100 < 97 THEN 'unsubscribed' ELSE 'pending' END)"
    )
    created = _ago("((i * 7919) % 15552000)")  # within 180 days
    db.session.execute(
        text(f"""
        INSERT INTO subscriber (shop_id, phone, first_name, country, region, timezone, status,
            source, subscribed_at, unsubscribed_at, phone_invalid, orders_count, total_spent,
            messages_received, created_at, updated_at)
        SELECT :shop_id,
               '+1' || {area} || CAST(2000000 + i / 10 AS TEXT),
               {_case("i * 13", ["Ava", "Liam", "Mia", "Noah", "Zoe", "Eli", "Ivy", "Leo"])},
               'US', {region}, {zone}, {status},
               {_case("i * 11", SOURCES)},
               CASE WHEN {status} = 'pending' THEN NULL ELSE {created} END,
               CASE WHEN {status} = 'unsubscribed' THEN {created} ELSE NULL END,
               false, 0, 0, 0, {created}, {created}
        FROM {_numbers("n")}
    """),
        {"shop_id": shop.id, "n": count, "now": now},
    )
    db.session.execute(
        text("""
        INSERT INTO consent_event (shop_id, subscriber_id, kind, source, occurred_at,
            consent_text, evidence_id, created_at, updated_at)
        SELECT s.shop_id, s.id, 'confirmed', s.source, s.created_at,
               'Demo consent (seeded)', 'demo', s.created_at, s.created_at
        FROM subscriber s WHERE s.shop_id = :shop_id AND s.status <> 'pending'
    """),
        {"shop_id": shop.id},
    )


def insert_orders(shop: Shop, count: int) -> None:
    if count <= 0:
        return
    now = utcnow()
    n_subs = (
        db.session.scalar(
            select(func.count()).select_from(Subscriber).where(Subscriber.shop_id == shop.id)
        )
        or 0
    )
    if n_subs == 0:
        return
    first_id = db.session.scalar(
        select(func.min(Subscriber.id)).where(Subscriber.shop_id == shop.id)
    )
    ordered = _ago("((i * 104729) % 7776000)")  # within 90 days
    total = "ROUND((((i * 7907) % 20000) + 1500) / 100.0, 2)"  # 15.00 .. 214.99
    db.session.execute(
        text(f"""
        INSERT INTO shop_order (shop_id, shopify_order_id, name, subscriber_id, currency, total,
            refunded, test, ordered_at, discount_codes, created_at, updated_at)
        SELECT :shop_id, 9000000000 + i, '#D' || CAST(i AS TEXT),
               :first_id + ((i * 2654435761) % :n_subs), :currency, {total}, 0, false,
               {ordered}, '[]', {ordered}, {ordered}
        FROM {_numbers("n")}
    """),
        {
            "shop_id": shop.id,
            "n": count,
            "now": now,
            "first_id": first_id,
            "n_subs": n_subs,
            "currency": shop.currency,
        },
    )
    _refresh_order_counters(shop)


def _refresh_order_counters(shop: Shop) -> None:
    db.session.execute(
        text("""
        UPDATE subscriber SET
          orders_count = (SELECT count(*) FROM shop_order o WHERE o.subscriber_id = subscriber.id
                          AND o.test = false AND o.cancelled_at IS NULL),
          total_spent = COALESCE((SELECT sum(o.total - o.refunded) FROM shop_order o
                          WHERE o.subscriber_id = subscriber.id AND o.test = false
                          AND o.cancelled_at IS NULL), 0),
          last_order_at = (SELECT max(o.ordered_at) FROM shop_order o
                          WHERE o.subscriber_id = subscriber.id)
        WHERE shop_id = :shop_id
    """),
        {"shop_id": shop.id},
    )


def insert_sent_campaign(shop: Shop) -> int:
    """A finished campaign to every subscribed number, with outcomes, clicks and orders."""
    now = utcnow()
    sent_at = now - timedelta(days=3)
    campaign = Campaign(
        shop_id=shop.id,
        name="Black Friday early access",
        status="sent",
        body="{brand}: Black Friday starts now for subscribers: 25% off with {discount_code} "
        "https://demo.tidings.test/collections/sale",
        audience={"builtin": "all"},
        send_at=sent_at,
        started_at=sent_at,
        finished_at=sent_at + timedelta(minutes=4),
    )
    db.session.add(campaign)
    db.session.flush()
    status = (
        "(CASE WHEN (s.id * 31) % 100 < 96 THEN 'delivered' "
        "WHEN (s.id * 31) % 100 < 98 THEN 'undelivered' ELSE 'failed' END)"
    )
    params = {"shop_id": shop.id, "cid": campaign.id, "sent": sent_at, "now": now}
    if db.engine.dialect.name != "postgresql":
        params["sent"] = sent_at.replace(tzinfo=None)
    db.session.execute(
        text(f"""
        INSERT INTO message (shop_id, subscriber_id, kind, campaign_id, status, marketing,
            due_at, body, segments, encoding, price, provider_sid, error_code, attempts,
            sent_at, delivered_at, failed_at, created_at, updated_at)
        SELECT s.shop_id, s.id, 'campaign', :cid, {status}, true, :sent,
               'Tidings Demo: Black Friday starts now for subscribers', 1, 'GSM-7', 0.0083,
               'SMdemo' || CAST(:cid AS TEXT) || '_' || CAST(s.id AS TEXT),
               CASE WHEN {status} = 'failed' THEN 30007 ELSE NULL END, 1, :sent,
               CASE WHEN {status} = 'delivered' THEN :sent ELSE NULL END,
               CASE WHEN {status} = 'delivered' THEN NULL ELSE :sent END, :sent, :sent
        FROM subscriber s WHERE s.shop_id = :shop_id AND s.status = 'subscribed' ORDER BY s.id
    """),
        params,
    )
    db.session.execute(
        text("""
        INSERT INTO link (shop_id, token, message_id, subscriber_id, campaign_id, url,
            created_at, updated_at)
        SELECT m.shop_id, 'demo' || CAST(m.id AS TEXT), m.id, m.subscriber_id, m.campaign_id,
               'https://demo.tidings.test/collections/sale', m.sent_at, m.sent_at
        FROM message m WHERE m.campaign_id = :cid ORDER BY m.id
    """),
        params,
    )
    db.session.execute(
        text("""
        INSERT INTO click (shop_id, link_id, message_id, subscriber_id, clicked_at, is_bot,
            created_at, updated_at)
        SELECT l.shop_id, l.id, l.message_id, l.subscriber_id, :sent, false, :sent, :sent
        FROM link l JOIN message m ON m.id = l.message_id
        WHERE l.campaign_id = :cid AND m.status = 'delivered' AND (l.id * 17) % 100 < 12
    """),
        params,
    )
    # Clickers who ordered within the window: attribute their orders to the campaign.
    db.session.execute(
        text("""
        UPDATE shop_order SET message_id = (SELECT c.message_id FROM click c
                 WHERE c.subscriber_id = shop_order.subscriber_id AND c.link_id IN
                 (SELECT id FROM link WHERE campaign_id = :cid) LIMIT 1),
               campaign_id = :cid, attribution_reason = 'click', attributed_at = :sent
        WHERE shop_id = :shop_id AND subscriber_id IN (SELECT c.subscriber_id FROM click c
                 JOIN link l ON l.id = c.link_id WHERE l.campaign_id = :cid)
          AND message_id IS NULL AND (id * 7) % 100 < 40
    """),
        params,
    )
    count = (
        db.session.scalar(
            select(func.count())
            .select_from(text("message"))
            .where(text("campaign_id = :cid"))
            .params(cid=campaign.id)
        )
        or 0
    )
    campaign.recipients_count = count
    return count


def seed_demo(domain: str, *, subscribers: int, orders: int) -> DemoSummary:
    """Replace the demo shop's data with a fresh, deterministic data set."""
    shop = ensure_demo_shop(domain)
    clear_shop_data(shop)
    db.session.flush()
    insert_subscribers(shop, subscribers)
    insert_orders(shop, orders)
    sent = insert_sent_campaign(shop)
    db.session.commit()
    return DemoSummary(domain, subscribers, orders, sent)
