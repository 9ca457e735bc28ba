"""Segment rules against a seeded database: each field and operator, groups, built-ins,
exclusions, validation errors, and the segments API."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from shopify_app.extensions import db
from shopify_app.models import Campaign, Checkout, Click, Link, Message, Shop, utcnow
from shopify_app.services import segments
from shopify_app.services.segments import SegmentError
from tests.integration.campaign_support import subscriber

NOW = utcnow()
DAY = timedelta(days=1)


@pytest.fixture
def people(shop: Shop) -> dict[str, int]:
    """Seven subscribers (and three who may not be texted) with known histories."""
    s = {
        # a loyal customer: old subscriber, 5 orders, clicked yesterday, got campaign X
        "loyal": subscriber(
            shop,
            "+12025550001",
            source="checkout",
            country="US",
            subscribed_at=NOW - 200 * DAY,
            orders_count=5,
            total_spent=Decimal("500.00"),
            last_order_at=NOW - 3 * DAY,
        ),
        # new from the widget in Canada, never bought, abandoned a checkout 2 days ago
        "newbie": subscriber(
            shop, "+12025550002", source="widget", country="CA", subscribed_at=NOW - 2 * DAY
        ),
        # lapsed buyer: one order long ago, clicked 40 days ago
        "lapsed": subscriber(
            shop,
            "+12025550003",
            source="import",
            country="US",
            subscribed_at=NOW - 400 * DAY,
            orders_count=1,
            total_spent=Decimal("20.00"),
            last_order_at=NOW - 100 * DAY,
        ),
        # two orders, spent exactly 100, abandoned a checkout 20 days ago
        "steady": subscriber(
            shop,
            "+12025550004",
            source="keyword",
            country="GB",
            subscribed_at=NOW - 50 * DAY,
            orders_count=2,
            total_spent=Decimal("100.00"),
            last_order_at=NOW - 10 * DAY,
        ),
        # only a bot clicked their link; a checkout 30 minutes ago (not abandoned yet)
        "botted": subscriber(
            shop, "+12025550005", source="widget", country="US", subscribed_at=NOW - 10 * DAY
        ),
        # held out of campaign X; their checkout completed
        "held": subscriber(
            shop, "+12025550006", source="admin", country="US", subscribed_at=NOW - 5 * DAY
        ),
        # texted 2 hours ago by a flow
        "recent": subscriber(
            shop, "+12025550007", source="widget", country="US", subscribed_at=NOW - 60 * DAY
        ),
    }
    # never in any audience: unsubscribed, pending, invalid number
    subscriber(shop, "+12025550008", status="unsubscribed", orders_count=9)
    subscriber(shop, "+12025550009", status="pending", orders_count=9)
    subscriber(shop, "+12025550010", phone_invalid=True, orders_count=9)
    ids = {k: v.id for k, v in s.items()}
    x = Campaign(shop_id=shop.id, name="X", status="sent", body="x")
    db.session.add(x)
    db.session.flush()
    ids["campaign_x"] = x.id

    def message(who: str, status: str, **fields: Any) -> int:
        row = Message(
            shop_id=shop.id,
            subscriber_id=ids[who],
            kind=fields.pop("kind", "campaign"),
            status=status,
            due_at=NOW - 5 * DAY,
            **fields,
        )
        db.session.add(row)
        db.session.flush()
        return row.id

    sent = NOW - 5 * DAY
    loyal_msg = message("loyal", "delivered", campaign_id=x.id, sent_at=sent)
    message("lapsed", "failed", campaign_id=x.id)
    message("held", "skipped", campaign_id=x.id, skip_reason="holdout")
    botted_msg = message("botted", "sent", campaign_id=x.id, sent_at=sent)
    message("recent", "sent", kind="flow", sent_at=NOW - timedelta(hours=2))

    def click(who: str, message_id: int | None, at: Any, bot: bool = False) -> None:
        link = Link(
            shop_id=shop.id,
            token=f"tok{who}{int(bot)}",
            message_id=message_id,
            subscriber_id=ids[who],
            url="https://shop.example/",
        )
        db.session.add(link)
        db.session.flush()
        db.session.add(
            Click(
                shop_id=shop.id,
                link_id=link.id,
                message_id=message_id,
                subscriber_id=ids[who],
                clicked_at=at,
                is_bot=bot,
            )
        )

    click("loyal", loyal_msg, NOW - DAY)
    click("lapsed", None, NOW - 40 * DAY)
    click("botted", botted_msg, NOW - DAY, bot=True)

    def checkout(who: str, token: str, started: Any, completed: Any = None) -> None:
        db.session.add(
            Checkout(
                shop_id=shop.id,
                token=token,
                subscriber_id=ids[who],
                created_at=started,
                completed_at=completed,
            )
        )

    checkout("newbie", "c1", NOW - 2 * DAY)
    checkout("steady", "c2", NOW - 20 * DAY)
    checkout("botted", "c3", NOW - timedelta(minutes=30))
    checkout("held", "c4", NOW - 3 * DAY, completed=NOW - 3 * DAY)
    db.session.commit()
    return ids


def names(
    shop: Shop,
    people: dict[str, int],
    tree: dict[str, Any],
    exclusions: dict[str, Any] | None = None,
) -> set[str]:
    """Who the tree selects, by fixture name (through the compiled WHERE)."""
    from sqlalchemy import select

    from shopify_app.models import Subscriber

    ctx = segments.Context(shop.id, shop.timezone, NOW)
    where = segments.audience_condition(
        segments.validate(tree), segments.validate_exclusions(exclusions), ctx
    )
    found = set(db.session.scalars(select(Subscriber.id).where(where)))
    by_id = {v: k for k, v in people.items() if k != "campaign_x"}
    count = segments.count(shop.id, tree, exclusions, zone=shop.timezone, now=NOW)
    assert count == len(found)
    return {by_id[i] for i in found}


def rule(field: str, operator: str, value: Any) -> dict[str, Any]:
    return {"op": "and", "rules": [{"field": field, "operator": operator, "value": value}]}


EVERYONE = {"loyal", "newbie", "lapsed", "steady", "botted", "held", "recent"}


@pytest.mark.parametrize(
    ("field", "operator", "value", "expected"),
    [
        ("subscribed_at", "within_days", 7, {"newbie", "held"}),
        ("subscribed_at", "after", "within:11", {"newbie", "held", "botted"}),
        ("subscribed_at", "before", "within:100", {"loyal", "lapsed"}),
        ("source", "in", ["widget", "keyword"], {"newbie", "steady", "botted", "recent"}),
        ("country", "in", ["ca", "GB"], {"newbie", "steady"}),
        ("orders_count", "=", 2, {"steady"}),
        ("orders_count", ">", 1, {"loyal", "steady"}),
        ("orders_count", "<", 1, {"newbie", "botted", "held", "recent"}),
        ("orders_count", ">=", 2, {"loyal", "steady"}),
        ("orders_count", "<=", 1, {"newbie", "lapsed", "botted", "held", "recent"}),
        ("total_spent", "=", "100", {"steady"}),
        ("total_spent", ">", "100.00", {"loyal"}),
        ("total_spent", "<", 100, {"newbie", "lapsed", "botted", "held", "recent"}),
        ("total_spent", ">=", "100", {"loyal", "steady"}),
        ("total_spent", "<=", "20", {"newbie", "lapsed", "botted", "held", "recent"}),
        ("last_order", "within_days", 30, {"loyal", "steady"}),
        ("last_order", "not_within_days", 30, {"newbie", "lapsed", "botted", "held", "recent"}),
        ("clicked", "within_days", 7, {"loyal"}),
        ("clicked", "within_days", 60, {"loyal", "lapsed"}),
        ("campaign", "received", "X", {"loyal", "botted"}),
        ("campaign", "not_received", "X", EVERYONE - {"loyal", "botted"}),
        ("checkout_abandoned", "within_days", 7, {"newbie"}),
        ("checkout_abandoned", "within_days", 30, {"newbie", "steady"}),
    ],
)
def test_each_operator(
    shop: Shop, people: dict[str, int], field: str, operator: str, value: Any, expected: set[str]
) -> None:
    """Each field/operator selects exactly the seeded subscribers it should, and only
    subscribed, valid numbers."""
    if value == "X":
        value = people["campaign_x"]
    if isinstance(value, str) and value.startswith("within:"):
        value = (NOW - int(value.split(":")[1]) * DAY).isoformat()
    assert names(shop, people, rule(field, operator, value)) == expected


def test_dates_are_days_in_the_shop_zone(shop: Shop) -> None:
    """A bare date means midnight in the shop's time zone (New York), not in UTC."""
    from datetime import UTC, datetime

    late_evening = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)  # 22:00 on the 9th in New York
    sub = subscriber(shop, "+12025550099", subscribed_at=late_evening)
    ids = {"evening": sub.id}
    assert names(shop, ids, rule("subscribed_at", "after", "2026-03-10")) == set()
    assert names(shop, ids, rule("subscribed_at", "before", "2026-03-10")) == {"evening"}
    assert names(shop, ids, rule("subscribed_at", "after", "2026-03-09")) == {"evening"}
    with_offset = rule("subscribed_at", "after", "2026-03-10T00:00:00+00:00")
    assert names(shop, ids, with_offset) == {"evening"}


