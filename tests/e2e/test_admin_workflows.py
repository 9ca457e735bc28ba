"""The rest of a store's SMS program from the admin pages, in headless Chromium with development
sign-in and the in-process worker: import subscribers from a CSV (progress, refused rows, the
downloadable error report), look one up and see their consent history, turn a flow on and edit
its steps, save settings (a refused value shown under its field), and play a STOP reply in the
outbox. Every outcome is checked in the database."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from shopify_app.extensions import db
from shopify_app.models import (
    ConsentEvent,
    Flow,
    OutboxMessage,
    Shop,
    Subscriber,
    utcnow,
)
from tests.conftest import SHOP_DOMAIN, make_shop
from tests.e2e.admin_harness import admin_url, dev_login, settle, shot, work_until

pytestmark = pytest.mark.e2e
_fixtures = (dev_login,)

CSV = (
    "phone,email,first_name,last_name,consent_date,consent_source\n"
    "(415) 555-0101,ada@example.com,Ada,Lovelace,2026-03-01,Klaviyo form\n"
    "+1 415 555 0102,,Grace,Hopper,2026-03-02,checkout checkbox\n"
    "12,,Bad,Number,2026-03-03,POS sign-up\n"
)


def open_page(page: Any, base: str, path: str) -> None:
    page.goto(admin_url(base, path, SHOP_DOMAIN))
    settle(page)


def test_import_then_find_a_subscriber(page, live_server, dev_login, run_jobs, app, tmp_path):
    """Upload → progress to done → refused row listed and downloadable → the imported
    subscriber found by search, with the import recorded in their consent history."""
    make_shop(name="Lumen Candles")
    file = tmp_path / "list.csv"
    file.write_text(CSV, encoding="utf-8")
    open_page(page, live_server.url, "/app/subscribers/import")
    assert page.inner_text("#history") == "No imports yet."
    page.set_input_files("#file", str(file))
    page.click("#upload-btn")
    page.wait_for_selector("#progress-card:not([hidden])")
    work_until(
        app,
        page,
        run_jobs,
        "() => document.querySelector('#progress-badge').textContent === 'Done'",
    )
    facts = page.inner_text("#progress")
    assert "3 of 3 rows" in facts
    assert re.search(r"Imported\s+2", facts) and re.search(r"Refused\s+1", facts)
    refused = page.locator("#progress tbody tr")
    assert refused.count() == 1 and refused.first.inner_text().startswith("4")
    with page.expect_download() as info:
        page.get_by_role("button", name="Download error report").click()
    report = Path(info.value.path()).read_text(encoding="utf-8")
    assert report.splitlines()[0].startswith("row,phone,reason")
    assert report.splitlines()[1].startswith("4,12,")
    shot(page, "workflow-import")

    open_page(page, live_server.url, "/app/subscribers")
    page.fill("#q", "Grace")
    page.click("#filters button[type=submit]")
    page.wait_for_function("() => document.querySelectorAll('#list tbody tr').length === 1")
    page.locator("#list tbody tr a").click()
    page.wait_for_url(re.compile(r"/app/subscribers/\d+\?"))
    settle(page)
    assert page.inner_text("#page-title") == "+14155550102"
    assert "Grace Hopper" in page.inner_text("#profile")
    timeline = page.inner_text("#consent")
    assert "From Import" in timeline
    shot(page, "workflow-subscriber")


def test_flow_on_and_its_steps_edited(page, live_server, dev_login) -> None:
    """The flows list switches a flow on; the editor adds a wait and a text and saves them."""
    shop = make_shop(name="Lumen Candles")
    open_page(page, live_server.url, "/app/flows")
    welcome = page.locator("section.card", has=page.get_by_role("heading", name="Welcome"))
    assert welcome.count() == 1
    welcome.locator("label.switch").click()
    page.get_by_text(re.compile("turned on")).wait_for()
    db.session.expire_all()
    flow = db.session.scalars(
        select(Flow).where(Flow.shop_id == shop.id, Flow.kind == "welcome")
    ).one()
    assert flow.enabled is True
    before = len(flow.steps)
    old_ids = [s["id"] for s in flow.steps]

    welcome.get_by_role("link", name=re.compile("^Edit")).click()
    page.wait_for_url(re.compile(r"/app/flows/\d+\?"))
    settle(page)
    page.click("#add-wait")
    page.locator("#steps > li").last.locator(".wait-amount").fill("2")
    page.locator("#steps > li").last.locator(".wait-unit").select_option("days")
    page.click("#add-message")
    page.locator("#steps > li").last.locator("textarea").fill(
        "Still thinking it over, {first_name|there}? Your code {discount_code} is waiting."
    )
    page.locator("#steps > li").last.get_by_label("Give a unique discount code").check()
    page.click("#save")
    page.get_by_text("Flow saved").wait_for()
    shot(page, "workflow-flow")
    db.session.expire_all()
    flow = db.session.get(Flow, flow.id)
    assert len(flow.steps) == before + 2
    assert [s["id"] for s in flow.steps[:before]] == old_ids  # kept through the edit
    assert len({s["id"] for s in flow.steps}) == before + 2
    assert flow.steps[-2]["type"] == "wait" and flow.steps[-2]["minutes"] == 2 * 1440
    assert flow.steps[-1]["body"].startswith("Still thinking it over")
    assert flow.steps[-1]["discount"]["value_type"] == "percentage"


def test_settings_validate_inline_and_save(page, live_server, dev_login, console_errors) -> None:
    """A quiet-hours start the law does not allow is refused under its field; a fixed form
    saves every section (the value is read back from the shop's settings)."""
    console_errors.allow(r"status of 422")  # Chromium logs the refused save
    shop = make_shop(name="Lumen Candles")
    open_page(page, live_server.url, "/app/settings")
    assert "activateAppId=" in page.get_attribute("#theme-editor", "href")
    page.fill("[name='quiet_hours.start']", "06:00")
    page.fill("[name=brand_name]", "Lumen")
    page.fill("[name='widget.allowed_countries']", "us, ca")
    page.click("#save")
    start = page.locator("[name='quiet_hours.start']")
    page.wait_for_function(
        "() => document.querySelector(\"[name='quiet_hours.start']\")"
        ".getAttribute('aria-invalid') === 'true'"
    )
    error_id = start.get_attribute("aria-describedby").split()[-1]
    assert page.locator(f"#{error_id}").inner_text()
    shot(page, "workflow-settings-error")
    db.session.expire_all()
    assert db.session.get(Shop, shop.id).setting("brand_name") in (None, "")

    page.fill("[name='quiet_hours.start']", "10:00")
    page.click("#save")
    page.get_by_text("Settings saved").wait_for()
    db.session.expire_all()
    saved = db.session.get(Shop, shop.id)
    assert saved.setting("brand_name") == "Lumen"
    assert saved.setting("quiet_hours")["start"] == "10:00"
    assert saved.setting("widget")["allowed_countries"] == ["CA", "US"]


def test_outbox_reply_stop_unsubscribes(page, live_server, dev_login) -> None:
    """STOP played as a reply from the outbox unsubscribes the number, with its ledger entry."""
    shop = make_shop(name="Lumen Candles")
    sub = Subscriber(
        shop_id=shop.id,
        phone="+12025550177",
        status="subscribed",
        source="widget",
        subscribed_at=utcnow() - timedelta(days=1),
    )
    db.session.add(sub)
    db.session.flush()
    db.session.add(
        OutboxMessage(
            shop_id=shop.id,
            sid="SM" + "7" * 32,
            to=sub.phone,
            sender="outbox",
            body="Lumen Candles: our spring sale starts now. Reply STOP to opt out.",
            status="delivered",
        )
    )
    db.session.commit()
    sub_id = sub.id
    open_page(page, live_server.url, "/app/outbox")
    page.get_by_role("button", name=re.compile("^Reply")).click()
    dialog = page.locator("dialog[open]")
    dialog.get_by_role("button", name="STOP", exact=True).click()
    dialog.get_by_role("button", name="Send reply").click()
    page.get_by_text("Replied “STOP”").wait_for()
    db.session.expire_all()
    assert db.session.get(Subscriber, sub_id).status == "unsubscribed"
    kinds = db.session.scalars(
        select(ConsentEvent.kind).where(ConsentEvent.subscriber_id == sub_id)
    ).all()
    assert "opted_out" in kinds
