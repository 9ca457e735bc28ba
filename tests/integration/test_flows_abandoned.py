"""Abandoned-checkout flow through signed webhooks, the tick and the send workers, against the
Twilio and Shopify stand-ins: one run per checkout, the recovery link tracked, orders ending it,
a second reminder with a unique code."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from shopify_app.extensions import db
from shopify_app.models import DiscountCode, Link, Shop, Subscriber, utcnow
from tests.integration import consent_support
from tests.integration.flows_support import (
    PHONE,
    TOKEN,
    ago,
    checkout,
    daytime,
    deliver,
    enable,
    flow_shop,
    flow_texts,
    order,
    runs,
    tick_and_send,
    time_passes,
)

shopify_server_fixture = consent_support.shopify_server_fixture
fake_shopify_fixture = consent_support.fake_shopify_fixture


def _started(client, shop: Shop, run_jobs, **payload) -> int:
    """The flow on, a consenting checkout delivered, the shopper's zone in daytime."""
    shop_id = shop.id
    flow_shop(shop)
    enable(shop_id, "abandoned_checkout")
    deliver(client, "checkouts/create", checkout(**payload), run_jobs)
    daytime(shop_id)
    return shop_id


def test_checkout_updated_ten_times_gives_one_run_and_one_text(client, shop, fake_twilio, run_jobs):
    """Ten checkouts/update for one token: one run; after the wait one text whose recovery
    URL is a tracked short link to the checkout."""
    shop_id = _started(client, shop, run_jobs, updated=ago(minutes=20))
    for minutes in range(10, 0, -1):
        deliver(client, "checkouts/update", checkout(updated=ago(minutes=minutes)), run_jobs)
    [run] = runs(shop_id)
    assert (run.trigger_key, run.status, run.step_index) == (f"checkout:{TOKEN}", "active", 1)
    flow_id = run.flow_id
    # The wait counts from the shopper's latest activity (1 minute ago), not the first.
    assert abs(run.next_step_at - (ago(minutes=1) + timedelta(minutes=30))) < timedelta(seconds=5)

    assert tick_and_send(run_jobs).messages == 0  # still waiting
    time_passes(minutes=31)
    report = tick_and_send(run_jobs)
    assert report.messages == 1 and tick_and_send(run_jobs).messages == 0

    [text] = flow_texts(shop_id)
    assert (text.status, text.flow_step) == ("sent", 1)
    [sent] = [m for m in fake_twilio.messages if "cart" in m.body]
    assert sent.to == PHONE and sent.body.startswith("Tidings Test Shop: Hi Ada")
    assert "http://localhost/r/" in sent.body and "checkouts" not in sent.body
    link = db.session.scalars(select(Link).where(Link.message_id == text.id)).one()
    assert link.url.startswith(f"https://tidings-test.myshopify.com/59485/checkouts/ac/{TOKEN}")
    assert link.utm_campaign == "abandoned_checkout" and link.flow_id == flow_id
    assert "STOP" in sent.body  # the engine's opt-out footer on a first marketing text
    [run] = runs(shop_id)
    assert (run.status, run.step_index) == ("active", 3)  # waiting 24 h for the reminder


def test_order_before_the_wait_ends_gives_no_text(client, shop, fake_twilio, run_jobs):
    """orders/create for the checkout during the wait ends the run ("purchased")."""
    shop_id = _started(client, shop, run_jobs)
    deliver(client, "orders/create", order(), run_jobs)
    [run] = runs(shop_id)
    assert (run.status, run.exit_reason) == ("exited", "purchased")
    time_passes(hours=2)
    tick_and_send(run_jobs)
    assert flow_texts(shop_id) == []


def test_order_first_then_checkout_webhook_starts_nothing(client, shop, fake_twilio, run_jobs):
    """The order's webhook arrived before the checkout's: the checkout is not abandoned."""
    shop_id = shop.id
    flow_shop(shop)
    enable(shop_id, "abandoned_checkout")
    deliver(client, "orders/create", order(), run_jobs)
    deliver(client, "checkouts/update", checkout(), run_jobs)
    assert runs(shop_id) == []


def test_completed_checkout_and_other_order_end_the_run_at_its_step(
    client, shop, fake_twilio, run_jobs
):
    """Exits are also checked when the step comes: a completed checkout, or an order by the
    subscriber after the run started (here one whose webhook carried no checkout token)."""
    shop_id = _started(client, shop, run_jobs)
    deliver(client, "checkouts/update", checkout(completed=ago(seconds=30)), run_jobs)
    assert runs(shop_id)[0].exit_reason == "purchased"

    deliver(client, "checkouts/create", checkout(token="other-token"), run_jobs)
    second = runs(shop_id)[1]
    assert second.status == "active"
    sub = db.session.get(Subscriber, second.subscriber_id)
    sub.last_order_at = utcnow()  # an order counted without going through the order trigger
    db.session.commit()
    time_passes(hours=1)
    tick_and_send(run_jobs)
    assert runs(shop_id)[1].exit_reason == "purchased"
    assert flow_texts(shop_id) == []


def test_not_consenting_checkout_of_a_stranger_starts_nothing(client, shop, fake_twilio, run_jobs):
    """No SMS consent and no subscriber with that number: nobody to text."""
    shop_id = shop.id
    flow_shop(shop)
    enable(shop_id, "abandoned_checkout")
    deliver(client, "checkouts/create", checkout(accepts_sms=False), run_jobs)
    assert runs(shop_id) == []


def test_flow_off_starts_nothing(client, shop, fake_twilio, run_jobs):
    """Default flows are disabled: a consenting checkout gets its welcome text, no run."""
    shop_id = shop.id
    flow_shop(shop)
    deliver(client, "checkouts/create", checkout(), run_jobs)
    assert runs(shop_id) == []


