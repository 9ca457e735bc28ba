"""The campaign page's "Attributed orders" in headless Chromium: filled from
/api/analytics/orders newest first, a page at a time with "Load more", without the test and
cancelled orders the stats leave out, and without another campaign's orders."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from shopify_app.extensions import db
from shopify_app.models import Campaign, Order, utcnow
from tests.conftest import make_shop
from tests.e2e.admin_harness import admin_url, dev_login, settle

pytestmark = pytest.mark.e2e
_fixtures = (dev_login,)

PAGE_SIZE = 25  # campaign_detail.js asks for pages of 25
COUNTED = PAGE_SIZE + 5


def seed() -> dict[str, Any]:
    shop = make_shop(name="Lumen Candles")
    now = utcnow()
    common = {"shop_id": shop.id, "body": "20% off candles", "status": "sent"}
    sale = Campaign(name="Spring sale", started_at=now - timedelta(days=2), **common)
    other = Campaign(name="Other sale", started_at=now - timedelta(days=2), **common)
    db.session.add_all([sale, other])
    db.session.flush()

    def order(n: int, campaign: Campaign, hours_ago: int, **fields: Any) -> None:
        db.session.add(
            Order(
                shop_id=shop.id,
                shopify_order_id=900_000 + n,
                name=f"#{1000 + n}",
                currency="USD",
                total=Decimal("10.00") + n,
                ordered_at=now - timedelta(hours=hours_ago),
                campaign_id=campaign.id,
                attribution_reason=fields.pop("reason", "click"),
                **fields,
            )
        )

    for n in range(COUNTED):  # #1000 is the oldest, the last one the newest
        order(n, sale, COUNTED - n, reason="discount" if n % 3 == 0 else "click")
    order(100, sale, 0, test=True)
    order(101, sale, 0, cancelled_at=now)
    order(102, other, 0)
    db.session.commit()
    return {"shop": shop.domain, "campaign": sale.id}


def test_orders_table_pages_from_the_json_api(page, live_server, dev_login) -> None:
    """The first page of orders is shown newest first; "Load more" appends the rest once and
    then hides; test, cancelled and other campaigns' orders never appear."""
    ids = seed()
    page.goto(admin_url(live_server.url, f"/app/campaigns/{ids['campaign']}", ids["shop"]))
    settle(page)
    rows = page.locator("#orders tbody tr")
    assert rows.count() == PAGE_SIZE
    newest = rows.nth(0).locator("td")
    assert newest.nth(0).inner_text() == f"#{1000 + COUNTED - 1}"
    assert newest.nth(2).inner_text() == "Clicked"  # 29 % 3 != 0
    assert newest.nth(4).inner_text() == "$39.00"
    more = page.locator("#orders-more")
    assert more.is_visible()

    page.get_by_role("button", name="Load more").click()
    page.wait_for_function(f"document.querySelectorAll('#orders tbody tr').length === {COUNTED}")
    assert more.is_hidden()
    names = rows.locator("td:first-child").all_inner_texts()
    assert names == [f"#{1000 + n}" for n in reversed(range(COUNTED))]
    assert rows.nth(COUNTED - 1).locator("td").nth(2).inner_text() == "Discount code"
