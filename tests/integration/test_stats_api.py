"""The analytics API: documented in OpenAPI, money as strings, and never across shops."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask.testing import FlaskClient

from shopify_app.extensions import db
from shopify_app.models import Flow, Shop
from shopify_app.services.orders import ingest_order
from tests.conftest import ApiClient, make_shop
from tests.integration.analytics_support import at, campaign, click, link, message, subscriber

ORDER_TIME = at("2026-10-20T18:00:00+00:00")

ANALYTICS_PATHS = (
    "/api/analytics/campaigns/{campaign_id}",
    "/api/analytics/campaigns/{campaign_id}/variants",
    "/api/analytics/campaigns/{campaign_id}/timeseries",
    "/api/analytics/campaigns/{campaign_id}/results.csv",
    "/api/analytics/flows/{flow_id}",
    "/api/analytics/flows/{flow_id}/timeseries",
    "/api/analytics/shop",
    "/api/analytics/timeseries",
    "/api/analytics/orders.csv",
    "/api/analytics/attribution/recompute",
)


def seed_shop(shop: Shop, phone: str, total: str) -> dict[str, int]:
    """A campaign whose one click earned one order of `total`, and a flow."""
    sub = subscriber(shop, phone)
    sale = campaign(shop, f"Sale of {shop.domain}")
    msg = message(shop, sub, sent=ORDER_TIME - timedelta(days=1), campaign_id=sale.id)
    click(shop, link(shop, msg, f"Tok{shop.id:05d}00000000"), ORDER_TIME - timedelta(hours=3))
    flow = Flow(shop_id=shop.id, kind="welcome", name="Welcome", enabled=True)
    db.session.add(flow)
    db.session.commit()
    ingest_order(
        shop,
        {
            "id": 40000 + shop.id,
            "name": f"#{shop.id}",
            "created_at": ORDER_TIME.isoformat(),
            "updated_at": ORDER_TIME.isoformat(),
            "currency": "USD",
            "total_price": total,
            "phone": phone,
            "discount_codes": [],
            "refunds": [],
        },
        triggered_at=ORDER_TIME,
    )
    db.session.commit()
    return {"campaign": sale.id, "flow": flow.id}


@pytest.fixture
def two_shops(shop: Shop) -> dict[str, dict[str, int]]:
    other = make_shop("rival-store.myshopify.com")
    return {
        "mine": seed_shop(shop, "+16175550101", "42.50"),
        "theirs": seed_shop(other, "+16175550102", "999.00"),
    }


def test_routes_are_in_the_openapi_document(client: FlaskClient) -> None:
    """Every analytics route, with its schema, is in /api/openapi.json."""
    spec = client.get("/api/openapi.json").get_json()
    for path in ANALYTICS_PATHS:
        assert path in spec["paths"], path
    schemas = spec["components"]["schemas"]
    assert {"CampaignStats", "FlowStats", "ShopStats", "Series", "Holdout"} <= set(schemas)
    assert (
        "ROI = (revenue - spend) / spend"
        in next(t for t in spec["tags"] if t["name"] == "analytics")["description"]
    )
    assert schemas["CampaignStats"]["properties"]["revenue"]["type"] == "string"


def test_campaign_stats_route(api: ApiClient, two_shops) -> None:
    """Money comes as Decimal strings; the ROI formula is stated."""
    body = api.get(f"/api/analytics/campaigns/{two_shops['mine']['campaign']}").get_json()
    assert (body["orders"], body["revenue"], body["revenue_by_reason"]["click"]) == (
        1,
        "42.50",
        "42.50",
    )
    assert body["spend"] == "0.01" and body["roi_formula"] == "roi = (revenue - spend) / spend"
    assert body["roi"] == "5378.7468"  # (42.50 - 0.0079) / 0.0079
    variants = api.get(f"/api/analytics/campaigns/{two_shops['mine']['campaign']}/variants")
    assert variants.status_code == 200 and variants.get_json()[0]["revenue"] == "42.50"


def test_a_token_never_reads_another_shops_figures(api: ApiClient, two_shops) -> None:
    """Shop A's token gets 404 for shop B's campaign, flow and exports, and B's orders never
    appear in A's shop figures or exports."""
    theirs = two_shops["theirs"]
    for path in (
        f"/api/analytics/campaigns/{theirs['campaign']}",
        f"/api/analytics/campaigns/{theirs['campaign']}/variants",
        f"/api/analytics/campaigns/{theirs['campaign']}/timeseries",
        f"/api/analytics/campaigns/{theirs['campaign']}/results.csv",
        f"/api/analytics/flows/{theirs['flow']}",
        f"/api/analytics/flows/{theirs['flow']}/timeseries",
        f"/api/analytics/orders.csv?campaign_id={theirs['campaign']}",
        f"/api/analytics/orders.csv?flow_id={theirs['flow']}",
    ):
        response = api.get(path)
        assert response.status_code == 404, path
        assert response.get_json()["error"]["code"] == "not_found"
    shop = api.get("/api/analytics/shop?since=2026-10-01&until=2026-10-31").get_json()
    assert (shop["orders"], shop["revenue"]) == (1, "42.50")
    export = api.get("/api/analytics/orders.csv?since=2026-10-01&until=2026-10-31")
    assert export.status_code == 200 and export.mimetype == "text/csv"
    text = export.get_data(as_text=True)
    assert "42.50" in text and "999.00" not in text and "rival-store" not in text
    series = api.get("/api/analytics/timeseries?since=2026-10-20&until=2026-10-20").get_json()
    assert series["timezone"] == "America/New_York"
    assert series["points"] == [
        {
            "date": "2026-10-20",
            "sent": 0,
            "clicks": 1,
            "orders": 1,
            "revenue": "42.50",
            "new_subscribers": 0,
            "unsubscribes": 0,
        }
    ]


def test_without_a_token_nothing_is_readable(client: FlaskClient, two_shops) -> None:
    """No session token: 401 on stats and exports alike."""
    for path in (
        f"/api/analytics/campaigns/{two_shops['mine']['campaign']}",
        "/api/analytics/orders.csv",
    ):
        assert client.get(path).status_code == 401


def test_results_csv_route(api: ApiClient, two_shops) -> None:
    """The campaign results export is a CSV attachment, one line per recipient."""
    response = api.get(f"/api/analytics/campaigns/{two_shops['mine']['campaign']}/results.csv")
    assert response.status_code == 200
    assert "attachment" in response.headers["Content-Disposition"]
    lines = response.get_data(as_text=True).strip().splitlines()
    assert lines[0].startswith("message_id,subscriber_id,phone")
    assert len(lines) == 2 and lines[1].endswith(",1,1,42.50")


def test_flow_route_and_ranges(api: ApiClient, two_shops) -> None:
    """A flow with no runs reports zeros; a backwards or over-long range is a 400."""
    body = api.get(f"/api/analytics/flows/{two_shops['mine']['flow']}").get_json()
    assert (body["recipients"], body["revenue"], body["runs"]["total"]) == (0, "0.00", 0)
    assert body["holdout"]["enabled"] is False
    bad = api.get("/api/analytics/shop?since=2026-10-10&until=2026-10-01")
    assert bad.status_code == 400 and bad.get_json()["error"]["code"] == "bad_range"
    assert api.get("/api/analytics/timeseries?since=2024-01-01&until=2026-01-01").status_code == 400
    assert api.get("/api/analytics/shop?since=yesterday").status_code == 422
