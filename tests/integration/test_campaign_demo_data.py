"""`flask demo`: the demo shop's data set — consistent counters, a finished campaign with its
results, the same data on every run — and the command refusing production."""

from __future__ import annotations

from decimal import Decimal

from flask import Flask
from sqlalchemy import func, inspect, select

from shopify_app.extensions import db
from shopify_app.models import (
    Campaign,
    Click,
    ConsentEvent,
    Link,
    Message,
    Order,
    Shop,
    Subscriber,
)
from shopify_app.services import demo_data, segments, stats
from shopify_app.services.demo_data import OrderPlan, seed_demo

DOMAIN = "demo-test.myshopify.com"


def shop_of(domain: str) -> Shop:
    shop = Shop.by_domain(domain)
    assert shop is not None
    return shop


def counters(shop_id: int) -> dict[int, tuple[int, Decimal, object]]:
    rows = db.session.execute(
        select(
            Subscriber.id, Subscriber.orders_count, Subscriber.total_spent, Subscriber.last_order_at
        ).where(Subscriber.shop_id == shop_id)
    ).all()
    return {
        sid: (n, Decimal(str(spent)).quantize(Decimal("0.01")), last)
        for sid, n, spent, last in rows
    }


def from_orders(shop_id: int) -> dict[int, tuple[int, Decimal, object]]:
    rows = db.session.execute(
        select(
            Order.subscriber_id,
            func.count(),
            func.sum(Order.total - Order.refunded),
            func.max(Order.ordered_at),
        )
        .where(Order.shop_id == shop_id)
        .group_by(Order.subscriber_id)
    ).all()
    return {
        sid: (int(n), Decimal(str(spent)).quantize(Decimal("0.01")), last)
        for sid, n, spent, last in rows
    }


def test_demo_data_is_consistent(app: Flask) -> None:
    summary = seed_demo(DOMAIN, subscribers=400, orders=900)
    assert (summary.subscribers, summary.orders) == (400, 900)
    shop = shop_of(DOMAIN)
    n_subs = db.session.scalar(select(func.count()).where(Subscriber.shop_id == shop.id))
    assert n_subs == 400
    assert db.session.scalar(select(func.count()).where(Order.shop_id == shop.id)) == 900
    # Every subscriber's counters are exactly what their orders add up to.
    kept = counters(shop.id)
    found = from_orders(shop.id)
    assert {sid: kept[sid] for sid in found} == found
    assert all(
        n == 0 and spent == 0 and last is None
        for sid, (n, spent, last) in kept.items()
        if sid not in found
    )
    buyers = len(found)
    assert 0 < buyers <= 400 * 60 // 100 and len({n for n, _, _ in found.values()}) > 2
    # The built-ins split the sendable list between past buyers and the never-purchased.
    everyone = segments.count(shop.id, {"builtin": "all"})
    assert everyone == db.session.scalar(
        select(func.count()).where(Subscriber.shop_id == shop.id, Subscriber.status == "subscribed")
    )
    assert (
        segments.count(shop.id, {"builtin": "past_buyers"})
        + segments.count(shop.id, {"builtin": "never_purchased"})
        == everyone
    )
    # Consent is on record for everyone who was ever subscribed.
    consented = db.session.scalar(select(func.count()).where(ConsentEvent.shop_id == shop.id))
    assert consented == db.session.scalar(
        select(func.count()).where(Subscriber.shop_id == shop.id, Subscriber.status != "pending")
    )


def test_demo_campaign_has_results(app: Flask) -> None:
    summary = seed_demo(DOMAIN, subscribers=400, orders=900)
    shop = shop_of(DOMAIN)
    campaign = db.session.scalars(select(Campaign).where(Campaign.shop_id == shop.id)).one()
    assert campaign.status == "sent" and campaign.recipients_count == summary.campaign_messages
    assert summary.campaign_messages == segments.count(shop.id, {"builtin": "all"})
    report = stats.campaign_stats(shop.id, campaign.id)
    assert report["sent"] == summary.campaign_messages
    assert 0 < report["delivered"] < report["sent"]
    assert report["unique_clicks"] > 0
    clicks = db.session.scalar(select(func.count()).where(Click.shop_id == shop.id))
    assert report["clicks"] == clicks
    # Attributed orders are clickers' orders placed after the send, credited to their text.
    attributed = db.session.scalars(
        select(Order).where(Order.shop_id == shop.id, Order.campaign_id == campaign.id)
    ).all()
    for placed in attributed:
        message = db.session.get(Message, placed.message_id)
        assert message.subscriber_id == placed.subscriber_id
        assert placed.ordered_at >= campaign.send_at
    assert report["orders"] == len(attributed)
    # The recipients' own counters say they were texted.
    texted = db.session.scalar(
        select(func.count()).where(Subscriber.shop_id == shop.id, Subscriber.messages_received == 1)
    )
    assert texted == summary.campaign_messages


