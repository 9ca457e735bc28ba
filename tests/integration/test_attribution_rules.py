"""The attribution rule set: code always, else the last human click inside the window, else
(when on) the last delivery inside the view-through window; recompute on request."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from flask.testing import FlaskClient

from shopify_app.extensions import db
from shopify_app.models import Flow, FlowRun, Order, Shop
from shopify_app.services.attribution import attribute_order, recompute_shop
from shopify_app.services.orders import ingest_order
from tests.conftest import ApiClient, make_shop
from tests.integration.analytics_support import (
    at,
    campaign,
    click,
    issued_code,
    link,
    message,
    subscriber,
)

ORDER_TIME = at("2026-10-20T18:00:00+00:00")
SENT = at("2026-10-12T15:00:00+00:00")


def payload(
    order_id: int,
    *,
    when=ORDER_TIME,
    phone: str | None = None,
    codes: tuple[str, ...] = (),
    landing: str | None = None,
    customer_id: int | None = None,
    total: str = "50.00",
    **extra: Any,
) -> dict:
    return {
        "id": order_id,
        "name": f"#{order_id}",
        "created_at": when.isoformat(),
        "updated_at": when.isoformat(),
        "currency": "USD",
        "presentment_currency": "USD",
        "total_price": total,
        "total_price_set": {
            "shop_money": {"amount": total, "currency_code": "USD"},
            "presentment_money": {"amount": total, "currency_code": "USD"},
        },
        "test": False,
        "cancelled_at": None,
        "phone": phone,
        "landing_site": landing,
        "discount_codes": [{"code": c, "amount": "5.00", "type": "fixed_amount"} for c in codes],
        "customer": {"id": customer_id} if customer_id else None,
        "refunds": [],
        **extra,
    }


def ingest(shop: Shop, data: dict) -> Order:
    order = ingest_order(shop, data, triggered_at=ORDER_TIME)
    db.session.commit()
    return order


def set_attribution(shop: Shop, **values: Any) -> None:
    shop.settings = {**shop.settings, "attribution": {**shop.setting("attribution"), **values}}
    db.session.commit()


@pytest.fixture
def ava(shop: Shop):
    return subscriber(shop, "+16175550101", customer_id=501)


def test_click_inside_window_attributes_and_outside_does_not(shop: Shop, ava) -> None:
    """Window 5 days: a click 4d23h before counts; one exactly 5 days before does not."""
    spring = campaign(shop, "Spring")
    msg = message(shop, ava, sent=SENT, campaign_id=spring.id)
    row = link(shop, msg, "SpringLink000001")
    click(shop, row, ORDER_TIME - timedelta(days=5))
    old = ingest(shop, payload(1, phone="+16175550101"))
    assert old.attribution_reason is None and old.subscriber_id == ava.id

    click(shop, row, ORDER_TIME - timedelta(days=5) + timedelta(minutes=1))
    fresh = ingest(shop, payload(2, phone="+16175550101"))
    assert (fresh.attribution_reason, fresh.message_id, fresh.campaign_id) == (
        "click",
        msg.id,
        spring.id,
    )


def test_click_after_the_order_and_bot_clicks_do_not_count(shop: Shop, ava) -> None:
    """Only human clicks made before the order attribute it."""
    msg = message(shop, ava, sent=SENT, campaign_id=campaign(shop).id)
    row = link(shop, msg, "LinkAfterOrder01")
    click(shop, row, ORDER_TIME - timedelta(hours=1), bot=True)
    click(shop, row, ORDER_TIME + timedelta(minutes=5))
    order = ingest(shop, payload(3, phone="+16175550101"))
    assert order.attribution_reason is None


def test_window_is_the_shop_setting(shop: Shop, ava) -> None:
    """click_window_days = 2 excludes a click 3 days old."""
    set_attribution(shop, click_window_days=2)
    msg = message(shop, ava, sent=SENT, campaign_id=campaign(shop).id)
    click(shop, link(shop, msg, "ShortWindow00001"), ORDER_TIME - timedelta(days=3))
    assert ingest(shop, payload(4, phone="+16175550101")).attribution_reason is None


def test_code_always_attributes_even_long_after(shop: Shop, ava) -> None:
    """A unique code from a message sent 60 days earlier wins over a recent click elsewhere."""
    old_campaign = campaign(shop, "Summer")
    coded = message(shop, ava, sent=ORDER_TIME - timedelta(days=60), campaign_id=old_campaign.id)
    issued_code(shop, coded, "SMS-SUMMER22")
    recent = message(shop, ava, sent=SENT, campaign_id=campaign(shop, "Fall").id)
    click(shop, link(shop, recent, "RecentClick00001"), ORDER_TIME - timedelta(hours=2))
    order = ingest(shop, payload(5, codes=("WELCOME10", "sms-summer22")))
    assert (order.attribution_reason, order.message_id, order.campaign_id) == (
        "discount",
        coded.id,
        old_campaign.id,
    )
    assert order.subscriber_id == ava.id  # the code names its subscriber


def test_shared_code_finds_the_buyers_message(shop: Shop, ava) -> None:
    """A shared code: the campaign's message to this buyer; an unknown buyer → the campaign."""
    sale = campaign(shop, "Shared", discount_mode="shared")
    msg = message(shop, ava, sent=SENT, campaign_id=sale.id)
    issued_code(shop, msg, "SPRING15", mode="shared")
    known = ingest(shop, payload(6, phone="+1 617 555 0101", codes=("SPRING15",)))
    assert (known.attribution_reason, known.message_id, known.campaign_id) == (
        "discount",
        msg.id,
        sale.id,
    )
    stranger = ingest(shop, payload(7, phone="+16175550199", codes=("spring15",)))
    assert (stranger.attribution_reason, stranger.message_id, stranger.campaign_id) == (
        "discount",
        None,
        sale.id,
    )


