"""The campaign list in headless Chromium: each status shows its badge and only the actions it
allows, and each action does what it says — delete asks first (cancel keeps the campaign), the
on/off switch moves a scheduled campaign back to draft and on again, "End campaign" stops a
sending one and skips what had not left. Outcomes are checked in the database rows."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from shopify_app.extensions import db
from shopify_app.models import Campaign, Message, Subscriber, utcnow
from tests.conftest import SHOP_DOMAIN, make_shop
from tests.e2e.admin_harness import admin_url, dev_login, settle, shot

pytestmark = pytest.mark.e2e
_fixtures = (dev_login,)

BODY = "Lumen Candles: 20% off candles this weekend. Reply STOP to opt out."


def seed() -> dict[str, int]:
    shop = make_shop(name="Lumen Candles")
    now = utcnow()
    subs = [
        Subscriber(
            shop_id=shop.id,
            phone=f"+1202555{i + 20:04d}",
            country="US",
            timezone="America/New_York",
            status="subscribed",
            source="widget",
            subscribed_at=now - timedelta(days=3),
        )
        for i in range(2)
    ]
    db.session.add_all(subs)
    common = {"shop_id": shop.id, "body": BODY, "audience": {"rules": {"builtin": "all"}}}
    rows = {
        "draft": Campaign(name="Draft idea", status="draft", **common),
        "scheduled": Campaign(
            name="Weekend sale", status="scheduled", send_at=now + timedelta(days=2), **common
        ),
        "sending": Campaign(name="Flash sale", status="sending", started_at=now, **common),
        "sent": Campaign(
            name="Spring sale",
            status="sent",
            started_at=now - timedelta(days=5),
            finished_at=now - timedelta(days=5),
            **common,
        ),
    }
    db.session.add_all(rows.values())
    db.session.flush()
    for sub in subs:  # the sending campaign's texts have not left yet
        db.session.add(
            Message(
                shop_id=shop.id,
                subscriber_id=sub.id,
                kind="campaign",
                campaign_id=rows["sending"].id,
                status="pending",
                due_at=now + timedelta(hours=6),
            )
        )
    db.session.commit()
    return {name: row.id for name, row in rows.items()}


def row(page: Any, name: str) -> Any:
    return page.locator("#list tbody tr", has=page.get_by_role("link", name=name, exact=True))


def actions_of(page: Any, name: str) -> list[str]:
    cell = row(page, name).locator("td.actions")
    names = cell.locator("a, button").evaluate_all(
        "els => els.map(e => e.textContent.replace(/\\s+/g, ' ').trim())"
    )
    if cell.locator("input[type=checkbox]").count():
        names.insert(0, "switch:" + ("on" if cell.locator("input").is_checked() else "off"))
    return names


def status_of(campaign_id: int) -> str:
    db.session.expire_all()
    return db.session.get(Campaign, campaign_id).status


def test_list_shows_the_actions_each_status_allows(page, live_server, dev_login) -> None:
    """Badges and actions per status, then each action: delete with confirmation, the on/off
    switch, End campaign."""
    ids = seed()
    page.goto(admin_url(live_server.url, "/app/campaigns", SHOP_DOMAIN))
    settle(page)
    assert row(page, "Draft idea").locator(".badge").inner_text() == "Draft"
    assert row(page, "Weekend sale").locator(".badge").inner_text() == "Scheduled"
    assert row(page, "Flash sale").locator(".badge").inner_text() == "Sending"
    assert row(page, "Spring sale").locator(".badge").inner_text() == "Sent"
    assert actions_of(page, "Draft idea") == [
        "Edit Draft idea",
        "Review Draft idea",
        "Delete Draft idea",
    ]
    assert actions_of(page, "Weekend sale") == [
        "switch:on",
        "Edit Weekend sale",
        "Delete Weekend sale",
    ]
    assert actions_of(page, "Flash sale") == ["View Flash sale", "End campaign Flash sale"]
    assert actions_of(page, "Spring sale") == ["View Spring sale"]
    shot(page, "campaign-actions-1-list")

    # Delete asks first; Cancel keeps the campaign.
    row(page, "Draft idea").get_by_role("button", name="Delete Draft idea").click()
    dialog = page.locator("dialog[open]")
    assert "cannot be undone" in dialog.inner_text()
    dialog.get_by_role("button", name="Cancel").click()
    assert status_of(ids["draft"]) == "draft"
    row(page, "Draft idea").get_by_role("button", name="Delete Draft idea").click()
    page.locator("dialog[open]").get_by_role("button", name="Delete campaign").click()
    page.get_by_text("Campaign deleted").wait_for()
    settle(page)
    assert row(page, "Draft idea").count() == 0
    db.session.expire_all()
    assert db.session.get(Campaign, ids["draft"]) is None

    # The switch: off sends the scheduled campaign back to draft (its time kept), on again
    # schedules it.
    row(page, "Weekend sale").locator("label.switch").click()
    page.get_by_text("Campaign switched off").wait_for()
    settle(page)
    assert row(page, "Weekend sale").locator(".badge").inner_text() == "Draft"
    assert actions_of(page, "Weekend sale")[0] == "switch:off"
    assert status_of(ids["scheduled"]) == "draft"
    row(page, "Weekend sale").locator("label.switch").click()
    page.get_by_text("Campaign scheduled").wait_for()
    settle(page)
    assert row(page, "Weekend sale").locator(".badge").inner_text() == "Scheduled"
    assert status_of(ids["scheduled"]) == "scheduled"

    # End campaign: confirmed, the campaign is ended and its waiting texts never leave.
    row(page, "Flash sale").get_by_role("button", name="End campaign Flash sale").click()
    page.locator("dialog[open]").get_by_role("button", name="End campaign").click()
    page.get_by_text("Campaign ended").wait_for()
    settle(page)
    assert row(page, "Flash sale").locator(".badge").inner_text() == "Ended"
    assert actions_of(page, "Flash sale") == ["View Flash sale"]
    assert status_of(ids["sending"]) == "cancelled"
    statuses = db.session.scalars(
        select(Message.status).where(Message.campaign_id == ids["sending"])
    ).all()
    assert statuses == ["skipped", "skipped"]

    # The status tabs filter the list.
    page.get_by_role("tab", name="Ended").click()
    settle(page)
    names = page.locator("#list tbody tr .primary-cell").all_inner_texts()
    assert names == ["Flash sale"]
    page.get_by_role("tab", name="Sending").click()
    settle(page)
    assert page.locator("#list .empty h2").inner_text() == "No campaigns here"


def test_detail_page_ends_a_sending_campaign(page, live_server, dev_login) -> None:
    """The detail page of a sending campaign offers End campaign; confirming ends it."""
    ids = seed()
    page.goto(admin_url(live_server.url, f"/app/campaigns/{ids['sending']}", SHOP_DOMAIN))
    page.wait_for_selector("#end:not([hidden])")
    page.wait_for_selector("#progress-pct")
    assert re.search(r"0 of 2 texts handled", page.inner_text("#progress"))
    page.click("#end")
    page.locator("dialog[open]").get_by_role("button", name="End campaign").click()
    page.get_by_text("Campaign ended").wait_for()
    page.wait_for_selector("#end[hidden]", state="attached")
    assert page.locator("#title-badges .badge").inner_text() == "Ended"
    assert status_of(ids["sending"]) == "cancelled"
