"""A/B tests: the test share split evenly among 2–4 variants, the winner chosen on seeded clicks
(CTR) or orders (revenue per recipient) once the wait is over — or picked by the merchant — and
the rest of the audience sent the winner's text; per-variant stats stay visible."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import update

from jobs import campaigns as campaign_jobs
from shopify_app.extensions import db
from shopify_app.models import Campaign, Click, Link, Message, Order, Shop, utcnow
from shopify_app.services import ab_test, campaign_start, campaigns
from tests.integration.campaign_support import campaign, reload, rows_of, subscribers
from tests.integration.send_support import fast_shop, id_of

AUDIENCE = 100


def ab_campaign(
    shop: Shop,
    bodies: list[str],
    *,
    percent: int = 20,
    metric: str = "ctr",
    wait_minutes: int = 60,
    auto: bool = True,
) -> Campaign:
    row = campaign(
        shop,
        ab_test_percent=percent,
        ab_metric=metric,
        ab_wait_minutes=wait_minutes,
        ab_auto_winner=auto,
    )
    campaigns.set_variants(row, bodies)
    campaigns.transition(row, "send_now")  # the job is run by each test when it wants
    db.session.commit()
    return row


def variant_ids(row: Campaign) -> dict[str, int]:
    return {v.label: v.id for v in campaigns.variants_of(row)}


def start_test(shop: Shop, row: Campaign) -> dict[int | None, int]:
    """Materialise the test share; returns rows per variant."""
    step = campaign_start.advance(id_of(row))
    assert step.outcome == "sending"
    return Counter(m.variant_id for m in rows_of(id_of(row)))


def deliver(campaign_id: int) -> None:
    """Every test text was handed over and delivered (as the send path and callbacks do)."""
    now = utcnow()
    db.session.execute(
        update(Message)
        .where(Message.campaign_id == campaign_id, Message.status == "pending")
        .values(status="delivered", sent_at=now, delivered_at=now, segments=1, price=0)
    )
    db.session.commit()


def messages_of(campaign_id: int, variant_id: int) -> list[Message]:
    return [m for m in rows_of(campaign_id) if m.variant_id == variant_id]


def click(message: Message, *, times: int = 1, bot: bool = False) -> None:
    link = Link(
        shop_id=message.shop_id,
        token=f"t{message.id}",
        message_id=message.id,
        subscriber_id=message.subscriber_id,
        campaign_id=message.campaign_id,
        url="https://shop.example/sale",
    )
    db.session.add(link)
    db.session.flush()
    for _ in range(times):
        db.session.add(
            Click(
                shop_id=message.shop_id,
                link_id=link.id,
                message_id=message.id,
                subscriber_id=message.subscriber_id,
                clicked_at=utcnow(),
                is_bot=bot,
            )
        )
    db.session.commit()


ORDER_NUMBERS = iter(range(700_000_000, 800_000_000))


def order(message: Message, total: str, *, refunded: str = "0") -> None:
    now = utcnow()
    db.session.add(
        Order(
            shop_id=message.shop_id,
            shopify_order_id=next(ORDER_NUMBERS),
            subscriber_id=message.subscriber_id,
            currency="USD",
            total=Decimal(total),
            refunded=Decimal(refunded),
            ordered_at=now,
            message_id=message.id,
            campaign_id=message.campaign_id,
            attribution_reason="click",
            attributed_at=now,
        )
    )
    db.session.commit()


def wait_over(row: Campaign) -> None:
    db.session.execute(
        update(Campaign)
        .where(Campaign.id == id_of(row))
        .values(ab_decide_at=utcnow() - timedelta(seconds=1))
    )
    db.session.commit()


@pytest.mark.parametrize(("n_variants", "percent"), [(2, 20), (3, 30), (4, 40)])
def test_test_share_is_split_evenly(shop: Shop, n_variants: int, percent: int) -> None:
    """The test share of the audience, exactly, split evenly; nobody else has a row yet."""
    subscribers(shop, AUDIENCE)
    row = ab_campaign(shop, [f"Text {i}" for i in range(n_variants)], percent=percent)
    per_variant = start_test(shop, row)
    ids = variant_ids(row)
    assert set(per_variant) == set(ids.values())
    assert set(per_variant.values()) == {AUDIENCE * percent // 100 // n_variants}
    fresh = reload(row)
    assert ab_test.is_waiting(fresh) and fresh.audience_complete_at is None
    assert fresh.ab_decide_at is not None
    assert fresh.ab_decide_at >= fresh.materialized_at + timedelta(minutes=60)


def test_ctr_winner_goes_to_the_rest_after_the_wait(shop: Shop, run_jobs) -> None:
    """B's texts got more distinct human clickers per delivered text (A's extra clicks are
    repeats and bot previews): after the wait B is chosen automatically and everyone else
    gets B's text."""
    fast_shop(shop)
    subscribers(shop, AUDIENCE)
    row = ab_campaign(shop, ["Text A {first_name}", "Text B {first_name}"])
    cid = row.id
    start_test(shop, row)
    ids = variant_ids(row)
    deliver(cid)
    a_rows, b_rows = messages_of(cid, ids["A"]), messages_of(cid, ids["B"])
    click(a_rows[0], times=5)  # one person clicking five times is one clicker
    click(a_rows[1], bot=True)  # a link preview is no clicker
    click(a_rows[2], bot=True)
    for message in b_rows[:3]:
        click(message)
    # The wait is not over yet: nothing is decided.
    assert campaign_jobs.watch()["winners"] == 0
    assert reload(row).winner_variant_id is None
    wait_over(row)
    ranked = ab_test.scores(reload(row))
    assert [s.label for s in ranked] == ["B", "A"]
    assert ranked[0].value == Decimal(3) / Decimal(10)
    assert ranked[1].value == Decimal(1) / Decimal(10)
    assert campaign_jobs.watch()["winners"] == 1
    chosen = reload(row)
    assert chosen.winner_variant_id == ids["B"] and chosen.winner_chosen_by == "auto"
    run_jobs()  # the rollout: the rest of the audience, with B's text
    rows = rows_of(cid)
    assert len(rows) == AUDIENCE
    rest = [m for m in rows if m.status != "delivered"]
    assert len(rest) == AUDIENCE - 20
    assert {m.variant_id for m in rest} == {ids["B"]}
    assert {m.status for m in rest} == {"sent"}
    assert all("Text B Ann" in m.body and "Text A" not in m.body for m in rest)
    done = reload(row)
    assert done.audience_complete_at is not None and done.recipients_count == AUDIENCE
    assert campaign_jobs.watch()["finished"] == 1
    assert reload(row).status == "sent"


