"""Shopify's privacy webhooks: data_request reports, customers/redact erases the person
everywhere (keeping counts), shop/redact deletes the shop's data but keeps the audit rows."""

from __future__ import annotations

import json
import logging
import re
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import JSON, String, func, select

from shopify_app.extensions import db
from shopify_app.models import (
    Campaign,
    Checkout,
    Click,
    ComplianceRequest,
    ConsentEvent,
    Discount,
    DiscountCode,
    Flow,
    FlowRun,
    ImportJob,
    InboundMessage,
    Link,
    Message,
    Order,
    OutboxMessage,
    Segment,
    Shop,
    Subscriber,
    Variant,
    WebhookDelivery,
    utcnow,
)
from tests.integration.webhook_support import (
    add_campaign,
    add_message,
    add_subscriber,
    count,
    deliveries,
    post_shopify,
)

PHONE = "+14155550123"  # the person, E.164
PHONE_FORMATTED = "(415) 555-0123"  # as Shopify may send it
SECOND_PHONE = "+14155550177"  # a second subscription of theirs, found by email
ORDER_PHONE = "+14155550166"  # given on one order named in orders_to_redact
EMAIL = "ada.lovelace@example.com"
CUSTOMER_ID = 7001
OTHER_PHONE = "+14155550188"  # somebody else, who must be left alone
OTHER_EMAIL = "grace@example.com"
NEEDLES = [PHONE, "4155550123", SECOND_PHONE, "4155550177", ORDER_PHONE, "4155550166", EMAIL]
RECOVERY_URL = "https://tidings-test.myshopify.com/checkouts/recover/abc123"


