"""The welcome series, post-purchase and win-back flows from their real triggers: a widget
sign-up confirmed by text, orders/create and orders/updated webhooks, the periodic win-back
scan — through the jobs and the send workers, against the Twilio stand-in."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from shopify_app.extensions import db, get_queue
from shopify_app.models import Message, Subscriber, utcnow
from shopify_app.services import flow_triggers, flows
from tests.integration.consent_support import add_subscriber, inbound, subscribe
from tests.integration.flows_support import (
    PHONE,
    ago,
    daytime,
    deliver,
    enable,
    flow_shop,
    flow_texts,
    iso,
    order,
    runs,
    tick_and_send,
    time_passes,
)
from tests.integration.send_support import day_zone

# --- welcome series -----------------------------------------------------------------------


def test_welcome_series_follows_the_compliance_welcome(client, shop, fake_twilio, run_jobs):
    """Widget sign-up, reply Y: the compliance welcome (with its disclosures and the sign-up
    code) goes first, the flow's offer right after it (the code too), the follow-up 3 days
    later."""
    shop = flow_shop(shop, widget={"welcome_discount": "WELCOME10"})
    shop_id = shop.id
    flow = enable(shop, "welcome")
    steps = [dict(s) for s in flow.steps]
    steps[1]["body"] = "Thanks for joining! Your 10% code {discount_code} works here: {shop_url}"
    flow.steps = steps
    db.session.commit()
    assert subscribe(client, shop, PHONE).status_code == 200
    run_jobs()
    daytime(shop_id)
    inbound(client, PHONE, "Y")
    run_jobs()
    [run] = runs(shop_id)
    assert run.trigger_key == f"welcome:{run.subscriber_id}"

    tick_and_send(run_jobs)
    bodies = [m.body for m in fake_twilio.received_to(PHONE)]
    assert len(bodies) == 3  # "Reply Y", the compliance welcome, the flow's first text
    assert "recurring automated marketing" in bodies[1] and "STOP" in bodies[1]
    assert bodies[2].startswith("Tidings Test Shop: Thanks for joining! Your 10% code WELCOME10")
    assert "https://tidings-test.myshopify.com/" not in bodies[2]  # the link is tracked

    time_passes(days=3, minutes=1)
    tick_and_send(run_jobs)
    assert len(fake_twilio.received_to(PHONE)) == 4
    assert runs(shop_id)[0].status == "completed"


def test_welcome_follow_up_is_not_sent_after_an_order(client, shop, fake_twilio, run_jobs):
    """An order between the welcome text and the follow-up ends the series ("purchased")."""
    shop = flow_shop(shop)
    shop_id = shop.id
    enable(shop, "welcome")
    sub = add_subscriber(shop, PHONE)
    flow_triggers.subscription_confirmed(shop, sub)
    db.session.commit()
    tick_and_send(run_jobs)
    time_passes(hours=1)
    deliver(client, "orders/create", order(token=None), run_jobs)
    assert runs(shop_id)[0].exit_reason == "purchased"
    time_passes(days=3)
    tick_and_send(run_jobs)
    assert [m.flow_step for m in flow_texts(shop_id)] == [1]


def test_one_welcome_series_per_subscriber(shop):
    """Opting out and back in does not start the series again."""
    shop = flow_shop(shop)
    enable(shop, "welcome")
    sub = add_subscriber(shop, PHONE)
    assert flow_triggers.subscription_confirmed(shop, sub) is not None
    assert flow_triggers.subscription_confirmed(shop, sub) is None
    db.session.commit()
    assert len(runs(shop.id)) == 1


# --- post-purchase ------------------------------------------------------------------------


def test_post_purchase_thanks_three_days_after_the_order(client, shop, fake_twilio, run_jobs):
    """orders/create from a subscriber: a run keyed by the order, due 3 days after it; the
    thank-you goes then, once, however often the order's webhooks arrive."""
    shop = flow_shop(shop)
    shop_id = shop.id
    enable(shop, "post_purchase")
    add_subscriber(shop, PHONE)
    daytime(shop_id)
    placed = ago(minutes=5)
    deliver(client, "orders/create", order(created=placed), run_jobs)
    deliver(client, "orders/paid", order(created=placed, updated_at=iso(ago(minutes=1))), run_jobs)
    [run] = runs(shop_id)
    assert run.trigger_key == "order:820982911946154508" and run.step_index == 1
    assert abs(run.next_step_at - (placed + timedelta(days=3))) < timedelta(seconds=2)

    time_passes(days=3)
    tick_and_send(run_jobs)
    [text] = flow_texts(shop_id)
    assert text.status == "sent" and "Thanks again for your order" in text.body
    assert runs(shop_id)[0].status == "completed"


def test_post_purchase_after_fulfillment(client, shop, fake_twilio, run_jobs):
    """trigger_on fulfillment: orders/create starts nothing; the order becoming fulfilled
    starts the run, counted from the fulfillment."""
    shop = flow_shop(shop)
    shop_id = shop.id
    flow = enable(shop, "post_purchase")
    flow.settings = {"trigger_on": "fulfillment"}
    db.session.commit()
    add_subscriber(shop, PHONE)
    deliver(client, "orders/create", order(), run_jobs)
    assert runs(shop_id) == []
    shipped = ago(minutes=2)
    deliver(
        client,
        "orders/updated",
        order(
            fulfillment_status="fulfilled",
            updated_at=iso(ago(seconds=30)),
            fulfillments=[{"id": 1, "status": "success", "created_at": iso(shipped)}],
        ),
        run_jobs,
    )
    [run] = runs(shop_id)
    assert abs(run.next_step_at - (shipped + timedelta(days=3))) < timedelta(seconds=2)