def test_revenue_per_recipient_winner(shop: Shop, run_jobs) -> None:
    """A has more clickers but B earned more net of refunds per recipient: on the revenue
    metric B wins."""
    fast_shop(shop)
    subscribers(shop, AUDIENCE)
    row = ab_campaign(shop, ["Text A", "Text B"], metric="revenue_per_recipient")
    cid = row.id
    start_test(shop, row)
    ids = variant_ids(row)
    deliver(cid)
    a_rows, b_rows = messages_of(cid, ids["A"]), messages_of(cid, ids["B"])
    for message in a_rows[:4]:
        click(message)
    order(a_rows[0], "120.00", refunded="100.00")  # 20 net
    order(a_rows[1], "30.00")
    click(b_rows[0])
    order(b_rows[0], "90.00")
    wait_over(row)
    ranked = ab_test.scores(reload(row))
    assert [(s.label, s.value) for s in ranked] == [
        ("B", Decimal("90.00") / 10),
        ("A", Decimal("50.00") / 10),
    ]
    assert ab_test.decide(reload(row)) is not None
    assert reload(row).winner_variant_id == ids["B"]
    run_jobs()
    rest = [m for m in rows_of(cid) if m.status != "delivered"]
    assert len(rest) == AUDIENCE - 20 and {m.variant_id for m in rest} == {ids["B"]}


def test_no_data_or_a_tie_goes_to_the_first_variant(shop: Shop) -> None:
    subscribers(shop, AUDIENCE)
    row = ab_campaign(shop, ["Text A", "Text B", "Text C"], percent=30)
    start_test(shop, row)
    deliver(row.id)
    wait_over(row)
    assert ab_test.decide(reload(row)).label == "A"


def test_not_decided_while_test_texts_are_still_open(shop: Shop) -> None:
    """The wait is over but a test text is still waiting: its result is not in yet."""
    subscribers(shop, AUDIENCE)
    row = ab_campaign(shop, ["Text A", "Text B"])
    start_test(shop, row)
    wait_over(row)
    assert ab_test.decide(reload(row)) is None
    deliver(row.id)
    assert ab_test.decide(reload(row)) is not None


