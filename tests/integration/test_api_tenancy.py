"""A session token for shop A can never read or change shop B's data — over every /api route.

The table grows by itself: every route under /api is found in the URL map, each path argument
is filled with an id of one of shop B's rows, and every method is tried with shop A's token.
A route whose argument this file does not know fails the test until it is added to FACTORIES.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal

from flask import Flask
from sqlalchemy import select

from shopify_app.extensions import db
from shopify_app.models import (
    Campaign,
    Checkout,
    ConsentEvent,
    Discount,
    Flow,
    ImportJob,
    Message,
    Order,
    OutboxMessage,
    Segment,
    Shop,
    Subscriber,
    Variant,
    utcnow,
)
from tests.conftest import ApiClient

B_PHONE = "+14155550199"
B_MARKER = "shop-b-secret-marker"


def _subscriber(shop: Shop) -> Subscriber:
    sub = db.session.scalars(Subscriber.for_shop(shop.id)).first()
    if sub is None:
        sub = Subscriber(
            shop_id=shop.id,
            phone=B_PHONE,
            first_name=B_MARKER,
            status="subscribed",
            source="widget",
            subscribed_at=utcnow(),
            country="US",
            timezone="America/Los_Angeles",
            total_spent=Decimal("10.00"),
        )
        db.session.add(sub)
        db.session.flush()
        db.session.add(
            ConsentEvent(
                shop_id=shop.id,
                subscriber_id=sub.id,
                kind="confirmed",
                source="widget",
                occurred_at=utcnow(),
                consent_text=B_MARKER,
            )
        )
    return sub


def _campaign(shop: Shop) -> Campaign:
    campaign = db.session.scalars(Campaign.for_shop(shop.id)).first()
    if campaign is None:
        campaign = Campaign(
            shop_id=shop.id, name=B_MARKER, body=f"{B_MARKER} hello", status="draft"
        )
        db.session.add(campaign)
        db.session.flush()
        db.session.add(Variant(shop_id=shop.id, campaign_id=campaign.id, label="A", body=B_MARKER))
        sub = _subscriber(shop)
        db.session.add(
            Message(
                shop_id=shop.id,
                subscriber_id=sub.id,
                campaign_id=campaign.id,
                kind="campaign",
                status="delivered",
                due_at=utcnow(),
                body=B_MARKER,
                sent_at=utcnow(),
            )
        )
    return campaign


def _segment(shop: Shop) -> Segment:
    seg = db.session.scalars(Segment.for_shop(shop.id)).first()
    if seg is None:
        seg = Segment(shop_id=shop.id, name=B_MARKER, rules={"op": "and", "rules": []})
        db.session.add(seg)
        db.session.flush()
    return seg


def _flow(shop: Shop) -> Flow:
    flow = db.session.scalars(Flow.for_shop(shop.id)).first()
    if flow is None:
        flow = Flow(
            shop_id=shop.id,
            kind="welcome",
            name=B_MARKER,
            enabled=True,
            steps=[{"type": "message", "body": B_MARKER}],
        )
        db.session.add(flow)
        db.session.flush()
    return flow


def _import(shop: Shop) -> ImportJob:
    job = db.session.scalars(ImportJob.for_shop(shop.id)).first()
    if job is None:
        job = ImportJob(
            shop_id=shop.id,
            filename=f"{B_MARKER}.csv",
            status="finished",
            refused_rows=[{"row": 2, "phone": B_PHONE, "reason": B_MARKER}],
        )
        db.session.add(job)
        db.session.flush()
    return job


def _order(shop: Shop) -> Order:
    order = db.session.scalars(Order.for_shop(shop.id)).first()
    if order is None:
        order = Order(
            shop_id=shop.id,
            shopify_order_id=424242,
            name=B_MARKER,
            currency="USD",
            total=Decimal("99.00"),
            ordered_at=utcnow() - timedelta(hours=1),
            phone=B_PHONE,
        )
        db.session.add(order)
        db.session.flush()
    return order


def _outbox(shop: Shop) -> OutboxMessage:
    row = db.session.scalars(OutboxMessage.for_shop(shop.id)).first()
    if row is None:
        row = OutboxMessage(
            shop_id=shop.id,
            sid="SMshopb0000000000000000000000001",
            to=B_PHONE,
            sender="+15005550006",
            body=B_MARKER,
        )
        db.session.add(row)
        db.session.flush()
    return row


def _checkout(shop: Shop) -> Checkout:
    row = db.session.scalars(Checkout.for_shop(shop.id)).first()
    if row is None:
        row = Checkout(shop_id=shop.id, token=B_MARKER, phone=B_PHONE)
        db.session.add(row)
        db.session.flush()
    return row


def _discount(shop: Shop) -> Discount:
    row = db.session.scalars(Discount.for_shop(shop.id)).first()
    if row is None:
        row = Discount(
            shop_id=shop.id,
            campaign_id=_campaign(shop).id,
            mode="shared",
            title=B_MARKER,
            value_type="percentage",
            value=Decimal("15"),
        )
        db.session.add(row)
        db.session.flush()
    return row


def _variant(shop: Shop) -> Variant:
    campaign = _campaign(shop)
    return db.session.scalars(
        Variant.for_shop(shop.id).where(Variant.campaign_id == campaign.id)
    ).first()


def _message(shop: Shop) -> Message:
    campaign = _campaign(shop)
    return db.session.scalars(
        Message.for_shop(shop.id).where(Message.campaign_id == campaign.id)
    ).first()


# path argument name -> the value naming one of shop B's rows
FACTORIES: dict[str, Callable[[Shop], object]] = {
    "subscriber_id": lambda s: _subscriber(s).id,
    "campaign_id": lambda s: _campaign(s).id,
    "segment_id": lambda s: _segment(s).id,
    "flow_id": lambda s: _flow(s).id,
    "import_id": lambda s: _import(s).id,
    "order_id": lambda s: _order(s).id,
    "variant_id": lambda s: _variant(s).id,
    "message_id": lambda s: _message(s).id,
    "checkout_id": lambda s: _checkout(s).id,
    "sid": lambda s: _outbox(s).sid,
    "discount_id": lambda s: _discount(s).id,
}
# path arguments that do not name a row, with a value to try
PLAIN_ARGS: dict[str, str] = {
    "kind": "welcome",
    "action": "delivered",
    "status": "delivered",
    "label": "A",
}
# flow kinds are per shop: a kind path argument names shop A's own flow, never B's
_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def _api_rules(app: Flask) -> list:
    return [
        r
        for r in app.url_map.iter_rules()
        if r.rule.startswith("/api/") and r.rule != "/api/openapi.json"
    ]


def _seed_shop_b(shop_b: Shop) -> None:
    for factory in FACTORIES.values():
        factory(shop_b)
    db.session.commit()


def _snapshot(shop_id: int) -> dict[str, list]:
    """Every row of every shop-owned table for one shop, as comparable plain values."""
    out: dict[str, list] = {}
    for table in db.metadata.sorted_tables:
        if "shop_id" not in table.c:
            continue
        rows = db.session.execute(
            select(table).where(table.c.shop_id == shop_id).order_by(*table.primary_key.columns)
        ).all()
        out[table.name] = [tuple(str(v) for v in row) for row in rows]
    return out


def test_every_api_route_argument_is_known(app: Flask) -> None:
    """Each path argument of every /api route is covered by this file's table."""
    unknown = sorted(
        {
            f"{rule.rule} <{arg}>"
            for rule in _api_rules(app)
            for arg in rule.arguments
            if arg not in FACTORIES and arg not in PLAIN_ARGS
        }
    )
    assert unknown == [], "add these arguments to FACTORIES or PLAIN_ARGS: " + ", ".join(unknown)