def seed_person(shop: Shop) -> dict[str, Any]:
    """Everything Tidings can hold about one customer, and one other customer beside them."""
    ada = add_subscriber(
        shop,
        PHONE,
        email="Ada.Lovelace@Example.com",
        first_name="Ada",
        last_name="Lovelace",
        customer_id=CUSTOMER_ID,
        region="CA",
        timezone="America/Los_Angeles",
    )
    ada2 = add_subscriber(shop, SECOND_PHONE, email=EMAIL, first_name="Ada")
    grace = add_subscriber(
        shop, OTHER_PHONE, email=OTHER_EMAIL, first_name="Grace", customer_id=7002
    )
    db.session.flush()
    db.session.add(
        ConsentEvent(
            shop_id=shop.id,
            subscriber_id=ada.id,
            kind="opted_out",
            source="keyword",
            occurred_at=utcnow(),
            evidence_id="SM0001",
            note=f"texted STOP from {PHONE}",
        )
    )
    campaign = add_campaign(shop, "sent")
    sent = add_message(
        shop,
        ada,
        "delivered",
        campaign_id=campaign.id,
        body="Hi Ada, your code ADA10 is waiting",
        provider_sid=f"SMsent1-{shop.id}",
        error_message=f"earlier attempt: To {PHONE} unreachable",
        context={"first_name": "Ada", "discount_code": "ADA10"},
    )
    add_message(
        shop,
        ada,
        "pending",
        kind="flow",
        dedupe_key="abandoned-1",
        body=None,
        context={"first_name": "Ada"},
    )
    add_message(
        shop,
        grace,
        "delivered",
        campaign_id=campaign.id,
        body="Hi Grace",
        provider_sid=f"SMsent2-{shop.id}",
    )
    link = Link(
        shop_id=shop.id,
        token=f"tok1-{shop.id}",
        message_id=sent.id,
        subscriber_id=ada.id,
        url=RECOVERY_URL,
    )
    db.session.add(link)
    db.session.flush()
    db.session.add(
        Click(
            shop_id=shop.id,
            link_id=link.id,
            message_id=sent.id,
            subscriber_id=ada.id,
            clicked_at=utcnow(),
            ip="198.51.100.7",
            user_agent="Ada's iPhone",
        )
    )
    db.session.add(
        InboundMessage(
            shop_id=shop.id,
            subscriber_id=ada.id,
            provider_sid=f"SMin1-{shop.id}",
            from_phone=PHONE,
            to="+18005550100",
            body="Ada here, when does the sale end?",
            received_at=utcnow(),
        )
    )
    db.session.add_all(
        [
            Order(
                shop_id=shop.id,
                shopify_order_id=5001,
                name="#1001",
                customer_id=CUSTOMER_ID,
                subscriber_id=ada.id,
                phone=PHONE,
                currency="USD",
                total=Decimal("50.00"),
                ordered_at=utcnow(),
                landing_site=f"/?email={EMAIL}",
            ),
            Order(
                shop_id=shop.id,
                shopify_order_id=5002,
                name="#1002",
                phone=ORDER_PHONE,
                currency="USD",
                total=Decimal("20.00"),
                ordered_at=utcnow(),
            ),
            Order(
                shop_id=shop.id,
                shopify_order_id=5003,
                name="#1003",
                customer_id=7002,
                phone=OTHER_PHONE,
                currency="USD",
                total=Decimal("30.00"),
                ordered_at=utcnow(),
            ),
            Checkout(
                shop_id=shop.id,
                token="chk1",
                customer_id=CUSTOMER_ID,
                phone=PHONE,
                email=EMAIL,
                recovery_url=RECOVERY_URL,
                total=Decimal("50.00"),
            ),
            OutboxMessage(
                shop_id=shop.id,
                sid=f"OUT1-{shop.id}",
                to=PHONE,
                sender="+18005550100",
                body="Hi Ada, your code ADA10 is waiting",
            ),
            OutboxMessage(
                shop_id=shop.id,
                sid=f"OUT2-{shop.id}",
                to=OTHER_PHONE,
                sender="+18005550100",
                body="Hi Grace",
            ),
        ]
    )
    flow = Flow(shop_id=shop.id, kind="abandoned_checkout", name="Recover", enabled=True)
    db.session.add(flow)
    db.session.flush()
    db.session.add(
        FlowRun(
            shop_id=shop.id,
            flow_id=flow.id,
            subscriber_id=ada.id,
            trigger_key="chk1",
            context={"phone": PHONE, "items": 2},
        )
    )
    db.session.add(
        ImportJob(
            shop_id=shop.id,
            filename="list.csv",
            status="queued",
            csv_text=f"phone,email\n+1 415 555 0123,{EMAIL}\n{OTHER_PHONE},{OTHER_EMAIL}\n",
            refused_rows=[
                {"row": 2, "phone": PHONE, "reason": "duplicate"},
                {"row": 3, "phone": OTHER_PHONE, "reason": "duplicate"},
            ],
        )
    )
    # A delivery that failed earlier and still holds its body (phone formatted as typed).
    db.session.add(
        WebhookDelivery(
            shop_id=shop.id,
            shop_domain=shop.domain,
            topic="orders/create",
            webhook_id=f"old-fail-{shop.id}",
            status="failed",
            attempts=4,
            payload=json.dumps({"phone": "+1 415-555-0123"}),
            payload_bytes=30,
        )
    )
    db.session.commit()
    return {"ada": ada.id, "ada2": ada2.id, "grace": grace.id}


def redact_payload(domain: str) -> dict[str, Any]:
    return {
        "shop_id": 954889,
        "shop_domain": domain,
        "customer": {
            "id": CUSTOMER_ID,
            "email": "ADA.Lovelace@example.com",
            "phone": PHONE_FORMATTED,
        },
        "orders_to_redact": [5001, 5002],
    }


def text_values() -> list[tuple[str, str]]:
    """Every value of every text, varchar and JSON column of every table, as text."""
    db.session.expire_all()
    found = []
    for table in db.metadata.sorted_tables:
        columns = [c for c in table.columns if isinstance(c.type, String | JSON)]
        for column in columns:
            for value in db.session.execute(select(column)).scalars():
                if value is not None:
                    text = value if isinstance(value, str) else json.dumps(value)
                    found.append((f"{table.name}.{column.name}", text))
    return found


def traces(values: list[tuple[str, str]], needles: list[str]) -> list[str]:
    """Where a needle appears, also when the number was stored formatted ("+1 415-555-0123")."""
    found = set()
    for where, text in values:
        compact = re.sub(r"(?<=\d)[\s().\-]+(?=\d)", "", text).lower()
        found.update(
            f"{where} holds {n}"
            for n in needles
            if n.lower() in text.lower() or n.lower() in compact
        )
    return sorted(found)


