"""Order webhooks end to end (signed delivery → job → rows) with realistic payloads: exactly
the revenue each order should bring, whatever the delivery order and repeats."""

from __future__ import annotations

from decimal import Decimal

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from shopify_app.extensions import db
from shopify_app.models import Order, OrderRefund, Shop, Subscriber
from shopify_app.services.stats import campaign_stats
from tests.conftest import SHOP_DOMAIN
from tests.integration.analytics_support import (
    at,
    campaign,
    click,
    fixture,
    issued_code,
    link,
    message,
    subscriber,
)
from tests.integration.webhook_support import post_shopify

REF_BEN = "BenRef0000000001"


def deliver(
    client: FlaskClient, run_jobs, topic: str, payload: dict, webhook_id: str | None = None
) -> None:
    response = post_shopify(client, topic, payload, shop=SHOP_DOMAIN, webhook_id=webhook_id)
    assert response.status_code == 200, response.data
    run_jobs()


def order_row(shopify_id: int) -> Order:
    shop = Shop.by_domain(SHOP_DOMAIN)
    return db.session.scalars(
        Order.for_shop(shop.id).where(Order.shopify_order_id == shopify_id)
    ).one()


@pytest.fixture
def fall(shop: Shop) -> dict:
    """Ava got a unique code, Ben tapped a link the day before his order, Cleo tapped six days
    before hers (and a link-preview bot hit her link the same morning)."""
    ava = subscriber(shop, "+16175550101", first_name="Ava", customer_id=7310044012582)
    ben = subscriber(shop, "+16175550102", first_name="Ben")
    cleo = subscriber(shop, "+16175550103", first_name="Cleo")
    fall = campaign(shop, "Fall sale", discount_mode="unique")
    sent = at("2026-10-10T15:00:00+00:00")
    m_ava = message(shop, ava, sent=sent, campaign_id=fall.id)
    m_ben = message(shop, ben, sent=sent, campaign_id=fall.id)
    m_cleo = message(shop, cleo, sent=sent, campaign_id=fall.id)
    issued_code(shop, m_ava, "SMS-ABCD2345")
    link(shop, m_ava, "AvaRef0000000001")
    ben_link = link(shop, m_ben, REF_BEN)
    cleo_link = link(shop, m_cleo, "CleoRef000000001")
    click(shop, ben_link, at("2026-10-14T09:30:00-04:00"))
    click(shop, cleo_link, at("2026-10-11T18:00:00-04:00"))  # 6 days before her order
    click(shop, cleo_link, at("2026-10-17T10:00:00-04:00"), bot=True)
    db.session.commit()
    return {
        "shop": shop.id,
        "campaign": fall.id,
        "ava": ava.id,
        "ben": ben.id,
        "cleo": cleo.id,
        "m_ava": m_ava.id,
        "m_ben": m_ben.id,
    }


def test_realistic_orders_give_exact_attributed_revenue(
    client: FlaskClient, run_jobs, shop: Shop, fall: dict
) -> None:
    """Two codes, an edit, a stale update, refunds in two currencies, a test order, a
    cancelled order and a click outside the window: revenue 59.50 by code + 91.30 by click."""
    deliver(client, run_jobs, "orders/create", fixture("order_with_codes"), "w1")
    deliver(client, run_jobs, "orders/create", fixture("order_with_codes"), "w1-again")
    deliver(client, run_jobs, "orders/updated", fixture("order_edited"))
    # orders/paid with the pre-edit state arrives last: older updated_at, ignored.
    deliver(client, run_jobs, "orders/paid", fixture("order_with_codes"))
    deliver(client, run_jobs, "refunds/create", fixture("refund_usd"))
    deliver(client, run_jobs, "refunds/create", fixture("refund_usd"))  # redelivered
    deliver(client, run_jobs, "orders/create", fixture("order_presentment_eur", ref=REF_BEN))
    deliver(client, run_jobs, "refunds/create", fixture("refund_eur"))
    deliver(client, run_jobs, "orders/create", fixture("order_test"))
    deliver(client, run_jobs, "orders/updated", fixture("order_cancelled", ref=REF_BEN))
    deliver(client, run_jobs, "orders/create", fixture("order_no_recent_touch"))

    edited = order_row(5820041936934)
    assert (edited.total, edited.refunded, edited.net_total) == (
        Decimal("85.00"),
        Decimal("25.50"),
        Decimal("59.50"),
    )
    assert edited.attribution_reason == "discount"
    assert edited.message_id == fall["m_ava"] and edited.subscriber_id == fall["ava"]
    assert [c["code"] for c in edited.discount_codes] == ["SMS-ABCD2345", "FREESHIP"]

    eur = order_row(5820042395686)
    assert (eur.currency, eur.total, eur.presentment_currency, eur.presentment_total) == (
        "USD",
        Decimal("118.80"),
        "EUR",
        Decimal("108.00"),
    )
    assert (eur.refunded, eur.net_total) == (Decimal("27.50"), Decimal("91.30"))
    assert (eur.attribution_reason, eur.message_id) == ("click", fall["m_ben"])

    test_order = order_row(5820042428454)
    assert test_order.test and test_order.net_total == Decimal("0.00")
    assert test_order.attribution_reason == "discount"  # attributed, but worth nothing

    cancelled = order_row(5820042461222)
    assert cancelled.cancelled_at is not None and cancelled.net_total == Decimal("0.00")

    untouched = order_row(5820042493990)
    assert untouched.subscriber_id == fall["cleo"]  # recognised by phone
    assert untouched.attribution_reason is None and untouched.message_id is None

    report = campaign_stats(fall["shop"], fall["campaign"])
    assert report["orders"] == 2
    assert report["revenue"] == "150.80"
    assert report["revenue_by_reason"] == {"discount": "59.50", "click": "91.30", "view": "0.00"}
    assert report["orders_by_reason"] == {"discount": 1, "click": 1, "view": 0}
    assert report["aov"] == "75.40"
    assert len(list(db.session.scalars(Order.for_shop(fall["shop"])))) == 5
    assert len(list(db.session.scalars(OrderRefund.for_shop(fall["shop"])))) == 2

    # Counters recomputed from orders: tests and cancellations do not count.
    db.session.expire_all()
    ava = db.session.get(Subscriber, fall["ava"])
    ben = db.session.get(Subscriber, fall["ben"])
    assert (ava.orders_count, ava.total_spent) == (1, Decimal("59.50"))
    assert ava.last_order_at == at("2026-10-14T14:32:10-04:00")
    assert (ben.orders_count, ben.total_spent) == (1, Decimal("91.30"))