def test_groups_nest(shop: Shop, people: dict[str, int]) -> None:
    """(US AND bought) OR (abandoned a checkout AND never bought)."""
    tree = {
        "op": "or",
        "rules": [
            {
                "op": "and",
                "rules": [
                    {"field": "country", "operator": "in", "value": ["US"]},
                    {"field": "orders_count", "operator": ">=", "value": 1},
                ],
            },
            {
                "op": "and",
                "rules": [
                    {"field": "checkout_abandoned", "operator": "within_days", "value": 7},
                    {"builtin": "never_purchased"},
                ],
            },
        ],
    }
    assert names(shop, people, tree) == {"loyal", "lapsed", "newbie"}
    assert names(shop, people, {"op": "or", "rules": []}) == set()
    assert names(shop, people, {"op": "and", "rules": []}) == EVERYONE


@pytest.mark.parametrize(
    ("builtin", "expected"),
    [
        ("all", EVERYONE),
        ("past_buyers", {"loyal", "lapsed", "steady"}),
        ("never_purchased", {"newbie", "botted", "held", "recent"}),
        ("recently_active", {"loyal", "newbie", "steady", "botted", "held"}),
        ("engaged", {"loyal", "lapsed"}),
    ],
)
def test_builtins(shop: Shop, people: dict[str, int], builtin: str, expected: set[str]) -> None:
    """Built-ins are exactly their documented rule trees."""
    assert names(shop, people, {"builtin": builtin}) == expected


