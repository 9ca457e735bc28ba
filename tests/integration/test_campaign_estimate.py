"""Review and send: the estimate agrees with the real send to the cent, and the review warns
about UCS-2, missing links, opt-out language, quiet hours and caps, and blocks texts that are
too long."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from shopify_app.extensions import db
from shopify_app.models import Message, Shop, utcnow
from shopify_app.services import campaigns, estimate
from tests.integration.campaign_support import campaign, reload, spent, statuses, subscriber
from tests.integration.send_support import fast_shop, id_of, night_zone

LINK = "https://tidings-test.myshopify.com/collections/sale"
# 128 characters before the name: short names stay in one segment (with the brand prefix),
# long ones need two; the footer adds two lines' worth for first-timers.
BODY = (
    "Hi {first_name}, our spring sale starts today with fresh picks in every aisle and "
    "free shipping over $50. Shop now: " + LINK
)


def seed_mixed(shop: Shop) -> None:
    """Names of many lengths (one forcing UCS-2), three countries, old and new subscribers."""
    people = [
        ("+12025550001", "Al", "US"),
        ("+12025550002", "Bo", "US"),
        ("+12025550003", "Maximiliana-Josephine", "US"),
        ("+12025550004", "Zoë", "US"),
        ("+447700900001", "Olivia", "GB"),
        ("+447700900002", "Christopher Alexander", "GB"),
        ("+14165550001", "Li", "CA"),
        ("+14165550002", None, "CA"),
        ("+12025550005", "Eve", "US"),
        ("+12025550006", "Adam", "US"),
    ]
    for i, (phone, name, country) in enumerate(people):
        sub = subscriber(shop, phone, first_name=name, country=country)
        if i % 2:  # half already had a marketing text (three days ago: no smart-sending skip)
            db.session.add(
                Message(
                    shop_id=shop.id,
                    subscriber_id=sub.id,
                    kind="flow",
                    status="delivered",
                    due_at=utcnow() - timedelta(days=3),
                    sent_at=utcnow() - timedelta(days=3),
                    segments=1,
                )
            )
    db.session.commit()


def test_estimate_and_real_send_agree(api, shop: Shop, run_jobs) -> None:
    """Estimate a campaign, send it through the jobs with the outbox provider: the estimated
    cost equals the sum of Message.price, and the recipients the rows sent."""
    fast_shop(shop, price_table={"GB": "0.0400", "CA": "0.0110"})
    seed_mixed(shop)
    row = campaign(shop, BODY, holdout_percent=10)
    review = api.get(f"/api/campaigns/{row.id}/review").get_json()
    assert review["can_send"], review["blocking"]
    assert review["audience"] == 10
    assert review["recipients"] == 10 - review["held_out"]
    assert set(review["segments_per_message"]) >= {"1", "2"}  # lengths really differ
    assert review["encodings"].get("UCS-2") in (None, 1)
    by_country = {c["country"]: c for c in review["per_country"]}
    assert set(by_country) <= {"US", "GB", "CA"}
    assert sum(Decimal(c["cost"]) for c in review["per_country"]) == Decimal(
        review["total_cost_exact"]
    )
    assert Decimal(review["total_cost"]) == Decimal(review["total_cost_exact"]).quantize(
        Decimal("0.01")
    )
    api.post(f"/api/campaigns/{row.id}/send-now")
    run_jobs()
    sent = statuses(id_of(row))
    assert sent.get("sent") == review["recipients"]
    assert spent(id_of(row)) == Decimal(review["total_cost_exact"])
    assert reload(row).estimated_cost == Decimal(review["total_cost_exact"]).quantize(
        Decimal("0.0001")
    )


def test_review_warnings(shop: Shop) -> None:
    """UCS-2 characters (with a GSM suggestion), no link, and the quiet-hours delay."""
    subscriber(shop, "+12025550001")
    subscriber(shop, "+12025550002", timezone=night_zone())
    row = campaign(shop, "Big sale today \u2014 don’t miss it")
    review = estimate.review(shop, row)
    codes = {w["code"]: w for w in review["warnings"]}
    assert set(codes) >= {"ucs2", "no_link", "quiet_hours"}
    assert set(codes["ucs2"]["details"]["chars"]) == {"\u2014", "’"}
    assert codes["ucs2"]["details"]["suggestion"]["text"] == "Big sale today - don't miss it"
    assert codes["quiet_hours"]["count"] == 1
    assert review["quiet_hours_delayed"] == 1
    assert review["starts_at"] is not None and review["last_due_at"] > review["starts_at"]
    assert review["can_send"]


def test_missing_opt_out_language(shop: Shop) -> None:
    """First-time recipients need opt-out language: warned when the footer is empty and the
    text has none; quiet when the text says STOP."""
    fast_shop(shop, footer_text="")
    subscriber(shop, "+12025550001")
    review = estimate.review(shop, campaign(shop, "Hello " + LINK))
    assert "missing_opt_out" in {w["code"] for w in review["warnings"]}
    review = estimate.review(shop, campaign(shop, "Hello " + LINK + " Reply STOP to end"))
    assert "missing_opt_out" not in {w["code"] for w in review["warnings"]}


def test_usage_caps_that_cut_the_audience(shop: Shop) -> None:
    """A daily cap smaller than the audience is announced with how many it cuts."""
    fast_shop(
        shop,
        usage_caps={
            "daily_messages": 2,
            "monthly_messages": None,
            "daily_spend": None,
            "monthly_spend": None,
        },
    )
    for i in range(5):
        subscriber(shop, f"+1202555{i:04d}")
    review = estimate.review(shop, campaign(shop, "Hello " + LINK))
    cap = [w for w in review["warnings"] if w["code"] == "usage_cap"]
    assert cap and cap[0]["count"] == 3 and "tomorrow" in cap[0]["message"]


def test_too_long_refuses_to_send_with_the_count(api, shop: Shop) -> None:
    """Over max_segments the review blocks, and send now answers 422 with the count."""
    fast_shop(shop, max_segments=1)
    subscriber(shop, "+12025550001", first_name="Al")
    subscriber(shop, "+12025550002", first_name="Bartholomew-Maximilian")
    # Both are first texts, so both carry the shop-name prefix and the opt-out footer.
    body = "Hi {first_name}! " + "x" * 100
    row = campaign(shop, body)
    review = api.get(f"/api/campaigns/{row.id}/review").get_json()
    blocking = {b["code"]: b for b in review["blocking"]}
    assert not review["can_send"] and blocking["too_long"]["count"] == 1
    answer = api.post(f"/api/campaigns/{row.id}/send-now")
    assert answer.status_code == 422
    issue = answer.get_json()["error"]["details"]["issues"][0]
    assert issue["code"] == "too_long" and issue["count"] == 1
    assert reload(row).status == "draft"


def test_discount_tag_without_a_discount_is_blocked(shop: Shop) -> None:
    subscriber(shop, "+12025550001")
    review = estimate.review(shop, campaign(shop, "Use {discount_code} today " + LINK))
    assert "no_discount" in {b["code"] for b in review["blocking"]}


def test_unique_code_length_is_priced(shop: Shop) -> None:
    """The stand-in code is as long as a real one (prefix, dash, 8 characters)."""
    subscriber(shop, "+12025550001")
    row = campaign(
        shop,
        "Use {discount_code} " + LINK,
        discount_mode="unique",
        discount_config={"value_type": "percentage", "value": "10", "prefix": "SPRINGSALE"},
    )
    review = estimate.review(shop, row)
    assert review["can_send"], review["blocking"]
    code = review["sample"].split("Use ")[1].split(" ")[0]
    assert code.startswith("SPRINGSALE-") and len(code) == len("SPRINGSALE-") + 8


def test_smart_sending_skips_are_left_out(shop: Shop) -> None:
    """Someone texted an hour ago will be skipped by smart sending: not counted or priced."""
    sub = subscriber(shop, "+12025550001")
    subscriber(shop, "+12025550002")
    db.session.add(
        Message(
            shop_id=shop.id,
            subscriber_id=sub.id,
            kind="campaign",
            status="sent",
            due_at=utcnow(),
            sent_at=utcnow() - timedelta(hours=1),
        )
    )
    db.session.commit()
    review = estimate.review(shop, campaign(shop, "Hello " + LINK))
    assert review["audience"] == 2 and review["smart_sending_skipped"] == 1
    assert review["recipients"] == 1


def test_ab_review_prices_each_variant(shop: Shop) -> None:
    """An A/B test: the test share per variant, the rest at the dearest (an upper bound)."""
    for i in range(10):
        subscriber(shop, f"+1202555{i:04d}")
    row = campaign(shop, "", ab_test_percent=40)
    campaigns.set_variants(row, ["Short " + LINK, "A much longer text " * 8 + LINK])
    db.session.commit()
    review = estimate.review(shop, row)
    assert review["can_send"], review["blocking"]
    assert review["ab_test_recipients"] == 4 and review["ab_rest_recipients"] == 6
    assert [v["test_recipients"] for v in review["variants"]] == [2, 2]
    assert review["total_is_upper_bound"] is True
    assert review["segments_per_message"] == {"2": 10}
