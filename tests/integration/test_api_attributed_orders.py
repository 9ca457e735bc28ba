"""GET /api/analytics/orders: the shop's attributed orders as JSON, newest first, keyset-paged,
filtered like orders.csv (plus reason), and in agreement with the stats and the CSV."""

from __future__ import annotations

import base64
import csv
import io
import json
import random
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from flask.testing import FlaskClient

from shopify_app.extensions import db
from shopify_app.models import Flow, Order, Shop
from shopify_app.services import stats
from shopify_app.services.exports import attributed_orders_csv
from shopify_app.services.timeseries import local_bounds
from tests.conftest import ApiClient, make_shop
from tests.integration.analytics_support import at, campaign, message, subscriber
from tests.integration.test_stats_seeded import ZONE, seed

URL = "/api/analytics/orders"
OCTOBER = "since=2026-10-01&until=2026-10-31"
NOON = at("2026-10-20T16:00:00+00:00")


def order(shop: Shop, number: int, when: datetime, **fields: Any) -> Order:
    row = Order(
        shop_id=shop.id,
        shopify_order_id=fields.pop("shopify_order_id", 5_000_000 + shop.id * 1000 + number),
        name=fields.pop("name", f"#{1000 + number}"),
        currency="USD",
        total=Decimal(fields.pop("total", "10.00")),
        ordered_at=when,
        attribution_reason=fields.pop("reason", "click"),
        attributed_at=when,
        **fields,
    )
    db.session.add(row)
    db.session.flush()
    return row