def test_exclusion_messaged_recently(shop: Shop, people: dict[str, int]) -> None:
    """Texted a campaign or flow in the last N hours: left out."""
    assert names(shop, people, {"builtin": "all"}, {"messaged_within_hours": 3}) == EVERYONE - {
        "recent"
    }
    assert names(
        shop, people, {"builtin": "all"}, {"messaged_within_hours": 24 * 6}
    ) == EVERYONE - {"recent", "loyal", "botted"}


def test_other_shops_rows_never_count(shop: Shop, other_shop: Shop, people: dict[str, int]) -> None:
    """The shop restriction holds for the subscribers and inside every EXISTS."""
    subscriber(other_shop, "+12025550001", orders_count=3)
    assert segments.count(other_shop.id, {"builtin": "past_buyers"}) == 1
    assert segments.count(other_shop.id, rule("campaign", "received", people["campaign_x"])) == 0
    assert segments.count(shop.id, {"builtin": "past_buyers"}) == 3


@pytest.mark.parametrize(
    ("tree", "message"),
    [
        ({"field": "zodiac", "operator": "in", "value": ["leo"]}, "unknown field 'zodiac'"),
        ({"field": "country", "operator": "=", "value": "US"}, "unknown operator '='"),
        ({"field": "orders_count", "operator": ">", "value": "many"}, "whole number"),
        ({"field": "orders_count", "operator": ">", "value": True}, "whole number"),
        ({"field": "total_spent", "operator": ">", "value": "lots"}, "must be a number"),
        ({"field": "country", "operator": "in", "value": "US"}, "non-empty list"),
        ({"field": "country", "operator": "in", "value": ["USA"]}, "two-letter"),
        ({"field": "source", "operator": "in", "value": ["fax"]}, "unknown source"),
        ({"field": "last_order", "operator": "within_days", "value": 0}, "between 1"),
        ({"field": "subscribed_at", "operator": "before", "value": "yesterday"}, "not a date"),
        ({"field": "subscribed_at", "operator": "before", "value": "2026-01-01T10:00"}, "offset"),
        ({"op": "xor", "rules": []}, "unknown group operator"),
        ({"builtin": "vips"}, "unknown built-in"),
        ({"op": "and", "rules": [{"nothing": 1}]}, "needs 'op'"),
        ([], "must be an object"),
    ],
)
def test_validation_errors(tree: Any, message: str) -> None:
    """Unknown fields/operators and wrong value types are refused with a clear message."""
    with pytest.raises(SegmentError) as caught:
        segments.validate(tree)
    assert message in caught.value.message


