"""The discounts API: state and code counts, for the session's shop only."""

from __future__ import annotations

from flask.testing import FlaskClient

from shopify_app.extensions import db
from shopify_app.models import Shop
from tests.conftest import ApiClient, make_shop
from tests.integration.analytics_support import at, campaign, issued_code, message, subscriber


def seed(shop: Shop) -> int:
    sale = campaign(shop, "Codes", discount_mode="unique")
    for i in range(3):
        msg = message(
            shop,
            subscriber(shop, f"+1617555{shop.id:02d}{i:02d}"),
            sent=at("2026-10-10T15:00:00+00:00"),
            campaign_id=sale.id,
        )
        issued_code(shop, msg, f"SMS-{shop.id}X{i}ABCDE")
    db.session.commit()
    return sale.id


def test_list_and_detail_are_scoped(client: FlaskClient, api: ApiClient, shop: Shop) -> None:
    """A shop sees its discounts with code counts; another shop's is a 404 and not listed."""
    mine = seed(shop)
    other = make_shop("rival-codes.myshopify.com")
    seed(other)
    body = api.get("/api/discounts").get_json()
    [item] = body["items"]
    assert (item["campaign_id"], item["mode"], item["status"], item["value"]) == (
        mine,
        "unique",
        "ready",
        "15",
    )
    assert item["codes"]["ready"] == 3 and item["codes"]["failed"] == 0
    assert api.get(f"/api/discounts?campaign_id={mine}").get_json()["items"][0]["id"] == item["id"]
    assert api.get(f"/api/discounts/{item['id']}").get_json()["codes"]["ready"] == 3
    theirs = ApiClient(client, other.domain).get("/api/discounts").get_json()["items"][0]
    response = api.get(f"/api/discounts/{theirs['id']}")
    assert response.status_code == 404 and response.get_json()["error"]["code"] == "not_found"
    assert "/api/discounts/{discount_id}" in client.get("/api/openapi.json").get_json()["paths"]
