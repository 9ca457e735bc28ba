"""customers/data_request and customers/redact cover what the subscriber features store: the
consent evidence (IP, user agent, page, notes), checkout rows and keyword texts."""

from __future__ import annotations

from flask.testing import FlaskClient
from sqlalchemy import select

from shopify_app.extensions import db
from shopify_app.models import Checkout, ComplianceRequest, InboundMessage, Shop
from tests.conftest import SHOP_DOMAIN
from tests.integration.consent_support import (
    SHOPPER_IP,
    inbound,
    ledger,
    subscribe,
    subscriber,
    use_sender,
)
from tests.integration.test_consent_checkout import CUSTOMER_ID, checkout, deliver

PHONE = "+12025550142"
CUSTOMER = {"id": CUSTOMER_ID, "email": "ada@example.com", "phone": "+1 202-555-0142"}


def test_data_request_and_redact_cover_consent_evidence(
    client: FlaskClient, shop: Shop, run_jobs
) -> None:
    shop_id = use_sender(shop).id
    subscribe(client, shop, "(202) 555-0142")
    inbound(client, PHONE, "Do you ship to Canada?")
    inbound(client, PHONE, "Y")
    deliver(client, "checkouts/create", checkout(), run_jobs)
    sub_id = subscriber(shop_id, PHONE).id

    deliver(
        client,
        "customers/data_request",
        {
            "shop_domain": SHOP_DOMAIN,
            "customer": CUSTOMER,
            "orders_requested": [],
            "data_request": {"id": 9999},
        },
        run_jobs,
    )
    report = db.session.scalars(select(ComplianceRequest)).one().report
    events = report["subscribers"][0]["consent_events"]
    assert [(e["kind"], e["source"]) for e in events] == [
        ("requested", "widget"),
        ("confirmed", "keyword"),
    ]
    assert events[0]["ip"] == SHOPPER_IP and events[0]["consent_text"]
    assert "note" in events[0] and "opt_in_level" in events[0]
    assert report["checkouts"][0]["phone"] == PHONE
    assert report["inbound_messages"][0]["body"] == "Do you ship to Canada?"

    deliver(
        client,
        "customers/redact",
        {"shop_domain": SHOP_DOMAIN, "customer": CUSTOMER, "orders_to_redact": []},
        run_jobs,
    )
    db.session.expire_all()
    assert subscriber(shop_id, PHONE) is None  # the number is gone from the row
    events = ledger(shop_id, sub_id)
    assert events[-1].kind == "redacted"
    assert all(e.ip is None and e.user_agent is None and e.page_url is None for e in events)
    row = db.session.scalars(Checkout.for_shop(shop_id)).one()
    assert (row.phone, row.email, row.recovery_url) == (None, None, None)
    assert all(
        m.from_phone is None and m.body is None
        for m in db.session.scalars(InboundMessage.for_shop(shop_id))
    )