def test_validation_names_the_node() -> None:
    tree = {
        "op": "and",
        "rules": [
            {"builtin": "all"},
            {"op": "or", "rules": [{"field": "country", "operator": "in", "value": []}]},
        ],
    }
    with pytest.raises(SegmentError) as caught:
        segments.validate(tree)
    assert caught.value.path == "rules.rules[1].rules[0].value"


def test_segments_api(api, shop: Shop, people: dict[str, int]) -> None:
    """Save, read, change, count (saved and live), list built-ins and fields, delete."""
    made = api.post("/api/segments", json={"name": "Buyers", "rules": {"builtin": "past_buyers"}})
    assert made.status_code == 201
    sid = made.get_json()["id"]
    assert api.get(f"/api/segments/{sid}").get_json()["name"] == "Buyers"
    assert api.get(f"/api/segments/{sid}/count").get_json() == {"count": 3}
    changed = api.patch(f"/api/segments/{sid}", json={"rules": rule("country", "in", ["GB"])})
    assert changed.status_code == 200
    assert api.get(f"/api/segments/{sid}/count").get_json() == {"count": 1}
    live = api.post(
        "/api/segments/count",
        json={"rules": {"builtin": "all"}, "exclusions": {"messaged_within_hours": 3}},
    )
    assert live.get_json() == {"count": 6}
    bad = api.post("/api/segments/count", json={"rules": {"field": "nope"}})
    assert bad.status_code == 422
    assert bad.get_json()["error"]["code"] == "invalid_rules"
    assert bad.get_json()["error"]["details"]["path"] == "rules"
    builtins = api.get("/api/segments/builtins").get_json()
    assert {b["name"] for b in builtins} == set(segments.BUILTINS)
    assert all(b["description"] for b in builtins)
    fields = {f["field"] for f in api.get("/api/segments/fields").get_json()}
    assert fields == set(segments.OPERATORS)
    assert [s["id"] for s in api.get("/api/segments").get_json()["items"]] == [sid]
    assert api.delete(f"/api/segments/{sid}").status_code == 204
    assert api.get(f"/api/segments/{sid}").status_code == 404


def test_segment_used_by_a_scheduled_campaign_is_kept(api, shop: Shop) -> None:
    made = api.post("/api/segments", json={"name": "All", "rules": {"builtin": "all"}})
    sid = made.get_json()["id"]
    db.session.add(
        Campaign(shop_id=shop.id, name="c", status="scheduled", segment_id=sid, send_at=NOW + DAY)
    )
    db.session.commit()
    answer = api.delete(f"/api/segments/{sid}")
    assert answer.status_code == 409
    assert answer.get_json()["error"]["code"] == "segment_in_use"