def test_view_through_only_when_on(shop: Shop, ava) -> None:
    """A delivery 3 h before the order: nothing by default; view when view-through is on,
    but not beyond its hours."""
    msg = message(shop, ava, sent=ORDER_TIME - timedelta(hours=3), campaign_id=campaign(shop).id)
    assert ingest(shop, payload(8, phone="+16175550101")).attribution_reason is None
    set_attribution(shop, view_through=True, view_through_hours=24)
    viewed = ingest(shop, payload(9, phone="+16175550101"))
    assert (viewed.attribution_reason, viewed.message_id) == ("view", msg.id)
    set_attribution(shop, view_through_hours=2)
    assert ingest(shop, payload(10, phone="+16175550101")).attribution_reason is None


def test_last_click_wins(shop: Shop, ava) -> None:
    """Two campaigns clicked: the later click takes the order."""
    first = message(shop, ava, sent=SENT, campaign_id=campaign(shop, "A").id)
    second = message(shop, ava, sent=SENT, campaign_id=campaign(shop, "B").id)
    click(shop, link(shop, first, "FirstClick000001"), ORDER_TIME - timedelta(hours=1))
    click(shop, link(shop, second, "SecondClick00001"), ORDER_TIME - timedelta(hours=5))
    assert ingest(shop, payload(11, phone="+16175550101")).message_id == first.id


def test_recognition_by_ref_then_phone_then_customer(shop: Shop, ava) -> None:
    """The landing-site ref names the subscriber even with another person's phone; a
    customer id alone finds the subscriber too."""
    ben = subscriber(shop, "+16175550102")
    ben_msg = message(shop, ben, sent=SENT, campaign_id=campaign(shop).id)
    ben_link = link(shop, ben_msg, "BenLink000000001")
    click(shop, ben_link, ORDER_TIME - timedelta(days=1))
    by_ref = ingest(
        shop,
        payload(
            12, phone="+16175550101", landing="/p/x?utm_source=tidings&tidings_ref=BenLink000000001"
        ),
    )
    assert (by_ref.subscriber_id, by_ref.attribution_reason) == (ben.id, "click")
    by_customer = ingest(shop, payload(13, customer_id=501))
    assert by_customer.subscriber_id == ava.id


def test_landing_ref_without_recorded_click_counts_as_click(shop: Shop, ava) -> None:
    """The redirect never waits for the click row; the ref in the landing site is evidence."""
    msg = message(shop, ava, sent=ORDER_TIME - timedelta(days=1), campaign_id=campaign(shop).id)
    link(shop, msg, "NoClickRow000001")
    order = ingest(shop, payload(14, landing="/?tidings_ref=NoClickRow000001"))
    assert (order.attribution_reason, order.message_id) == ("click", msg.id)