def test_recovery_url_on_an_unknown_custom_domain_is_moved_to_the_shop(
    client, shop, fake_twilio, run_jobs
):
    """A recovery URL on a domain the shop record does not list still becomes a tracked link:
    the same path on the myshopify domain."""
    shop_id = _started(client, shop, run_jobs, recovery_host="www.linen-and-co.example")
    time_passes(minutes=31)
    tick_and_send(run_jobs)
    [text] = flow_texts(shop_id)
    assert text.status == "sent"
    link = db.session.scalars(select(Link).where(Link.message_id == text.id)).one()
    assert link.url.startswith("https://tidings-test.myshopify.com/59485/checkouts/ac/")


def test_second_reminder_carries_a_unique_code_made_in_shopify(
    client, shop, fake_twilio, fake_shopify, run_jobs
):
    """The 24-hour reminder with a discount: the code is created in Shopify (single use)
    before the text is queued, and the text shows it."""
    shop_id = shop.id
    flow_shop(shop)
    flow = enable(shop_id, "abandoned_checkout")
    steps = [dict(s) for s in flow.steps]
    steps[3] = {
        "type": "message",
        "body": "Still yours: {checkout_url} - take 10% off with {discount_code}",
        "discount": {"value_type": "percentage", "value": "10"},
    }
    flow.steps = steps
    db.session.commit()
    deliver(client, "checkouts/create", checkout(), run_jobs)
    daytime(shop_id)
    time_passes(minutes=31)
    tick_and_send(run_jobs)
    time_passes(hours=24)
    report = tick_and_send(run_jobs)
    assert report.parked == 1  # the tick leaves the Shopify call to the discount job

    first, second = flow_texts(shop_id)
    code = db.session.scalars(
        select(DiscountCode).where(DiscountCode.message_id == second.id)
    ).one()
    assert code.status == "ready" and second.context["discount_code"] == code.code
    assert second.status == "sent" and code.code in second.body
    [call] = fake_shopify.calls_for("discountCodeBasicCreate")
    assert call.variables["input"]["code"] == code.code
    assert call.variables["input"]["usageLimit"] == 1
    [run] = runs(shop_id)
    assert run.status == "completed" and run.ended_at is not None


def test_shopify_busy_postpones_the_discount_step_then_it_goes_once(
    app, client, shop, fake_twilio, fake_shopify, run_jobs
):
    """Shopify throttling when the reminder's code is to be made: the step is put off (no
    text queued without its code), and performed once when Shopify answers again."""
    shop_id = shop.id
    flow_shop(shop)
    flow = enable(shop_id, "abandoned_checkout")
    steps = [dict(s) for s in flow.steps]
    steps[1] = {
        **steps[1],
        "body": "Back to your cart: {checkout_url} - 10% off with {discount_code}",
        "discount": {"value_type": "percentage", "value": "10"},
    }
    flow.steps = steps
    db.session.commit()
    deliver(client, "checkouts/create", checkout(), run_jobs)
    daytime(shop_id)
    time_passes(minutes=31)

    app.config["DISCOUNT_DEADLINE_SECONDS"] = 0
    fake_shopify.throttle_next(50)
    try:
        assert tick_and_send(run_jobs).parked == 1
    finally:
        app.config.pop("DISCOUNT_DEADLINE_SECONDS")
        fake_shopify._throttle_next.clear()
    assert flow_texts(shop_id) == []
    [run] = runs(shop_id)
    assert (run.status, run.step_index, run.context["discount_attempts"]) == ("active", 1, 1)
    assert run.next_step_at > utcnow() + timedelta(minutes=4)

    assert tick_and_send(run_jobs).runs == 0  # not due again before the retry time
    time_passes(minutes=6)
    tick_and_send(run_jobs)
    [text] = flow_texts(shop_id)
    code = db.session.scalars(select(DiscountCode).where(DiscountCode.message_id == text.id)).one()
    assert text.status == "sent" and code.code in text.body and code.status == "ready"
    assert len([m for m in fake_twilio.messages if "cart" in m.body]) == 1
    [run] = runs(shop_id)
    assert (run.status, run.step_index) == ("active", 3)


def test_a_recovered_checkout_shows_in_the_flow_results(api, client, shop, fake_twilio, run_jobs):
    """The shopper taps the text's link and completes the order: the run exits "purchased",
    and the flow's results (flow and step) count the text, the click, the order, its
    revenue."""
    shop_id = _started(client, shop, run_jobs)
    time_passes(minutes=31)
    tick_and_send(run_jobs)
    [text] = flow_texts(shop_id)
    link = db.session.scalars(select(Link).where(Link.message_id == text.id)).one()
    flow_id = link.flow_id
    phone_browser = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) Mobile/15E148"
    tapped = client.get(f"/r/{link.token}", headers={"User-Agent": phone_browser})
    assert tapped.status_code in (301, 302, 303, 307)
    assert tapped.headers["Location"].startswith("https://tidings-test.myshopify.com/59485/")
    run_jobs()
    deliver(client, "orders/create", order(created=ago(seconds=-2)), run_jobs)
    [run] = runs(shop_id)
    assert (run.status, run.exit_reason) == ("exited", "purchased")

    results = api.get(f"/api/flows/{flow_id}").get_json()["stats"]
    assert (results["sent"], results["unique_clicks"], results["orders"]) == (1, 1, 1)
    assert results["revenue"] == "59.90"
    assert results["runs"]["by_status"] == {"exited": 1}
    [step] = results["steps"]
    assert (step["step"], step["sent"], step["unique_clicks"], step["orders"]) == (1, 1, 1, 1)
    assert step["revenue"] == "59.90"
