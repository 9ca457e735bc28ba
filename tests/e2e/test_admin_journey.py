"""The merchant's whole campaign journey in headless Chromium, with development sign-in, the dev
outbox as the SMS provider, the Shopify stand-in for discount codes and an in-process worker:

build a segment and see its live count → write a campaign with a link and a unique discount
(fixing a UCS-2 character the editor highlights) → see the estimate → confirm and send → watch
the progress reach 100% → play a delivery and a tap in the outbox → an order arrives with the
code → the campaign's stats show the delivery, the click per link and the attributed order.
Screenshots of each step go to test-output/screenshots/journey-*.png.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from shopify_app.extensions import db
from shopify_app.models import Campaign, DiscountCode, Message, Subscriber, Variant, utcnow
from tests.conftest import API_KEY, API_SECRET, SHOP_DOMAIN, make_shop
from tests.e2e.admin_harness import admin_url, dev_login, settle, shot, work_until
from tests.fakes.shopify_server import FakeShopify
from tests.integration.analytics_support import fixture
from tests.integration.send_support import day_zone
from tests.integration.webhook_support import post_shopify

pytestmark = pytest.mark.e2e
_fixtures = (dev_login,)

LINK = f"https://{SHOP_DOMAIN}/collections/spring"
BUYERS = [("Ann", 2), ("Ben", 1), ("Cleo", 4)]  # orders_count: all in "has ordered"
NEVER = ("Dev", 0)


@pytest.fixture(scope="module")
def _shopify() -> Iterator[FakeShopify]:
    with FakeShopify(API_KEY, API_SECRET) as fake:
        yield fake


@pytest.fixture
def shopify(app: Flask, _shopify: FakeShopify) -> Iterator[FakeShopify]:
    """The Shopify stand-in as the Admin API (unique codes are created there)."""
    _shopify.reset()
    _shopify.bulk_polls_until_done = 1
    saved = app.config["SHOPIFY_ADMIN_BASE_URL"]
    app.config["SHOPIFY_ADMIN_BASE_URL"] = _shopify.base_url_template
    app.config["DISCOUNT_POLL_SECONDS"] = 0
    try:
        yield _shopify
    finally:
        app.config["SHOPIFY_ADMIN_BASE_URL"] = saved
        app.config.pop("DISCOUNT_POLL_SECONDS", None)


def seed(fake: FakeShopify) -> dict[str, Any]:
    """Four subscribers where it is daytime now (no quiet-hours wait); three have ordered."""
    shop = make_shop(name="Lumen Candles")
    fake.add_token(shop.domain, "shpat_test_token")
    zone = day_zone()
    for i, (first, orders) in enumerate([*BUYERS, NEVER]):
        db.session.add(
            Subscriber(
                shop_id=shop.id,
                phone=f"+1202555{i + 10:04d}",
                first_name=first,
                country="US",
                timezone=zone,
                status="subscribed",
                source="widget",
                subscribed_at=utcnow(),
                orders_count=orders,
                total_spent=Decimal("30.00") * orders,
            )
        )
    db.session.commit()
    return {"shop": shop.domain, "shop_id": shop.id}


def confirm_dialog(page: Any, button: str) -> None:
    page.locator("dialog[open]").get_by_role("button", name=button, exact=True).click()
    page.wait_for_selector("dialog[open]", state="detached")


def build_segment(page: Any, base: str) -> int:
    page.goto(admin_url(base, "/app/segments/new", SHOP_DOMAIN))
    settle(page)
    page.fill("#name", "Repeat buyers")
    # The new segment starts with "Number of orders at least 1": the live count agrees.
    page.wait_for_function("() => document.querySelector('#count').textContent === '3'")
    page.locator(".rule-value").first.fill("2")
    page.wait_for_function("() => document.querySelector('#count').textContent === '2'")
    page.locator(".rule-value").first.fill("1")
    page.wait_for_function("() => document.querySelector('#count').textContent === '3'")
    shot(page, "journey-1-segment")
    page.click("#save")
    page.wait_for_url(re.compile(r"/app/segments/\d+\?"))
    settle(page)
    return int(re.search(r"/app/segments/(\d+)", page.url).group(1))


def write_campaign(page: Any, base: str, segment_id: int) -> int:
    page.goto(admin_url(base, "/app/campaigns/new", SHOP_DOMAIN))
    settle(page)
    page.fill("#name", "Spring candles")
    body = page.locator("textarea.message-body").first
    body.fill("It\u2019s spring, {first_name|there}! 15% off with ")
    # The curly apostrophe forces UCS-2: the editor says so, highlights it, and fixes it.
    counter = page.locator(".counter").first
    note = page.locator(".ucs2-note").first
    page.wait_for_function("() => document.querySelector('.counter').textContent.includes('UCS-2')")
    assert note.is_visible()
    assert "\u2019" in note.locator("mark").first.inner_text()
    shot(page, "journey-2-editor-ucs2")
    note.get_by_role("button", name=re.compile("Replace")).click()
    assert "It's spring" in body.input_value()
    assert "GSM-7" in counter.inner_text()
    assert note.is_hidden()
    # Insert the code and a link with the editor's tools.
    body.press("End")
    page.get_by_role("button", name="Insert discount code").click()
    page.get_by_role("button", name="Insert link", exact=True).click()
    page.locator("dialog[open] input[type=url]").fill(LINK)
    confirm_dialog(page, "Insert link")
    assert body.input_value().endswith("{discount_code} " + LINK)
    assert re.search(r"\b1\b segment", counter.inner_text())
    page.select_option("#audience", f"segment:{segment_id}")
    page.wait_for_function("() => document.querySelector('#audience-count').textContent === '3'")
    page.get_by_label("A unique single-use code for each subscriber").check()
    page.fill("#d-value", "15")
    assert "Alex" in page.locator(".phone .bubble").inner_text()  # sample merge values
    assert "Unique code, 15%" in page.inner_text("#sum-discount")
    shot(page, "journey-3-campaign")
    page.click("#review")
    page.wait_for_url(re.compile(r"/app/campaigns/\d+/review"))
    return int(re.search(r"/app/campaigns/(\d+)/review", page.url).group(1))


def review_and_send(page: Any) -> None:
    settle(page)
    assert page.inner_text("#recipients") == "3"
    assert re.fullmatch(r"\$\d+\.\d{2,4}", page.inner_text("#total-cost"))
    assert page.locator("#issues .banner-critical").count() == 0
    send = page.locator("#send")
    assert send.is_disabled()  # nothing leaves without the explicit confirmation
    page.check("#understand")
    shot(page, "journey-4-review")
    send.click()
    confirm_dialog(page, "Send now")
    page.wait_for_url(re.compile(r"/app/campaigns/\d+\?"))


def play_outbox(page: Any, base: str) -> None:
    """The merchant plays a delivery receipt and a tap on the first text's link."""
    page.goto(admin_url(base, "/app/outbox", SHOP_DOMAIN))
    settle(page)
    rows = page.locator("#list tbody tr")
    assert rows.count() == 3
    first = rows.first
    assert "/r/" in first.inner_text()  # the link was shortened for tracking
    first.get_by_role("button", name=re.compile("^Delivered")).click()
    page.wait_for_function(
        "() => document.querySelector('#list tbody tr .badge').textContent === 'Delivered'"
    )
    page.locator("#list tbody tr").first.get_by_role("button", name=re.compile("^Click")).click()
    page.get_by_text("Played: link tapped").wait_for()
    shot(page, "journey-6-outbox")