def test_seed_really_holds_the_person_everywhere(app, shop):
    """The scan is only worth something if the data it scans names the person first."""
    seed_person(shop)
    found = traces(text_values(), NEEDLES)
    for place in (
        "subscriber.phone",
        "subscriber.email",
        "consent_event.evidence_id",
        "consent_event.note",
        "message.error_message",
        "inbound_message.from_phone",
        "shop_order.phone",
        "shop_order.landing_site",
        "checkout.phone",
        "checkout.email",
        "outbox_message.to",
        "flow_run.context",
        "import_job.csv_text",
        "import_job.refused_rows",
        "webhook_delivery.payload",
    ):
        assert any(f.startswith(place + " ") for f in found), place


def test_customers_redact_leaves_no_trace_and_keeps_counts(client, shop, run_jobs):
    ids = seed_person(shop)
    shop_id, domain = shop.id, shop.domain
    # An earlier data request prepared a report: it names the person too.
    post_shopify(
        client,
        "customers/data_request",
        {
            "shop_domain": domain,
            "customer": {"id": CUSTOMER_ID, "phone": PHONE},
            "data_request": {"id": 9999},
        },
        shop=domain,
    )
    run_jobs()
    before = {
        "messages": count(Message),
        "clicks": count(Click),
        "orders": count(Order),
        "order_total": db.session.scalar(select(func.sum(Order.total))),
        "consent_events": count(ConsentEvent),
        "consent_kinds": sorted(db.session.scalars(select(ConsentEvent.kind))),
        "inbound": count(InboundMessage),
        "outbox": count(OutboxMessage),
        "subscribers": count(Subscriber),
    }

    res = post_shopify(client, "customers/redact", redact_payload(domain), shop=domain)
    assert res.status_code == 200
    run_jobs()

    assert traces(text_values(), NEEDLES) == []
    # The checkout recovery link (their cart and address) is gone too, short links included.
    assert traces(text_values(), [RECOVERY_URL]) == []
    assert db.session.scalars(Link.for_shop(shop_id)).one().url == f"https://{domain}/"
    # Counts stay; the ledger gains one "redacted" event per erased subscription.
    assert count(Message) == before["messages"]
    assert count(Click) == before["clicks"]
    assert count(Order) == before["orders"]
    assert db.session.scalar(select(func.sum(Order.total))) == before["order_total"]
    assert count(InboundMessage) == before["inbound"]
    assert count(OutboxMessage) == before["outbox"]
    assert count(Subscriber) == before["subscribers"]
    assert sorted(db.session.scalars(select(ConsentEvent.kind))) == sorted(
        before["consent_kinds"] + ["redacted", "redacted"]
    )
    assert count(ConsentEvent, ConsentEvent.kind != "redacted") == before["consent_events"]

    for sub_id in (ids["ada"], ids["ada2"]):
        sub = db.session.get(Subscriber, sub_id)
        assert (sub.phone, sub.email, sub.first_name, sub.last_name, sub.status) == (
            None,
            None,
            None,
            None,
            "unsubscribed",
        )
        assert sub.redacted_at is not None
    events = db.session.scalars(
        ConsentEvent.for_shop(shop_id).where(
            ConsentEvent.subscriber_id == ids["ada"], ConsentEvent.kind != "redacted"
        )
    ).all()
    assert {(e.ip, e.user_agent, e.page_url) for e in events} == {(None, None, None)}
    assert {e.kind for e in events} == {"confirmed", "opted_out"}  # kinds kept
    messages = db.session.scalars(
        Message.for_shop(shop_id).where(Message.subscriber_id == ids["ada"])
    ).all()
    assert {(m.body, m.context) for m in messages} == {(None, None)}
    assert {m.status for m in messages} == {"delivered", "skipped"}  # nothing more goes out
    click = db.session.scalars(Click.for_shop(shop_id)).one()
    assert (click.ip, click.user_agent) == (None, None)
    outbox = db.session.scalars(
        OutboxMessage.for_shop(shop_id).where(OutboxMessage.sid == f"OUT1-{shop_id}")
    ).one()
    assert (outbox.to, outbox.body) == ("redacted", "")
    failed = db.session.scalars(
        select(WebhookDelivery).where(WebhookDelivery.webhook_id == f"old-fail-{shop_id}")
    ).one()
    assert (failed.status, failed.payload) == ("ignored", None)  # never replayed now

    # Grace is untouched.
    grace = db.session.get(Subscriber, ids["grace"])
    assert (grace.phone, grace.email, grace.status) == (OTHER_PHONE, OTHER_EMAIL, "subscribed")
    job = db.session.scalars(ImportJob.for_shop(shop_id)).one()
    assert job.csv_text == f"phone,email\n{OTHER_PHONE},{OTHER_EMAIL}\n"
    assert job.refused_rows[1] == {"row": 3, "phone": OTHER_PHONE, "reason": "duplicate"}
    assert (
        db.session.scalars(Message.for_shop(shop_id).where(Message.subscriber_id == ids["grace"]))
        .one()
        .body
        == "Hi Grace"
    )

    redacts = db.session.scalars(
        ComplianceRequest.for_shop(shop_id).where(ComplianceRequest.kind == "redact")
    ).all()
    assert [r.customer_id for r in redacts] == [CUSTOMER_ID]
    assert redacts[0].report["counts"]["subscribers"] == 2
    assert {d.topic: (d.status, d.payload) for d in deliveries() if d.topic != "orders/create"} == {
        "customers/data_request": ("processed", None),
        "customers/redact": ("processed", None),
    }


