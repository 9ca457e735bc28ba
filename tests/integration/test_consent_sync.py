"""Consent collected by Tidings is written back to the Shopify customer (against the Shopify
stand-in); consent that came from Shopify is never echoed back."""

from __future__ import annotations

import json
from datetime import timedelta

from flask.testing import FlaskClient
from sqlalchemy import update

from jobs.consent_sync import sweep_unsynced, sync_consent_event
from shopify_app.extensions import db, get_redis
from shopify_app.models import ConsentEvent, Shop, utcnow
from shopify_app.services import consent
from tests.conftest import SHOP_DOMAIN
from tests.fakes.shopify_server import FakeShopify
from tests.integration.consent_support import (  # noqa: F401 - fixtures
    add_subscriber,
    fake_shopify_fixture,
    inbound,
    ledger,
    shopify_server_fixture,
    subscribe,
    subscriber,
    use_sender,
)
from tests.integration.webhook_support import post_shopify

PHONE = "+12025550142"
CUSTOMER_ID = 7012345678
GID = f"gid://shopify/Customer/{CUSTOMER_ID}"


def consent_inputs(fake: FakeShopify) -> list[dict]:
    return [
        call.variables["input"]
        for call in fake.calls_for("customerSmsMarketingConsentUpdate")
        if not call.throttled
    ]


def test_reply_y_is_written_to_the_customer(
    client: FlaskClient, shop: Shop, fake_shopify: FakeShopify, run_jobs
) -> None:
    """A logged-in shopper signs up and replies Y: Shopify's customer becomes SUBSCRIBED
    (confirmed opt-in) with our event's time, and the event is marked synced."""
    shop_id = use_sender(shop).id
    subscribe(client, shop, "(202) 555-0142", customer=str(CUSTOMER_ID))
    inbound(client, PHONE, "Y")
    run_jobs()
    inputs = consent_inputs(fake_shopify)
    assert len(inputs) == 1  # the pending request itself is not written
    sub = subscriber(shop_id, PHONE)
    confirmed = ledger(shop_id, sub.id)[-1]
    assert inputs[0] == {
        "customerId": GID,
        "smsMarketingConsent": {
            "marketingState": "SUBSCRIBED",
            "marketingOptInLevel": "CONFIRMED_OPT_IN",
            "consentUpdatedAt": confirmed.occurred_at.isoformat().replace("+00:00", "Z"),
        },
    }
    assert fake_shopify.consent[GID]["marketingState"] == "SUBSCRIBED"
    assert confirmed.synced_at is not None


def test_stop_is_written_and_the_echo_changes_nothing(
    client: FlaskClient, shop: Shop, fake_shopify: FakeShopify, run_jobs
) -> None:
    """STOP reaches Shopify as UNSUBSCRIBED; the consent webhook Shopify then sends back
    (same state, our time) adds nothing to the ledger and is not written again."""
    shop_id = use_sender(shop).id
    sub_id = add_subscriber(shop, PHONE, customer_id=CUSTOMER_ID).id
    run_jobs()  # the confirmation made by add_subscriber is synced too
    inbound(client, PHONE, "STOP")
    run_jobs()
    written = consent_inputs(fake_shopify)
    assert [i["smsMarketingConsent"]["marketingState"] for i in written] == [
        "SUBSCRIBED",
        "UNSUBSCRIBED",
    ]
    events_before = len(ledger(shop_id, sub_id))

    echo = {
        "id": CUSTOMER_ID,
        "phone": PHONE,
        "sms_marketing_consent": {
            "state": "unsubscribed",
            "opt_in_level": "confirmed_opt_in",
            "consent_updated_at": written[-1]["smsMarketingConsent"]["consentUpdatedAt"],
            "consent_collected_from": "OTHER",
        },
    }
    post_shopify(client, "customers_marketing_consent/update", echo, shop=SHOP_DOMAIN)
    run_jobs()
    assert len(ledger(shop_id, sub_id)) == events_before
    assert len(consent_inputs(fake_shopify)) == 2


def test_consent_from_shopify_is_not_written_back(
    client: FlaskClient, shop: Shop, fake_shopify: FakeShopify, run_jobs
) -> None:
    """Checkout consent and a withdrawal made in Shopify never trigger a mutation."""
    shop_id = shop.id
    customer = {
        "id": CUSTOMER_ID,
        "phone": PHONE,
        "email": "ada@example.com",
        "sms_marketing_consent": {
            "state": "subscribed",
            "opt_in_level": "single_opt_in",
            "consent_updated_at": (utcnow() - timedelta(minutes=5)).isoformat(),
            "consent_collected_from": "SHOPIFY",
        },
    }
    post_shopify(client, "customers/update", customer, shop=SHOP_DOMAIN)
    run_jobs()
    customer["sms_marketing_consent"].update(
        state="unsubscribed", consent_updated_at=utcnow().isoformat()
    )
    post_shopify(client, "customers_marketing_consent/update", customer, shop=SHOP_DOMAIN)
    run_jobs()
    assert subscriber(shop_id, PHONE).status == "unsubscribed"
    assert fake_shopify.calls_for("customerSmsMarketingConsentUpdate") == []


def test_throttled_write_waits_and_succeeds(
    client: FlaskClient, shop: Shop, fake_shopify: FakeShopify, run_jobs
) -> None:
    """THROTTLED from Shopify: the job waits for the bucket and writes once."""
    use_sender(shop)
    add_subscriber(shop, PHONE, customer_id=CUSTOMER_ID)
    fake_shopify.throttle_next(1)
    run_jobs()
    calls = fake_shopify.calls_for("customerSmsMarketingConsentUpdate")
    assert [c.throttled for c in calls] == [True, False]
    assert fake_shopify.consent[GID]["marketingState"] == "SUBSCRIBED"


def test_refused_write_is_recorded_not_retried(shop: Shop, fake_shopify: FakeShopify) -> None:
    """Shopify's userErrors (e.g. no phone on the customer) are noted on the event."""
    fake_shopify.on(
        "customerSmsMarketingConsentUpdate",
        lambda ctx: {
            "customer": None,
            "userErrors": [
                {
                    "field": ["input", "customerId"],
                    "code": "MISSING_ARGUMENT",
                    "message": "Customer must have a phone number",
                }
            ],
        },
    )
    try:
        sub = add_subscriber(shop, PHONE, customer_id=CUSTOMER_ID)
        event = ledger(shop.id, sub.id)[-1]
        assert sync_consent_event(event.id) == "rejected"
        event = db.session.get(ConsentEvent, event.id)
        assert event.synced_at is not None
        assert "Customer must have a phone number" in event.note
        assert sync_consent_event(event.id) == "already_synced"
    finally:
        fake_shopify.on("customerSmsMarketingConsentUpdate", None)


def test_sweep_requeues_a_lost_write(shop: Shop, fake_shopify: FakeShopify, run_jobs) -> None:
    """A write whose job was lost with Redis is found by the periodic sweep."""
    sub = add_subscriber(shop, PHONE, customer_id=CUSTOMER_ID)
    shop_id, sub_id = shop.id, sub.id
    get_redis().flushdb()  # the queued job is lost
    assert sweep_unsynced() == 0  # too young: its own job may still be coming
    db.session.execute(update(ConsentEvent).values(created_at=utcnow() - timedelta(hours=1)))
    db.session.commit()
    assert sweep_unsynced() == 1
    run_jobs()
    latest = consent.latest_event(shop_id, sub_id)
    assert latest.synced_at is not None
    assert json.dumps(consent_inputs(fake_shopify)).count("SUBSCRIBED") == 1