def test_shop_a_cannot_read_or_change_shop_b(app: Flask, api: ApiClient, other_shop: Shop) -> None:
    """Every method of every /api route with B's ids and A's token: never a 2xx, B unchanged,
    and no collection route of A's shows B's rows."""
    _seed_shop_b(other_shop)
    before = _snapshot(other_shop.id)
    ids = {name: factory(other_shop) for name, factory in FACTORIES.items()}
    db.session.commit()
    leaks = []
    for rule in _api_rules(app):
        methods = [m for m in _METHODS if m in (rule.methods or set())]
        if not rule.arguments:
            if "GET" in methods:
                resp = api.get(rule.rule)
                body = resp.get_data(as_text=True)
                if B_MARKER in body or B_PHONE in body or "4155550199" in body:
                    leaks.append(f"GET {rule.rule} shows shop B's data")
            continue
        if not any(arg in FACTORIES for arg in rule.arguments):
            continue  # only plain arguments (e.g. a flow kind): scoped to A by construction
        values = {arg: ids.get(arg, PLAIN_ARGS.get(arg)) for arg in rule.arguments}
        path = rule.build(values, append_unknown=False)[1]
        for method in methods:
            kwargs = {}
            if method in ("POST", "PUT", "PATCH"):
                kwargs = {
                    "data": json.dumps({"name": "hijack", "body": "hijack"}),
                    "content_type": "application/json",
                }
            resp = api.open(
                method, path + ("?confirm=true" if method == "DELETE" else ""), **kwargs
            )
            body = resp.get_data(as_text=True)
            if resp.status_code < 400 or B_MARKER in body or "4155550199" in body:
                leaks.append(f"{method} {path} -> {resp.status_code}")
    db.session.expire_all()
    assert leaks == []
    assert _snapshot(other_shop.id) == before