def test_customers_redact_is_scoped_to_the_shop(client, shop, other_shop, run_jobs):
    """The same number subscribed at another shop is that shop's customer: left alone."""
    domain = shop.domain
    seed_person(shop)
    elsewhere = add_subscriber(other_shop, PHONE, email=EMAIL, customer_id=CUSTOMER_ID)
    db.session.commit()
    elsewhere_id = elsewhere.id
    post_shopify(client, "customers/redact", redact_payload(domain), shop=domain)
    run_jobs()
    kept = db.session.get(Subscriber, elsewhere_id)
    assert (kept.phone, kept.email, kept.status) == (PHONE, EMAIL, "subscribed")
    assert db.session.scalars(ConsentEvent.for_shop(kept.shop_id)).one().ip == "203.0.113.9"


def test_data_request_stores_a_report_for_the_merchant(client, shop, run_jobs, caplog):
    ids = seed_person(shop)
    shop_id = shop.id
    caplog.set_level(logging.INFO)
    res = post_shopify(
        client,
        "customers/data_request",
        {
            "shop_id": 954889,
            "shop_domain": shop.domain,
            "orders_requested": [5002],
            "customer": {"id": CUSTOMER_ID, "email": EMAIL, "phone": PHONE_FORMATTED},
            "data_request": {"id": 9999},
        },
        shop=shop.domain,
    )
    assert res.status_code == 200
    run_jobs()

    row = db.session.scalars(ComplianceRequest.for_shop(shop_id)).one()
    assert (row.kind, row.shopify_request_id, row.customer_id) == (
        "data_request",
        "9999",
        CUSTOMER_ID,
    )
    report = row.report
    subs = {s["profile"]["id"]: s for s in report["subscribers"]}
    assert set(subs) == {ids["ada"], ids["ada2"]}
    ada = subs[ids["ada"]]
    assert (ada["profile"]["phone"], ada["profile"]["first_name"]) == (PHONE, "Ada")
    assert {e["kind"] for e in ada["consent_events"]} == {"confirmed", "opted_out"}
    assert ada["consent_events"][0]["ip"] == "203.0.113.9"
    assert [m["body"] for m in ada["messages"]][0] == "Hi Ada, your code ADA10 is waiting"
    assert ada["messages"][0]["status"] == "delivered"
    assert [c["ip"] for c in ada["clicks"]] == ["198.51.100.7"]
    assert [m["body"] for m in report["inbound_messages"]] == ["Ada here, when does the sale end?"]
    assert sorted(o["shopify_order_id"] for o in report["orders"]) == [5001, 5002]
    assert [o["total"] for o in report["orders"] if o["shopify_order_id"] == 5001] == ["50.00"]
    assert [c["email"] for c in report["checkouts"]] == [EMAIL]
    flat = json.dumps(report)
    assert OTHER_PHONE not in flat and OTHER_EMAIL not in flat and "Grace" not in flat
    # The log says the report is ready, without naming the person.
    lines = " ".join(r.getMessage() for r in caplog.records)
    assert "ready" in lines
    assert all(n.lower() not in lines.lower() for n in NEEDLES)
    [delivery] = [d for d in deliveries() if d.topic == "customers/data_request"]
    assert (delivery.status, delivery.payload) == ("processed", None)


