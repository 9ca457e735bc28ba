"""Every admin page in headless Chromium with development sign-in: it loads its data with no
console error, stays under the LCP and JS+CSS budgets, passes axe-core (no serious or critical
violation), and is screenshotted (test-output/screenshots/test_admin_page_<name>.png)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from shopify_app.extensions import db
from shopify_app.models import (
    Campaign,
    ConsentEvent,
    Flow,
    ImportJob,
    Message,
    OutboxMessage,
    Segment,
    Subscriber,
    utcnow,
)
from tests.conftest import make_shop
from tests.e2e.admin_harness import admin_url, assert_budgets, dev_login, open_admin, settle, shot

pytestmark = pytest.mark.e2e
_fixtures = (dev_login,)

CONSENT = "By submitting this form, you agree to receive recurring automated marketing texts."


def seed() -> dict[str, Any]:
    """A shop with subscribers (consent ledger, messages), a sent campaign, a segment, a flow,
    an import and outbox rows: enough for every page to show data rather than empty states."""
    shop = make_shop(name="Lumen Candles")
    now = utcnow()
    subs = []
    for i, (first, status) in enumerate(
        [("Ann", "subscribed"), ("Ben", "subscribed"), ("Cleo", "pending"), ("Dev", "unsubscribed")]
    ):
        sub = Subscriber(
            shop_id=shop.id,
            phone=f"+1202555{i:04d}",
            first_name=first,
            last_name="Rivera",
            email=f"{first.lower()}@example.com",
            country="US",
            region="NY",
            timezone="America/New_York",
            status=status,
            source="widget",
            subscribed_at=now - timedelta(days=i + 1),
            orders_count=i,
            total_spent=Decimal("42.50") * i,
        )
        sub.created_at = now - timedelta(days=3 * i + 1)
        db.session.add(sub)
        subs.append(sub)
    db.session.flush()
    for sub in subs:
        db.session.add(
            ConsentEvent(
                shop_id=shop.id,
                subscriber_id=sub.id,
                kind="requested",
                source="widget",
                occurred_at=sub.created_at,
                consent_text=CONSENT,
                ip="203.0.113.9",
                page_url="https://lumen.example/",
            )
        )
        if sub.status != "pending":
            db.session.add(
                ConsentEvent(
                    shop_id=shop.id,
                    subscriber_id=sub.id,
                    kind="confirmed",
                    source="keyword",
                    occurred_at=sub.created_at,
                    evidence_id="SM" + "0" * 32,
                )
            )
    segment = Segment(
        shop_id=shop.id,
        name="Past buyers",
        rules={
            "op": "or",
            "rules": [
                {"op": "and", "rules": [{"field": "orders_count", "operator": ">=", "value": 1}]}
            ],
        },
    )
    db.session.add(segment)
    db.session.flush()
    campaign = Campaign(
        shop_id=shop.id,
        name="Spring sale",
        status="sent",
        body="Hi {first_name}! 20% off candles today.",
        segment_id=segment.id,
        recipients_count=2,
        started_at=now - timedelta(days=1),
        finished_at=now - timedelta(days=1),
        send_at=now - timedelta(days=1),
    )
    draft = Campaign(
        shop_id=shop.id,
        name="Mother's Day",
        status="draft",
        body="Treat her to something that glows: https://tidings-test.myshopify.com/",
        segment_id=segment.id,
    )
    flow = Flow(
        shop_id=shop.id,
        kind="welcome",
        name="Welcome series",
        enabled=True,
        steps=[{"type": "message", "body": "Welcome to {brand}!"}],
    )
    db.session.add_all([campaign, draft, flow])
    db.session.flush()
    for sub in subs[:2]:
        sid = f"SM{sub.id:032d}"
        db.session.add(
            Message(
                shop_id=shop.id,
                subscriber_id=sub.id,
                kind="campaign",
                campaign_id=campaign.id,
                status="delivered",
                due_at=now,
                sent_at=now - timedelta(hours=20),
                provider_sid=sid,
                body="Lumen Candles: Hi! 20% off candles today.",
                segments=1,
                encoding="GSM-7",
                price=Decimal("0.0083"),
            )
        )
        db.session.add(
            OutboxMessage(
                shop_id=shop.id,
                sid=sid,
                to=sub.phone,
                sender="outbox",
                body="Lumen Candles: Hi! 20% off candles today.",
                status="delivered",
            )
        )
    db.session.add(
        ImportJob(
            shop_id=shop.id,
            filename="list.csv",
            status="done",
            total_rows=3,
            processed_rows=3,
            imported=2,
            duplicates=0,
            refused=1,
            refused_rows=[{"row": 3, "phone": "123", "reason": "too short"}],
        )
    )
    db.session.commit()
    return {
        "shop": shop.domain,
        "subscriber": subs[0].id,
        "campaign": campaign.id,
        "draft": draft.id,
        "segment": segment.id,
        "flow": flow.id,
    }


PAGES = {
    "dashboard": lambda ids: "/app/dashboard",
    "home": lambda ids: "/app",
    "subscribers": lambda ids: "/app/subscribers",
    "subscriber_detail": lambda ids: f"/app/subscribers/{ids['subscriber']}",
    "subscriber_import": lambda ids: "/app/subscribers/import",
    "settings": lambda ids: "/app/settings",
    "outbox": lambda ids: "/app/outbox",
    "campaigns": lambda ids: "/app/campaigns",
    "campaign_new": lambda ids: "/app/campaigns/new",
    "campaign_edit": lambda ids: f"/app/campaigns/{ids['draft']}/edit",
    "campaign_review": lambda ids: f"/app/campaigns/{ids['draft']}/review",
    "campaign_detail": lambda ids: f"/app/campaigns/{ids['campaign']}",
    "segments": lambda ids: "/app/segments",
    "segment_new": lambda ids: "/app/segments/new",
    "segment_edit": lambda ids: f"/app/segments/{ids['segment']}",
    "flows": lambda ids: "/app/flows",
    "flow_edit": lambda ids: f"/app/flows/{ids['flow']}",
}


@pytest.mark.parametrize("name", list(PAGES))
def test_admin_page(page, live_server, dev_login, name) -> None:
    """The page renders its data, within budget, accessible, with no console error."""
    ids = seed()
    metrics = open_admin(page, admin_url(live_server.url, PAGES[name](ids), ids["shop"]), name)
    assert page.locator("main h1").count() == 1
    # Outside the admin: no App Bridge, no CDN (the development sign-in's own token instead).
    assert page.locator("script[src*='cdn.shopify.com'], meta[name=shopify-api-key]").count() == 0
    assert not [url for url in metrics.assets if "cdn.shopify.com" in url]
    assert page.locator(".error-state").count() == 0, page.locator(".error-state").inner_text()
    assert_budgets(metrics)


EMPTY_STATES = {
    "/app/dashboard": ("#recent", "Send your first campaign", "Create campaign"),
    "/app/campaigns": ("#list", "Send your first campaign", "Create campaign"),
    "/app/subscribers": ("#list", "Collect your first subscribers", "Import subscribers"),
    "/app/segments": ("#list", "Group subscribers by what they do", "Create segment"),
    "/app/outbox": ("#list", "Nothing sent yet", None),
}


def test_new_shop_sees_what_to_do_first(page, live_server, dev_login) -> None:
    """A shop with nothing yet: each list says what to do first, with the action that does it,
    and no page shows an error."""
    shop = make_shop(name="Fresh Shop")
    for path, (where, title, action) in EMPTY_STATES.items():
        page.goto(admin_url(live_server.url, path, shop.domain))
        settle(page)
        empty = page.locator(f"{where} .empty")
        assert empty.locator("h2").inner_text() == title, path
        if action:
            href = empty.get_by_role("link", name=action).get_attribute("href")
            assert href.startswith("/app/") and f"shop={shop.domain}" in href
        assert page.locator(".error-state").count() == 0, path
        shot(page, "empty" + path.replace("/", "-"))


def test_keyboard_basics(page, live_server, dev_login) -> None:
    """From the keyboard: the first Tab reaches "Skip to content", which moves focus to the
    page; a destructive action opens a dialog with the focus on Cancel, and Escape closes it
    without doing anything."""
    ids = seed()
    page.goto(admin_url(live_server.url, "/app/campaigns", ids["shop"]))
    settle(page)
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    delete = page.get_by_role("button", name="Delete Mother's Day")
    delete.focus()
    page.keyboard.press("Enter")
    dialog = page.locator("dialog[open]")
    dialog.wait_for()
    assert page.evaluate("document.activeElement.textContent") == "Cancel"
    page.keyboard.press("Escape")
    dialog.wait_for(state="detached")
    db.session.expire_all()
    assert db.session.get(Campaign, ids["draft"]) is not None
