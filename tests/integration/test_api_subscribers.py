"""The subscribers API: search and keyset paging, detail with the ledger and messages, manual
unsubscribe, counts, daily growth in the shop's zone, and shop isolation."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask.testing import FlaskClient

from shopify_app.extensions import db
from shopify_app.models import ConsentEvent, Message, Shop, Subscriber, utcnow
from tests.conftest import ApiClient
from tests.integration.consent_support import add_subscriber, kinds, subscriber

NY = ZoneInfo("America/New_York")


def make(shop: Shop, phone: str, status: str = "subscribed", **fields: object) -> Subscriber:
    sub = add_subscriber(shop, phone, status)
    sub = db.session.get(Subscriber, sub.id)
    for key, value in fields.items():
        setattr(sub, key, value)
    db.session.commit()
    return sub


def test_search_filters_and_keyset_paging(api: ApiClient, shop: Shop) -> None:
    """Phone fragment, email, name, status, source and created dates; pages by cursor."""
    ada = make(
        shop, "+12025550101", email="ada@example.com", first_name="Ada", last_name="Lovelace"
    )
    make(shop, "+12025550102", "pending", email="grace@example.com", first_name="Grace")
    make(shop, "+12025550103", "unsubscribed", source="checkout")
    old = make(shop, "+13125550104", created_at=datetime(2025, 1, 10, 15, tzinfo=UTC))

    def phones(query: str) -> list[str]:
        resp = api.get(f"/api/subscribers?{query}")
        assert resp.status_code == 200, resp.get_json()
        return [item["phone"] for item in resp.get_json()["items"]]

    assert phones("phone=555-0101") == ["+12025550101"]
    assert phones("phone=(312)") == ["+13125550104"]
    assert phones("email=GRACE@") == ["+12025550102"]
    assert phones("name=love") == ["+12025550101"]
    assert phones("status=unsubscribed") == ["+12025550103"]
    assert phones("source=checkout") == ["+12025550103"]
    assert phones("created_to=2025-01-10") == ["+13125550104"]
    assert phones("created_from=2025-01-11") == ["+12025550103", "+12025550102", "+12025550101"]
    assert api.get("/api/subscribers?status=bogus").status_code == 422

    first = api.get("/api/subscribers?limit=3").get_json()
    assert [i["id"] for i in first["items"]] == sorted(
        [i["id"] for i in first["items"]], reverse=True
    )
    assert first["next_cursor"]
    rest = api.get(f"/api/subscribers?limit=3&cursor={first['next_cursor']}").get_json()
    assert [i["id"] for i in rest["items"]] == [ada.id if old.id > ada.id else old.id]
    assert rest["next_cursor"] is None


def test_detail_has_consent_history_and_messages(api: ApiClient, shop: Shop) -> None:
    """A subscriber's page: profile, every ledger event (oldest first) and its messages."""
    sub = make(shop, "+12025550101", first_name="Ada")
    db.session.add(
        Message(
            shop_id=shop.id,
            subscriber_id=sub.id,
            kind="campaign",
            status="sent",
            due_at=utcnow(),
            body="Sale today",
        )
    )
    db.session.commit()
    body = api.get(f"/api/subscribers/{sub.id}").get_json()
    assert body["phone"] == "+12025550101" and body["first_name"] == "Ada"
    assert [(e["kind"], e["source"]) for e in body["consent_events"]] == [
        ("requested", "widget"),
        ("confirmed", "widget"),
    ]
    assert body["consent_events"][0]["consent_text"] == "I agree"
    assert [(m["kind"], m["status"], m["body"]) for m in body["messages"]] == [
        ("campaign", "sent", "Sale today")
    ]


def test_manual_unsubscribe(api: ApiClient, shop: Shop) -> None:
    """Unsubscribe by hand: ledger event from `admin`, pending texts skipped, nothing sent;
    doing it again changes nothing."""
    sub = make(shop, "+12025550101")
    db.session.add(
        Message(
            shop_id=shop.id,
            subscriber_id=sub.id,
            kind="campaign",
            status="pending",
            due_at=utcnow(),
        )
    )
    db.session.commit()
    resp = api.post(f"/api/subscribers/{sub.id}/unsubscribe")
    assert resp.status_code == 200
    assert resp.get_json()["status"] == "unsubscribed"
    assert kinds(shop.id, sub.id)[-1] == ("opted_out", "admin")
    assert [(m["status"], m["kind"]) for m in resp.get_json()["messages"]] == [
        ("skipped", "campaign")
    ]
    again = api.post(f"/api/subscribers/{sub.id}/unsubscribe")
    assert again.status_code == 200
    assert len(kinds(shop.id, sub.id)) == 3