def _seed_everything(shop: Shop) -> None:
    seed_person(shop)
    campaign = db.session.scalars(Campaign.for_shop(shop.id)).first()
    db.session.add(Variant(shop_id=shop.id, campaign_id=campaign.id, label="A", body="Hi"))
    db.session.add(Segment(shop_id=shop.id, name="Buyers", rules={"all": []}))
    discount = Discount(
        shop_id=shop.id,
        campaign_id=campaign.id,
        mode="shared",
        title="10%",
        value_type="percentage",
        value=Decimal("10"),
    )
    db.session.add(discount)
    db.session.flush()
    db.session.add(DiscountCode(shop_id=shop.id, discount_id=discount.id, code=f"SMS{shop.id}"))
    db.session.add(ComplianceRequest(shop_id=shop.id, kind="data_request", report={"x": 1}))
    db.session.commit()


def _rows_per_shop_table(shop_id: int) -> dict[str, int]:
    db.session.expire_all()
    return {
        t.name: db.session.scalar(select(func.count()).select_from(t).where(t.c.shop_id == shop_id))
        for t in db.metadata.sorted_tables
        if "shop_id" in t.c and t.name != "webhook_delivery"
    }


def test_shop_redact_deletes_everything_but_the_emptied_audit_rows(
    client, shop, other_shop, run_jobs
):
    _seed_everything(shop)
    _seed_everything(other_shop)
    shop_id, other_id, domain = shop.id, other_shop.id, shop.domain
    seeded = {name for name, n in _rows_per_shop_table(shop_id).items() if n}
    assert {
        "subscriber",
        "consent_event",
        "message",
        "campaign",
        "campaign_variant",
        "link",
        "click",
        "segment",
        "flow",
        "flow_run",
        "discount",
        "discount_code",
        "shop_order",
        "checkout",
        "import_job",
        "inbound_message",
        "outbox_message",
        "compliance_request",
    } <= seeded
    other_before = _rows_per_shop_table(other_id)
    uninstalled = db.session.get(Shop, shop_id)
    uninstalled.uninstalled_at = utcnow()
    db.session.commit()

    res = post_shopify(
        client, "shop/redact", {"shop_id": 954889, "shop_domain": domain}, shop=domain
    )
    assert res.status_code == 200
    run_jobs()

    assert db.session.get(Shop, shop_id) is None
    assert set(_rows_per_shop_table(shop_id).values()) == {0}
    assert _rows_per_shop_table(other_id) == other_before
    audit = [d for d in deliveries() if d.shop_domain == domain]
    assert {(d.topic, d.shop_id, d.payload) for d in audit} == {
        ("orders/create", None, None),
        ("shop/redact", None, None),
    }
    assert {d.status for d in audit if d.topic == "shop/redact"} == {"processed"}


def test_shop_redact_for_a_shop_reinstalled_since_deletes_nothing(client, shop, run_jobs):
    """The request predates the current install: deleting a live shop would be a disaster."""
    from datetime import timedelta

    shop_id, domain = shop.id, shop.domain
    seed_person(shop)
    post_shopify(
        client,
        "shop/redact",
        {"shop_domain": domain},
        shop=domain,
        X_Shopify_Triggered_At=(utcnow() - timedelta(days=1)).isoformat(),
    )
    run_jobs()
    assert db.session.get(Shop, shop_id) is not None
    assert count(Subscriber) == 3


@pytest.mark.parametrize("topic", ["customers/data_request", "customers/redact", "shop/redact"])
def test_compliance_topics_refuse_a_bad_hmac(client, shop, run_jobs, topic):
    """Shopify's review sends these with a wrong signature and expects a 401."""
    shop_id, domain = shop.id, shop.domain
    seed_person(shop)
    res = post_shopify(client, topic, redact_payload(domain), shop=domain, secret="forged")
    assert res.status_code == 401
    run_jobs()
    assert [d.topic for d in deliveries()] == ["orders/create"]  # only the seeded one
    assert db.session.get(Shop, shop_id) is not None
    assert count(Subscriber, Subscriber.phone == PHONE) == 1
    assert count(ComplianceRequest) == 0