def test_same_order_delivered_twice_counts_once(
    client: FlaskClient, run_jobs, shop: Shop, fall: dict
) -> None:
    """Two deliveries of one orders/create (distinct webhook ids) make one order, once."""
    payload = fixture("order_with_codes")
    deliver(client, run_jobs, "orders/create", payload, "first")
    first = order_row(5820041936934)
    first_id, attributed_at = first.id, first.attributed_at
    deliver(client, run_jobs, "orders/create", payload, "second")
    again = order_row(5820041936934)
    assert again.id == first_id and again.attributed_at == attributed_at
    report = campaign_stats(fall["shop"], fall["campaign"])
    assert (report["orders"], report["revenue"]) == (1, "76.50")
    db.session.expire_all()
    ava = db.session.get(Subscriber, fall["ava"])
    assert (ava.orders_count, ava.total_spent) == (1, Decimal("76.50"))


def test_refund_before_its_order(client: FlaskClient, run_jobs, shop: Shop, fall: dict) -> None:
    """refunds/create can overtake orders/create: the refund is kept and applied on arrival."""
    deliver(client, run_jobs, "refunds/create", fixture("refund_usd"))
    deliver(client, run_jobs, "orders/create", fixture("order_with_codes"))
    row = order_row(5820041936934)
    assert (row.total, row.refunded, row.net_total) == (
        Decimal("76.50"),
        Decimal("25.50"),
        Decimal("51.00"),
    )


def test_refunds_in_order_payload_are_not_counted_twice(
    client: FlaskClient, run_jobs, shop: Shop, fall: dict
) -> None:
    """orders/updated carries the refunds array; the same refund via refunds/create is one."""
    payload = fixture("order_edited")
    payload["refunds"] = [fixture("refund_usd")]
    deliver(client, run_jobs, "orders/updated", payload)
    deliver(client, run_jobs, "refunds/create", fixture("refund_usd"))
    row = order_row(5820041936934)
    assert (row.refunded, row.net_total) == (Decimal("25.50"), Decimal("59.50"))


def test_amounts_never_come_from_presentment_money(
    client: FlaskClient, run_jobs, shop: Shop, fall: dict
) -> None:
    """Without total_price_set the shop-currency total_price is used; EUR never leaks in."""
    payload = fixture("order_presentment_eur", ref=REF_BEN)
    del payload["total_price_set"]
    deliver(client, run_jobs, "orders/create", payload)
    assert order_row(5820042395686).total == Decimal("118.80")


def test_order_for_unknown_shop_is_ignored(client: FlaskClient, run_jobs, shop: Shop) -> None:
    """A delivery for a shop we do not know creates nothing (and is answered)."""
    response = post_shopify(
        client, "orders/create", fixture("order_with_codes"), shop="unknown-shop.myshopify.com"
    )
    assert response.status_code == 200
    run_jobs()
    assert db.session.scalar(select(Order.id)) is None