def order_with_code(app: Flask, code: str) -> None:
    """orders/create from Shopify carrying the subscriber's unique code."""
    payload = fixture("order_with_codes")
    now = utcnow().isoformat()
    payload.update(
        id=5820041939999,
        created_at=now,
        processed_at=now,
        updated_at=now,
        landing_site=None,
        customer=None,
        email=None,
        contact_email=None,
    )
    payload["discount_codes"] = [{"code": code, "amount": "13.50", "type": "percentage"}]
    resp = post_shopify(app.test_client(), "orders/create", payload, shop=SHOP_DOMAIN)
    assert resp.status_code == 200


def test_merchant_sends_a_campaign_and_sees_its_results(
    page, live_server, dev_login, shopify, run_jobs, app
) -> None:
    """Segment → campaign with link and unique code → estimate → send → 100% → stats."""
    seed(shopify)
    base = live_server.url
    segment_id = build_segment(page, base)
    campaign_id = write_campaign(page, base, segment_id)
    review_and_send(page)

    # The detail page polls the progress while the in-process worker sends.
    work_until(
        app,
        page,
        run_jobs,
        "() => (document.querySelector('#progress-pct') || {}).textContent === '100%'",
    )
    page.wait_for_function(
        "() => document.querySelector('#title-badges').textContent.includes('Sent')"
    )
    shot(page, "journey-5-sent")
    db.session.expire_all()
    campaign = db.session.get(Campaign, campaign_id)
    assert campaign.status == "sent" and campaign.discount_mode == "unique"
    messages = list(db.session.scalars(select(Message).where(Message.campaign_id == campaign_id)))
    assert len(messages) == 3 and {m.status for m in messages} == {"sent"}
    codes = list(
        db.session.scalars(select(DiscountCode).where(DiscountCode.campaign_id == campaign_id))
    )
    assert len({c.code for c in codes}) == 3  # one unique code each, created at the stand-in
    assert all(any(c.code in m.body for c in codes) for m in messages)

    play_outbox(page, base)
    # Ann (the first text in the outbox is the newest) uses her code.
    newest = max(messages, key=lambda m: m.id)
    code = next(c.code for c in codes if c.code in newest.body)
    order_with_code(app, code)
    run_jobs()

    page.goto(admin_url(base, f"/app/campaigns/{campaign_id}", SHOP_DOMAIN))
    settle(page)
    page.wait_for_selector("#links-card:not([hidden]) tbody tr")
    assert page.inner_text("#m-revenue") == "$76.50"
    delivered = page.locator("#m-delivered").locator("..").inner_text()
    assert "33.3%" in delivered and "1 of 3 sent" in delivered
    clicked = page.locator("#m-ctr").locator("..").inner_text()
    assert "100.0%" in clicked and "1 person clicked" in clicked  # of the delivered ones
    link_row = page.locator("#links tbody tr").first.inner_text()
    assert LINK in link_row and re.search(r"\b3\s+1\s+1\b", link_row), link_row
    orders = page.locator("#orders tbody tr")
    assert orders.count() == 1 and "Discount code" in orders.first.inner_text()
    assert "#1042" in orders.first.inner_text()
    shot(page, "journey-7-results")