def test_demo_short_links_open(app: Flask) -> None:
    """Every demo link, the first message's included, has a token the redirect accepts."""
    seed_demo(DOMAIN, subscribers=50, orders=60)
    shop = shop_of(DOMAIN)
    tokens = db.session.scalars(
        select(Link.token).where(Link.shop_id == shop.id).order_by(Link.id)
    ).all()
    assert tokens
    client = app.test_client()
    for token in (tokens[0], tokens[-1]):
        response = client.head(f"/r/{token}")
        assert response.status_code == 302, (token, response.status_code)


def test_demo_is_the_same_on_every_run(app: Flask) -> None:
    seed_demo(DOMAIN, subscribers=300, orders=500)
    shop = shop_of(DOMAIN)
    first = sorted(
        (phone, n, str(spent))
        for phone, n, spent in db.session.execute(
            select(Subscriber.phone, Subscriber.orders_count, Subscriber.total_spent).where(
                Subscriber.shop_id == shop.id
            )
        )
    )
    seed_demo(DOMAIN, subscribers=300, orders=500)
    again = sorted(
        (phone, n, str(spent))
        for phone, n, spent in db.session.execute(
            select(Subscriber.phone, Subscriber.orders_count, Subscriber.total_spent).where(
                Subscriber.shop_id == shop.id
            )
        )
    )
    assert again == first
    assert db.session.scalar(select(func.count()).where(Campaign.shop_id == shop.id)) == 1
    # The first run's messages went with it (they have no cascade from campaign or subscriber).
    campaign = db.session.scalars(select(Campaign).where(Campaign.shop_id == shop.id)).one()
    messages = db.session.scalar(select(func.count()).where(Message.shop_id == shop.id))
    assert messages == campaign.recipients_count


def test_order_plan_stays_within_the_buyers() -> None:
    """The formula's subscriber index never leaves the buyers, even at full scale."""
    plan = OrderPlan(1_000_000, 5_000_000)
    b, m = plan.buyers, plan.orders
    for j in (1, 2, m // 3, m // 2, m - 1, m):
        k = (((j - 1) * b) // m) * (3 * m - (j - 1)) // (2 * m)
        assert 0 <= k < b
    assert (m * b) * 3 < 2**63  # no overflow in the integer arithmetic


def test_flask_demo_command(app: Flask) -> None:
    app.config["DEMO_SHOP"] = DOMAIN
    result = app.test_cli_runner().invoke(args=["demo", "--subscribers", "50", "--orders", "20"])
    assert result.exit_code == 0, result.output
    assert f"demo shop {DOMAIN}: 50 subscribers, 20 orders" in result.output
    shop = shop_of(DOMAIN)
    assert db.session.scalar(select(func.count()).where(Subscriber.shop_id == shop.id)) == 50


def test_flask_demo_refuses_production(app: Flask) -> None:
    app.config["DEMO_SHOP"] = DOMAIN
    before = app.config["ENV"]
    app.config["ENV"] = "production"
    try:
        result = app.test_cli_runner().invoke(args=["demo", "--subscribers", "5"])
    finally:
        app.config["ENV"] = before
    assert result.exit_code != 0
    assert "development only" in result.output
    assert Shop.by_domain(DOMAIN) is None


def test_big_runs_build_the_indexes_after(app: Flask, monkeypatch) -> None:
    """Above the threshold the plain indexes are dropped for the insert (PostgreSQL) and are
    all there again afterwards, with the same data as a small run."""
    monkeypatch.setattr(demo_data, "REBUILD_INDEXES_FROM", 1)
    seed_demo(DOMAIN, subscribers=200, orders=300)
    shop = shop_of(DOMAIN)
    kept = counters(shop.id)
    found = from_orders(shop.id)
    assert {sid: kept[sid] for sid in found} == found
    names = {
        table: {i["name"] for i in inspect(db.engine).get_indexes(table)}
        for table in ("subscriber", "shop_order", "message", "link")
    }
    for model in (Subscriber, Order, Message, Link):
        table = model.__table__
        expected = {i.name for i in table.indexes if not i.unique}
        assert expected <= names[table.name], (table.name, expected - names[table.name])