def test_old_order_update_starts_no_post_purchase_run(client, shop, fake_twilio, run_jobs):
    """orders/updated for a month-old order (a late refund, a tag) sends no late thank-you."""
    shop = flow_shop(shop)
    shop_id = shop.id
    enable(shop, "post_purchase")
    add_subscriber(shop, PHONE)
    deliver(client, "orders/updated", order(created=ago(days=30)), run_jobs)
    assert runs(shop_id) == []


# --- win-back -----------------------------------------------------------------------------


def _buyers(shop, last_orders: dict[str, float | None]) -> dict[str, int]:
    """Subscribers (daytime zones) whose last order was that many days ago."""
    ids = {}
    for phone, days in last_orders.items():
        sub = add_subscriber(shop, phone)
        sub.timezone = day_zone()
        sub.last_order_at = utcnow() - timedelta(days=days) if days is not None else None
        ids[phone] = sub.id
    db.session.commit()
    return ids


def test_winback_scan_starts_runs_once_per_period(shop, fake_twilio, run_jobs):
    """The scan (a periodic job) starts one run per lapsed buyer — set-based, keyed by period —
    and none for recent buyers, non-buyers or opted-out numbers; scanning again starts
    nothing; a period later the lapsed get another."""
    shop = flow_shop(shop)
    shop_id = shop.id
    enable(shop, "winback")
    ids = _buyers(
        shop,
        {
            "+12025550101": 120,
            "+12025550102": 95,
            "+12025550103": 10,
            "+12025550104": None,
            "+12025550105": 200,
        },
    )
    db.session.execute(
        update(Subscriber).where(Subscriber.id == ids["+12025550105"]).values(status="unsubscribed")
    )
    db.session.commit()

    get_queue("low").enqueue("jobs.flows.winback_scan")
    run_jobs()
    started = runs(shop_id)
    assert {r.subscriber_id for r in started} == {ids["+12025550101"], ids["+12025550102"]}
    period = started[0].context["period"]
    assert started[0].trigger_key == f"winback:{started[0].subscriber_id}:{period}"
    assert flow_triggers.winback_scan() == 0

    get_queue("default").enqueue("jobs.flows.tick")
    run_jobs()
    db.session.expire_all()
    texts = flow_texts(shop_id)
    assert len(texts) == 2 and {m.status for m in texts} == {"sent"}
    assert all("We miss you" in m.body for m in texts)

    assert flow_triggers.winback_scan(now=utcnow() + timedelta(days=30)) == 0
    # A period on: the two again, and the buyer of 10 days ago, lapsed by then.
    assert flow_triggers.winback_scan(now=utcnow() + timedelta(days=91)) == 3


def test_winback_holdout_is_chosen_in_sql_like_in_python(shop):
    """Held-out win-back runs are the subscribers the shared hash puts in the holdout."""
    shop = flow_shop(shop)
    flow = enable(shop, "winback", holdout_percent=30)
    flow_id = flow.id
    ids = _buyers(shop, {f"+1202555{i:04d}": 100 for i in range(30)})
    assert flow_triggers.winback_scan() == 30
    held = {r.subscriber_id for r in runs(shop.id) if r.held_out}
    assert held == {i for i in ids.values() if flows.in_holdout(i, flow_id, 30)}
    assert 0 < len(held) < 30


def test_periodic_tick_is_registered():
    """The scheduler enqueues the tick and the win-back scan."""
    from jobs.scheduler import PERIODIC

    funcs = {p.func for p in PERIODIC}
    assert {"jobs.flows.tick", "jobs.flows.winback_scan"} <= funcs


def test_messages_are_kind_flow_and_marketing(shop, fake_twilio, run_jobs):
    """Flow texts are marketing: subscribed numbers, quiet hours and caps apply (the engine)."""
    shop = flow_shop(shop, smart_sending_hours=12)
    shop_id = shop.id
    enable(shop, "winback")
    _buyers(shop, {PHONE: 100})
    flow_triggers.winback_scan()
    tick_and_send(run_jobs)
    [text] = flow_texts(shop_id)
    assert (text.kind, text.marketing, text.status) == ("flow", True, "sent")
    # A second flow text within the smart-sending window is the engine's to skip.
    other = flows.insert_messages(
        [
            {
                "shop_id": shop_id,
                "subscriber_id": text.subscriber_id,
                "kind": "flow",
                "template": "again",
                "flow_run_id": text.flow_run_id,
                "flow_step": 9,
                "context": None,
                "status": "pending",
                "marketing": True,
                "due_at": utcnow(),
                "attempts": 0,
                "created_at": utcnow(),
                "updated_at": utcnow(),
            }
        ]
    )
    db.session.commit()
    flows._schedule_sends([shop_id])
    run_jobs()
    row = db.session.get(Message, other[0][0])
    assert (row.status, row.skip_reason) == ("skipped", "smart_sending")