def test_merchant_schedules_an_ab_test_in_local_time(page, live_server, dev_login, shopify) -> None:
    """The editor's schedule and A/B parts: a later send in each subscriber's local time with a
    second variant is saved as a draft, reviewed (the variants priced), and switched on."""
    seed(shopify)
    page.goto(admin_url(live_server.url, "/app/campaigns/new", SHOP_DOMAIN))
    settle(page)
    page.fill("#name", "Weekend test")
    page.locator("textarea.message-body").first.fill("Weekend glow: 10% off candles.")
    page.get_by_label("Schedule for later").check()
    local = (utcnow() + timedelta(days=3)).strftime("%Y-%m-%dT10:00")
    page.fill("#send-at", local)
    page.check("#local-time")
    assert "subscriber's time" in page.inner_text("#sum-when")
    page.check("#ab-on")
    variant = page.locator(".variant textarea")
    assert variant.count() == 1  # variant B is offered at once
    variant.fill("Weekend glow: our new scents are here.")
    page.fill("#ab-percent", "30")
    page.click("#save-draft")
    page.wait_for_url(re.compile(r"/app/campaigns/\d+/edit"))
    settle(page)
    campaign_id = int(re.search(r"/app/campaigns/(\d+)/edit", page.url).group(1))
    db.session.expire_all()
    campaign = db.session.get(Campaign, campaign_id)
    assert campaign.status == "draft" and campaign.local_time is True
    assert campaign.ab_test_percent == 30
    variants = db.session.scalars(
        select(Variant).where(Variant.campaign_id == campaign_id).order_by(Variant.label)
    ).all()
    assert [(v.label, v.body) for v in variants] == [
        ("A", "Weekend glow: 10% off candles."),
        ("B", "Weekend glow: our new scents are here."),
    ]
    # The reloaded editor shows what was saved.
    assert page.input_value("#send-at") == local
    assert page.locator(".variant textarea").input_value().endswith("new scents are here.")

    page.click("#review")
    page.wait_for_url(re.compile(r"/app/campaigns/\d+/review"))
    settle(page)
    assert page.locator("#cost table caption", has_text="A/B variants").count() == 1
    page.check("#understand")
    page.click("#send")
    confirm_dialog(page, "Schedule")
    page.wait_for_url(re.compile(r"/app/campaigns/\d+\?"))
    settle(page)
    shot(page, "journey-scheduled")
    db.session.expire_all()
    assert db.session.get(Campaign, campaign_id).status == "scheduled"