def test_automatic_choice_switched_off_waits_for_the_merchant(api, shop: Shop, run_jobs) -> None:
    """With the automatic winner off the watch never picks; the merchant's pick (the
    per-variant stats before them) rolls out, and cannot be made twice."""
    fast_shop(shop)
    subscribers(shop, AUDIENCE)
    row = ab_campaign(shop, ["Text A", "Text B"], auto=False)
    cid = row.id
    start_test(shop, row)
    ids = variant_ids(row)
    deliver(cid)
    click(messages_of(cid, ids["A"])[0])
    wait_over(row)
    assert campaign_jobs.watch()["winners"] == 0
    stats = api.get(f"/api/campaigns/{cid}/stats").get_json()
    by_label = {v["label"]: v for v in stats["variants"]}
    assert by_label["A"]["delivered"] == 10 and by_label["A"]["unique_clicks"] == 1
    assert by_label["B"]["delivered"] == 10 and by_label["B"]["unique_clicks"] == 0
    progress = api.get(f"/api/campaigns/{cid}/progress").get_json()
    assert progress["waiting_for_winner"] is True
    picked = api.post(f"/api/campaigns/{cid}/winner", json={"variant_id": ids["B"]})
    assert picked.status_code == 200, picked.get_json()
    body = picked.get_json()
    assert body["winner_variant_id"] == ids["B"] and body["winner_chosen_by"] == "merchant"
    again = api.post(f"/api/campaigns/{cid}/winner", json={"variant_id": ids["A"]})
    assert again.status_code == 409
    assert again.get_json()["error"]["code"] == "winner_chosen"
    run_jobs()
    rest = [m for m in rows_of(cid) if m.status != "delivered"]
    assert len(rest) == AUDIENCE - 20 and {m.variant_id for m in rest} == {ids["B"]}
    # The per-variant figures stay visible after the rollout.
    after = api.get(f"/api/campaigns/{cid}/stats").get_json()
    assert {v["label"]: v["recipients"] for v in after["variants"]} == {"A": 10, "B": 90}


def test_merchant_pick_is_refused_when_it_cannot_apply(api, shop: Shop, other_shop: Shop) -> None:
    subscribers(shop, AUDIENCE)
    row = ab_campaign(shop, ["Text A", "Text B"])
    early = api.post(f"/api/campaigns/{row.id}/winner", json={"variant_id": variant_ids(row)["A"]})
    assert early.status_code == 409 and early.get_json()["error"]["code"] == "no_test"
    start_test(shop, row)
    foreign = campaign(other_shop, status="draft")
    campaigns.set_variants(foreign, ["X", "Y"])
    db.session.commit()
    wrong = api.post(
        f"/api/campaigns/{row.id}/winner", json={"variant_id": variant_ids(foreign)["A"]}
    )
    assert wrong.status_code == 422
    draft = campaign(shop)
    refused = api.post(f"/api/campaigns/{draft.id}/winner", json={"variant_id": 1})
    assert refused.status_code == 409
    assert refused.get_json()["error"]["code"] == "invalid_transition"
    assert reload(row).winner_variant_id is None


def test_variants_are_two_to_four_and_frozen_once_sending(api, shop: Shop) -> None:
    row = campaign(shop)
    one = api.put(f"/api/campaigns/{row.id}/variants", json={"variants": [{"body": "A"}]})
    assert one.status_code == 422
    five = api.put(
        f"/api/campaigns/{row.id}/variants", json={"variants": [{"body": b} for b in "ABCDE"]}
    )
    assert five.status_code == 422
    four = api.put(
        f"/api/campaigns/{row.id}/variants", json={"variants": [{"body": b} for b in "ABCD"]}
    )
    assert four.status_code == 200
    assert [v["label"] for v in four.get_json()] == ["A", "B", "C", "D"]
    db.session.execute(update(Campaign).where(Campaign.id == row.id).values(status="sending"))
    db.session.commit()
    frozen = api.put(
        f"/api/campaigns/{row.id}/variants", json={"variants": [{"body": "X"}, {"body": "Y"}]}
    )
    assert frozen.status_code == 409