def test_counts_by_status(api: ApiClient, shop: Shop) -> None:
    make(shop, "+12025550101")
    make(shop, "+12025550102")
    make(shop, "+12025550103", "pending")
    make(shop, "+12025550104", "unsubscribed")
    assert api.get("/api/subscribers/counts").get_json() == {
        "pending": 1,
        "subscribed": 2,
        "unsubscribed": 1,
        "total": 4,
    }


def test_daily_growth_in_the_shop_zone(api: ApiClient, shop: Shop) -> None:
    """New, confirmed and unsubscribed per local day (America/New_York), zeros included."""
    today = datetime.now(NY).date()
    yesterday = today - timedelta(days=1)
    noon_today = datetime.combine(today, time(12), tzinfo=NY).astimezone(UTC)
    # 23:30 New York yesterday is already "today" in UTC: it must count for yesterday.
    late_yesterday = datetime.combine(yesterday, time(23, 30), tzinfo=NY).astimezone(UTC)
    if noon_today > utcnow():
        noon_today = utcnow() - timedelta(minutes=1)
    a = make(shop, "+12025550101", created_at=noon_today)
    b = make(shop, "+12025550102", created_at=late_yesterday)
    db.session.execute(
        ConsentEvent.__table__.update()
        .where(ConsentEvent.subscriber_id == a.id)
        .values(occurred_at=noon_today)
    )
    db.session.execute(
        ConsentEvent.__table__.update()
        .where(ConsentEvent.subscriber_id == b.id)
        .values(occurred_at=late_yesterday)
    )
    db.session.add(
        ConsentEvent(
            shop_id=shop.id,
            subscriber_id=b.id,
            kind="opted_out",
            source="keyword",
            occurred_at=noon_today,
        )
    )
    db.session.commit()

    body = api.get("/api/subscribers/growth?days=3").get_json()
    assert body["timezone"] == "America/New_York"
    assert body["days"] == [
        {
            "date": (today - timedelta(days=2)).isoformat(),
            "new": 0,
            "confirmed": 0,
            "unsubscribed": 0,
        },
        {"date": yesterday.isoformat(), "new": 1, "confirmed": 1, "unsubscribed": 0},
        {"date": today.isoformat(), "new": 1, "confirmed": 1, "unsubscribed": 1},
    ]
    assert api.get("/api/subscribers/growth?days=0").status_code == 422


def test_other_shops_rows_are_invisible(
    api: ApiClient, client: FlaskClient, shop: Shop, other_shop: Shop
) -> None:
    """A token for one shop never reads or changes another shop's subscribers."""
    mine = make(shop, "+12025550101")
    theirs = make(other_shop, "+12025550102")
    assert api.get(f"/api/subscribers/{theirs.id}").status_code == 404
    assert api.post(f"/api/subscribers/{theirs.id}/unsubscribe").status_code == 404
    assert subscriber(other_shop.id, "+12025550102").status == "subscribed"
    assert [i["id"] for i in api.get("/api/subscribers").get_json()["items"]] == [mine.id]
    assert api.get("/api/subscribers/counts").get_json()["total"] == 1
    other_api = ApiClient(client, other_shop.domain)
    assert other_api.get(f"/api/subscribers/{mine.id}").status_code == 404
    assert [i["id"] for i in other_api.get("/api/subscribers").get_json()["items"]] == [theirs.id]


def test_documented_in_openapi(client: FlaskClient) -> None:
    paths = client.get("/api/openapi.json").get_json()["paths"]
    for path in (
        "/api/subscribers",
        "/api/subscribers/{subscriber_id}",
        "/api/subscribers/{subscriber_id}/unsubscribe",
        "/api/subscribers/counts",
        "/api/subscribers/growth",
        "/api/imports",
        "/api/imports/{import_id}",
        "/api/imports/{import_id}/errors.csv",
    ):
        assert path in paths


def test_requires_a_session_token(client: FlaskClient, shop: Shop) -> None:
    resp = client.get("/api/subscribers")
    assert resp.status_code == 401
    assert resp.headers["X-Shopify-Retry-Invalid-Session-Request"] == "1"