def fetch(api: ApiClient, query: str) -> dict[str, Any]:
    response = api.get(f"{URL}?{query}")
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def every_page(api: ApiClient, query: str, limit: int) -> list[list[dict[str, Any]]]:
    pages, cursor = [], None
    while True:
        page = fetch(api, f"{query}&limit={limit}" + (f"&cursor={cursor}" if cursor else ""))
        assert page["limit"] == limit
        pages.append(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return pages


@pytest.fixture
def rows(shop: Shop) -> dict[str, Any]:
    """Two campaigns and a flow of this shop with orders of each reason; a test, a cancelled
    and an unattributed order; and another shop whose orders fall at the same times."""
    sub = subscriber(shop, "+16175550111")
    sale = campaign(shop, "Fall sale")
    winter = campaign(shop, "Winter preview")
    flow = Flow(shop_id=shop.id, kind="welcome", name="Welcome", enabled=True)
    db.session.add(flow)
    db.session.flush()
    msg = message(shop, sub, sent=NOON - timedelta(days=1), campaign_id=sale.id)
    common = {"campaign_id": sale.id, "message_id": msg.id, "subscriber_id": sub.id}
    made = {
        "click": order(shop, 1, NOON, total="42.50", **common),
        "discount": order(shop, 2, NOON + timedelta(hours=1), reason="discount", **common),
        "view": order(shop, 3, NOON - timedelta(hours=1), reason="view", total="7.25", **common),
        # 02:00 UTC on the 21st is still the 20th in New York.
        "late": order(shop, 4, at("2026-10-21T02:00:00+00:00"), campaign_id=winter.id),
        "flow": order(shop, 5, NOON - timedelta(days=2), flow_id=flow.id),
        "test": order(shop, 6, NOON, test=True, **common),
        "cancelled": order(shop, 7, NOON, cancelled_at=NOON + timedelta(hours=2), **common),
        "unattributed": order(shop, 8, NOON, reason=None),
    }
    other = make_shop("rival-store.myshopify.com")
    theirs = campaign(other, "Their sale")
    their_flow = Flow(shop_id=other.id, kind="welcome", name="Theirs", enabled=True)
    db.session.add(their_flow)
    db.session.flush()
    for n in range(3):
        order(other, n, NOON, campaign_id=theirs.id, total="999.00")
    db.session.commit()
    return {
        "orders": {k: v.id for k, v in made.items()},
        "sale": sale.id,
        "winter": winter.id,
        "flow": flow.id,
        "message": msg.id,
        "subscriber": sub.id,
        "their_campaign": theirs.id,
        "their_flow": their_flow.id,
    }


def ids(items: list[dict[str, Any]]) -> list[int]:
    return [item["id"] for item in items]


def test_a_session_token_is_required(client: FlaskClient, rows) -> None:
    """Without a token: 401 in the API's error shape."""
    response = client.get(f"{URL}?{OCTOBER}")
    assert response.status_code == 401
    assert set(response.get_json()["error"]) == {"code", "message", "details"}


def test_the_shops_counted_orders_newest_first(api: ApiClient, shop: Shop, rows) -> None:
    """Only this shop's attributed orders, test and cancelled ones left out, newest first, each
    with its source, its times in UTC and in the shop's zone, and money as a string."""
    body = fetch(api, OCTOBER)
    o = rows["orders"]
    assert ids(body["items"]) == [o["late"], o["discount"], o["click"], o["view"], o["flow"]]
    assert body["next_cursor"] is None and body["limit"] == 50
    click = next(item for item in body["items"] if item["id"] == o["click"])
    assert click == {
        "id": o["click"],
        "shopify_order_id": 5_000_000 + shop.id * 1000 + 1,
        "name": "#1001",
        "ordered_at": "2026-10-20T16:00:00+00:00",
        "ordered_at_local": "2026-10-20T12:00:00-04:00",
        "currency": "USD",
        "net_total": "42.50",
        "reason": "click",
        "campaign_id": rows["sale"],
        "campaign_name": "Fall sale",
        "flow_id": None,
        "flow_name": None,
        "message_id": rows["message"],
        "subscriber_id": rows["subscriber"],
    }
    flow = next(item for item in body["items"] if item["id"] == o["flow"])
    assert (flow["flow_id"], flow["flow_name"], flow["campaign_name"]) == (
        rows["flow"],
        "Welcome",
        None,
    )
    assert "999.00" not in json.dumps(body) and "phone" not in json.dumps(body)


def test_another_shops_campaign_or_flow_is_a_404(api: ApiClient, rows) -> None:
    """Filtering on another shop's campaign or flow answers 404, as orders.csv does."""
    for query in (
        f"campaign_id={rows['their_campaign']}",
        f"flow_id={rows['their_flow']}",
        "campaign_id=9223372036854775808",
    ):
        response = api.get(f"{URL}?{query}")
        assert response.status_code == 404, query
        assert response.get_json()["error"]["code"] == "not_found"


def test_filters(api: ApiClient, rows) -> None:
    """campaign_id, flow_id, reason and the local-day range each narrow the list."""
    o = rows["orders"]
    sale = fetch(api, f"{OCTOBER}&campaign_id={rows['sale']}")["items"]
    assert ids(sale) == [o["discount"], o["click"], o["view"]]
    assert ids(fetch(api, f"{OCTOBER}&campaign_id={rows['winter']}")["items"]) == [o["late"]]
    assert ids(fetch(api, f"{OCTOBER}&flow_id={rows['flow']}")["items"]) == [o["flow"]]
    assert ids(fetch(api, f"{OCTOBER}&reason=view")["items"]) == [o["view"]]
    assert ids(fetch(api, f"{OCTOBER}&reason=discount&campaign_id={rows['winter']}")["items"]) == []
    # The 20th in New York runs to 04:00 UTC on the 21st: the late order is in, the flow's
    # order of the 18th is out.
    day = fetch(api, "since=2026-10-20&until=2026-10-20")["items"]
    assert ids(day) == [o["late"], o["discount"], o["click"], o["view"]]
    assert fetch(api, "since=2026-10-21&until=2026-10-31")["items"] == []
    bad = api.get(f"{URL}?reason=email")
    assert bad.status_code == 422 and set(bad.get_json()["error"]) == {"code", "message", "details"}
    backwards = api.get(f"{URL}?since=2026-10-10&until=2026-10-01")
    assert backwards.status_code == 400 and backwards.get_json()["error"]["code"] == "bad_range"


def test_pages_cover_every_order_once_in_order(api: ApiClient, shop: Shop, rows) -> None:
    """Three pages of a small limit hold every order exactly once, newest first, even when
    orders share a time and when an older order was stored after newer ones."""
    sale = rows["sale"]
    for n in range(20, 22):  # same time as the click order: the id breaks the tie
        order(shop, n, NOON, campaign_id=sale)
    order(shop, 30, NOON - timedelta(days=5), campaign_id=sale)  # stored last, placed first
    db.session.commit()
    everything = fetch(api, f"{OCTOBER}&campaign_id={sale}")["items"]
    assert len(everything) == 6
    keys = [(item["ordered_at"], item["id"]) for item in everything]
    assert keys == sorted(keys, reverse=True)
    pages = every_page(api, f"{OCTOBER}&campaign_id={sale}", limit=2)
    assert [len(page) for page in pages] == [2, 2, 2]
    assert [item for page in pages for item in page] == everything


def test_a_forged_cursor_is_a_400(api: ApiClient, rows) -> None:
    """A cursor that is not one we wrote answers 400 bad_cursor, never a 500."""
    forged = [
        "not-base64!",
        {"id": 1},
        {"at": "yesterday", "id": 1},
        {"at": "2026-10-20T16:00:00+00:00", "id": 2**70},
        {"at": "2026-10-20T16:00:00+00:00", "id": "1"},
        {"at": "0001-01-01T00:00:00+14:00", "id": 1},
    ]
    for value in forged:
        cursor = (
            value
            if isinstance(value, str)
            else base64.urlsafe_b64encode(json.dumps(value).encode()).decode()
        )
        response = api.get(f"{URL}?{OCTOBER}&cursor={cursor}")
        assert response.status_code == 400, value
        assert response.get_json()["error"]["code"] == "bad_cursor"


def test_agrees_with_the_stats_and_the_csv(api: ApiClient, shop: Shop) -> None:
    """For a seeded campaign and flow (refunds, test and cancelled orders, every reason), the
    JSON's count and revenue equal the stats', and its orders are the CSV's counted lines."""
    data = seed(shop, random.Random(20261005))
    seed(make_shop("noise-shop.myshopify.com"), random.Random(99), orders=30)
    query = "since=2026-09-01&until=2026-12-31"
    since, until = local_bounds(datetime(2026, 9, 1).date(), datetime(2026, 12, 31).date(), ZONE)
    for key, report in (
        ("campaign_id", stats.campaign_stats(shop.id, data["campaign"])),
        ("flow_id", stats.flow_stats(shop.id, data["flow"])),
    ):
        source = data["campaign" if key == "campaign_id" else "flow"]
        items = [i for page in every_page(api, f"{query}&{key}={source}", 3) for i in page]
        assert report["orders"] > 3, key  # more than one page
        assert len(items) == len({i["id"] for i in items}) == report["orders"]
        revenue = sum((Decimal(i["net_total"]) for i in items), Decimal("0.00"))
        assert str(revenue) == report["revenue"]
        for reason in ("discount", "click", "view"):
            mine = [i for i in items if i["reason"] == reason]
            assert len(mine) == report["orders_by_reason"][reason]
            amount = sum((Decimal(i["net_total"]) for i in mine), Decimal("0.00"))
            assert str(amount) == report["revenue_by_reason"][reason]
        lines = list(
            csv.DictReader(
                io.StringIO("".join(attributed_orders_csv(shop.id, since, until, **{key: source})))
            )
        )
        left_out = [line for line in lines if "yes" in (line["test"], line["cancelled"])]
        assert key == "flow_id" or left_out  # the campaign has test or cancelled orders to drop
        counted = {
            int(line["shopify_order_id"]): line["net_revenue"]
            for line in lines
            if line["test"] == "no" and line["cancelled"] == "no"
        }
        assert counted == {i["shopify_order_id"]: i["net_total"] for i in items}


def test_documented_in_openapi(client: FlaskClient) -> None:
    """The path, its filters and paging, and the item schema with money as a string."""
    doc = client.get("/api/openapi.json").get_json()
    get = doc["paths"]["/api/analytics/orders"]["get"]
    names = {p["name"] for p in get["parameters"]}
    assert {"since", "until", "campaign_id", "flow_id", "reason", "limit", "cursor"} <= names
    reason = next(p for p in get["parameters"] if p["name"] == "reason")
    assert {"discount", "click", "view"} <= set(reason["schema"]["enum"])
    schemas = doc["components"]["schemas"]
    assert set(schemas["AttributedOrderPage"]["properties"]) == {"items", "next_cursor", "limit"}
    item = schemas["AttributedOrder"]["properties"]
    assert item["net_total"]["type"] == "string" and "phone" not in item