def test_flow_message_gives_flow_id(shop: Shop, ava) -> None:
    """A click on a flow message attributes the order to the flow (through its run)."""
    flow = Flow(shop_id=shop.id, kind="abandoned_checkout", name="Cart reminder", enabled=True)
    db.session.add(flow)
    db.session.flush()
    run = FlowRun(shop_id=shop.id, flow_id=flow.id, subscriber_id=ava.id, trigger_key="c1")
    db.session.add(run)
    db.session.flush()
    msg = message(shop, ava, sent=SENT, flow_run_id=run.id, flow_step=1, kind="flow")
    click(shop, link(shop, msg, "FlowLink00000001"), ORDER_TIME - timedelta(hours=3))
    order = ingest(shop, payload(15, phone="+16175550101"))
    assert (order.flow_id, order.campaign_id, order.message_id) == (flow.id, None, msg.id)


def test_attributed_once_updates_do_not_move_it(shop: Shop, ava) -> None:
    """An update after a newer click elsewhere keeps the first attribution and its time."""
    first = message(shop, ava, sent=SENT, campaign_id=campaign(shop, "A").id)
    click(shop, link(shop, first, "OnceLink00000001"), ORDER_TIME - timedelta(hours=6))
    order = ingest(shop, payload(16, phone="+16175550101"))
    attributed_at = order.attributed_at
    other = message(shop, ava, sent=SENT, campaign_id=campaign(shop, "B").id)
    click(shop, link(shop, other, "OnceLink00000002"), ORDER_TIME - timedelta(hours=1))
    later = payload(16, phone="+16175550101", total="55.00")
    later["updated_at"] = (ORDER_TIME + timedelta(hours=1)).isoformat()
    again = ingest(shop, later)
    assert (again.message_id, again.attributed_at, again.total) == (
        first.id,
        attributed_at,
        Decimal("55.00"),
    )
    assert attribute_order(again).message_id == first.id


def test_recompute_after_window_change(shop: Shop, ava) -> None:
    """Widening the window re-attributes a past order; narrowing it back releases it."""
    msg = message(shop, ava, sent=SENT, campaign_id=campaign(shop).id)
    click(shop, link(shop, msg, "RecomputeLink001"), ORDER_TIME - timedelta(days=7))
    order_id = ingest(shop, payload(17, phone="+16175550101")).id
    set_attribution(shop, click_window_days=10)
    summary = recompute_shop(shop.id)
    assert (summary.orders, summary.attributed, summary.changed) == (1, 1, 1)
    assert db.session.get(Order, order_id).message_id == msg.id
    set_attribution(shop, click_window_days=5)
    assert recompute_shop(shop.id).attributed == 0
    assert db.session.get(Order, order_id).attribution_reason is None


def test_recompute_through_the_api(
    client: FlaskClient, api: ApiClient, run_jobs, shop: Shop, ava
) -> None:
    """POST queues one job per shop; after it ran, GET reports the counts. Another shop's
    token sees only its own status."""
    msg = message(shop, ava, sent=SENT, campaign_id=campaign(shop).id)
    click(shop, link(shop, msg, "ApiRecompute0001"), ORDER_TIME - timedelta(days=7))
    ingest(shop, payload(18, phone="+16175550101"))
    set_attribution(shop, click_window_days=8)
    queued = api.post("/api/analytics/attribution/recompute")
    assert queued.status_code == 202 and queued.get_json()["status"] == "queued"
    assert (
        api.post("/api/analytics/attribution/recompute").get_json()["job_id"]
        == queued.get_json()["job_id"]
    )
    run_jobs()
    done = api.get("/api/analytics/attribution/recompute").get_json()
    assert (done["status"], done["orders"], done["attributed"], done["changed"]) == (
        "done",
        1,
        1,
        1,
    )
    other = make_shop("another-store.myshopify.com")
    other_api = ApiClient(client, other.domain)
    assert other_api.get("/api/analytics/attribution/recompute").get_json() == {"status": "never"}
