"""SMS consent from Shopify webhooks (checkouts, customers, marketing consent) and orders, with
realistic payloads: consent given creates or confirms (source checkout), withdrawn unsubscribes,
and an older statement never overrides a newer one."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import select

from shopify_app.extensions import db
from shopify_app.models import Checkout, Shop, WebhookDelivery
from shopify_app.services.checkout_consent import consent_from_order
from tests.conftest import SHOP_DOMAIN
from tests.integration.consent_support import (
    add_subscriber,
    inbound,
    kinds,
    ledger,
    messages_of,
    subscribe,
    subscriber,
    use_sender,
)
from tests.integration.webhook_support import post_shopify

PHONE = "+12025550142"
CUSTOMER_ID = 7012345678


def iso(moment: datetime) -> str:
    """Shopify's style: local offset, seconds precision."""
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def ago(**delta: float) -> datetime:
    return datetime.now(UTC).replace(microsecond=0) - timedelta(**delta)


def customer(
    state: str = "subscribed", updated: datetime | None = None, **fields: Any
) -> dict[str, Any]:
    return {
        "id": CUSTOMER_ID,
        "email": "ada@example.com",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "phone": "+12025550142",
        "state": "enabled",
        "verified_email": True,
        "tags": "",
        "currency": "USD",
        "created_at": iso(ago(days=30)),
        "updated_at": iso(updated or ago(minutes=1)),
        "email_marketing_consent": {
            "state": "not_subscribed",
            "opt_in_level": "single_opt_in",
            "consent_updated_at": None,
        },
        "sms_marketing_consent": {
            "state": state,
            "opt_in_level": "single_opt_in",
            "consent_updated_at": iso(updated or ago(minutes=1)),
            "consent_collected_from": "SHOPIFY",
        },
        "default_address": {
            "id": 1,
            "customer_id": CUSTOMER_ID,
            "first_name": "Ada",
            "last_name": "Lovelace",
            "address1": "1 Main St",
            "city": "Washington",
            "province_code": "DC",
            "country_code": "US",
            "zip": "20001",
            "phone": "+1 202-555-0142",
            "default": True,
        },
        **fields,
    }


def checkout(
    *, accepts_sms: bool = True, updated: datetime | None = None, total: str = "59.90"
) -> dict[str, Any]:
    updated = updated or ago(minutes=2)
    cust = customer("not_subscribed")
    cust.pop("sms_marketing_consent")
    return {
        "token": "5f7e0c9d1a2b3c4d5e6f708192a3b4c5",
        "cart_token": "Z2NwLXVzLWVhc3QxOjAxSj",
        "email": "ada@example.com",
        "buyer_accepts_marketing": False,
        "buyer_accepts_sms_marketing": accepts_sms,
        "sms_marketing_phone": "+12025550142" if accepts_sms else None,
        "created_at": iso(updated - timedelta(minutes=5)),
        "updated_at": iso(updated),
        "landing_site": "/products/linen-shirt",
        "currency": "USD",
        "presentment_currency": "USD",
        "completed_at": None,
        "phone": None,
        "customer_locale": "en-US",
        "source_name": "web",
        "abandoned_checkout_url": "https://tidings-test.myshopify.com/59485/checkouts/ac/"
        "Z2NwLXVzLWVhc3QxOjAxSj/recover?key=8f3b",
        "total_price": total,
        "subtotal_price": "54.00",
        "total_tax": "5.90",
        "line_items": [
            {
                "title": "Linen shirt",
                "quantity": 1,
                "price": "54.00",
                "variant_id": 4412,
                "product_id": 991,
            }
        ],
        "billing_address": {
            "first_name": "Ada",
            "last_name": "Lovelace",
            "address1": "1 Main St",
            "city": "Washington",
            "country_code": "US",
            "zip": "20001",
            "phone": "(202) 555-0142",
        },
        "shipping_address": {
            "first_name": "Ada",
            "last_name": "Lovelace",
            "address1": "1 Main St",
            "city": "Washington",
            "country_code": "US",
            "zip": "20001",
            "phone": None,
        },
        "customer": cust,
    }


def order(
    consent_state: str | None = "subscribed", updated: datetime | None = None, **fields: Any
) -> dict[str, Any]:
    cust = customer(consent_state or "not_subscribed", updated)
    if consent_state is None:
        cust.pop("sms_marketing_consent")
    payload = {
        "id": 820982911946154508,
        "name": "#1001",
        "email": "ada@example.com",
        "checkout_token": "5f7e0c9d1a2b3c4d5e6f708192a3b4c5",
        "currency": "USD",
        "presentment_currency": "USD",
        "total_price": "59.90",
        "current_total_price": "59.90",
        "created_at": iso(ago(minutes=1)),
        "updated_at": iso(ago(minutes=1)),
        "test": False,
        "cancelled_at": None,
        "phone": None,
        "landing_site": "/?ref=tidings",
        "discount_codes": [],
        "note_attributes": [],
        "billing_address": {
            "first_name": "Ada",
            "last_name": "Lovelace",
            "country_code": "US",
            "phone": "(202) 555-0142",
        },
        "shipping_address": None,
        "customer": cust,
    }
    payload.update(fields)
    return payload


def deliver(client: FlaskClient, topic: str, payload: dict, run_jobs) -> str:  # noqa: ANN001
    """Deliver a signed webhook to the test shop and run its job; returns the webhook id."""
    webhook_id = f"wh-{topic.replace('/', '-')}-{datetime.now(UTC).timestamp()}"
    resp = post_shopify(client, topic, payload, shop=SHOP_DOMAIN, webhook_id=webhook_id)
    assert resp.status_code == 200
    run_jobs()
    db.session.expire_all()
    status = db.session.scalars(
        select(WebhookDelivery.status).where(WebhookDelivery.webhook_id == webhook_id)
    ).one()
    assert status == "processed"
    return webhook_id


def test_checkout_sms_checkbox_subscribes_and_keeps_the_checkout(
    client: FlaskClient, shop: Shop, run_jobs
) -> None:
    """checkouts/create with Shopify's SMS checkbox: a subscribed subscriber (source checkout,
    single opt-in recorded, the webhook as evidence), a welcome text, and the Checkout row."""
    shop_id = shop.id
    webhook_id = deliver(client, "checkouts/create", checkout(), run_jobs)
    sub = subscriber(shop_id, PHONE)
    assert (sub.status, sub.source, sub.customer_id) == ("subscribed", "checkout", CUSTOMER_ID)
    assert (sub.email, sub.first_name, sub.last_name) == ("ada@example.com", "Ada", "Lovelace")
    event = ledger(shop_id, sub.id)[0]
    assert (event.kind, event.source, event.opt_in_level) == (
        "confirmed",
        "checkout",
        "single_opt_in",
    )
    assert event.evidence_id == f"webhook:{webhook_id}"
    assert [m.kind for m in messages_of(shop_id, sub.id)] == ["transactional"]  # welcome

    row = db.session.scalars(Checkout.for_shop(shop_id)).one()
    assert row.token == "5f7e0c9d1a2b3c4d5e6f708192a3b4c5"
    assert (row.phone, row.email, row.customer_id, row.subscriber_id) == (
        PHONE,
        "ada@example.com",
        CUSTOMER_ID,
        sub.id,
    )
    assert (row.total, row.currency) == (Decimal("59.90"), "USD")
    assert row.recovery_url.endswith("/recover?key=8f3b")


def test_out_of_order_checkout_updates_are_ignored(
    client: FlaskClient, shop: Shop, run_jobs
) -> None:
    """An update older than the stored state changes nothing (updated_at decides)."""
    shop_id = shop.id
    newer = checkout(accepts_sms=False, updated=ago(minutes=1), total="80.00")
    older = checkout(accepts_sms=False, updated=ago(minutes=10), total="20.00")
    deliver(client, "checkouts/update", newer, run_jobs)
    deliver(client, "checkouts/create", older, run_jobs)
    row = db.session.scalars(Checkout.for_shop(shop_id)).one()
    assert row.total == Decimal("80.00")
    assert row.subscriber_id is None
    assert subscriber(shop_id, PHONE) is None  # no checkbox, no subscriber


def test_customer_withdrawal_unsubscribes_and_late_consent_is_ignored(
    client: FlaskClient, shop: Shop, run_jobs
) -> None:
    """customers/update subscribes; a newer withdrawal unsubscribes without a text; an older
    "subscribed" delivered late does not undo it."""
    shop_id = shop.id
    deliver(client, "customers/update", customer("subscribed", ago(hours=2)), run_jobs)
    sub_id = subscriber(shop_id, PHONE).id
    withdrawal = {
        "id": CUSTOMER_ID,
        "phone": "+12025550142",
        "sms_marketing_consent": {
            "state": "unsubscribed",
            "opt_in_level": None,
            "consent_updated_at": iso(ago(hours=1)),
            "consent_collected_from": "SHOPIFY",
        },
    }
    deliver(client, "customers_marketing_consent/update", withdrawal, run_jobs)
    assert subscriber(shop_id, PHONE).status == "unsubscribed"
    assert kinds(shop_id, sub_id) == [("confirmed", "checkout"), ("opted_out", "shopify_sync")]

    deliver(client, "customers/update", customer("subscribed", ago(hours=1, minutes=30)), run_jobs)
    assert subscriber(shop_id, PHONE).status == "unsubscribed"
    assert len(ledger(shop_id, sub_id)) == 2
    # A welcome for the first consent, and no text about the withdrawal.
    assert [m.kind for m in messages_of(shop_id, sub_id)] == ["transactional"]


def test_stop_beats_an_older_shopify_consent(client: FlaskClient, shop: Shop, run_jobs) -> None:
    """A STOP by text wins over a Shopify consent stamped before it; a consent given in
    checkout after the STOP is new consent."""
    shop_id = use_sender(shop).id
    sub_id = add_subscriber(shop, PHONE).id
    inbound(client, PHONE, "STOP")
    deliver(client, "customers/update", customer("subscribed", ago(hours=3)), run_jobs)
    assert subscriber(shop_id, PHONE).status == "unsubscribed"
    later = customer("subscribed", datetime.now(UTC) + timedelta(seconds=2))
    deliver(client, "customers/update", later, run_jobs)
    assert subscriber(shop_id, PHONE).status == "subscribed"
    assert [k for k, _ in kinds(shop_id, sub_id)][-2:] == ["opted_out", "confirmed"]


def test_shopify_consent_completes_a_pending_widget_request(
    client: FlaskClient, shop: Shop, run_jobs
) -> None:
    """A pending widget sign-up is confirmed by the shopper's checkout consent, even one
    stamped a little earlier."""
    shop_id = shop.id
    subscribe(client, shop, "(202) 555-0142")
    deliver(client, "customers/create", customer("subscribed", ago(minutes=5)), run_jobs)
    sub = subscriber(shop_id, PHONE)
    assert sub.status == "subscribed"
    assert [k for k, _ in kinds(shop_id, sub.id)] == ["requested", "confirmed"]


def test_old_consent_subscribes_without_a_welcome_text(
    client: FlaskClient, shop: Shop, run_jobs
) -> None:
    """A customer who consented long ago (a backfill) is subscribed but not texted now."""
    shop_id = shop.id
    deliver(
        client,
        "customers/update",
        customer("subscribed", datetime(2024, 5, 1, tzinfo=UTC)),
        run_jobs,
    )
    sub = subscriber(shop_id, PHONE)
    assert sub.status == "subscribed"
    assert sub.subscribed_at == datetime(2024, 5, 1, tzinfo=UTC)
    assert messages_of(shop_id, sub.id) == []


def test_not_subscribed_customer_is_not_a_subscriber(
    client: FlaskClient, shop: Shop, run_jobs
) -> None:
    """customers/create without SMS consent creates nothing."""
    shop_id = shop.id
    deliver(client, "customers/create", customer("not_subscribed"), run_jobs)
    assert subscriber(shop_id, PHONE) is None


def test_consent_from_order_creates_links_and_returns(shop: Shop) -> None:
    """The attribution handler's helper: consent in the order's customer subscribes; the
    subscriber is returned (the same one for a second order)."""
    delivery = WebhookDelivery(
        shop_id=shop.id, shop_domain=shop.domain, topic="orders/create", webhook_id="wh-order-1"
    )
    sub = consent_from_order(shop, order("subscribed"), delivery)
    db.session.commit()
    assert sub is not None
    assert (sub.phone, sub.status, sub.source, sub.customer_id) == (
        PHONE,
        "subscribed",
        "checkout",
        CUSTOMER_ID,
    )
    event = ledger(shop.id, sub.id)[0]
    assert (event.evidence_id, event.note) == (
        "webhook:wh-order-1",
        "Shopify consent subscribed; collected from SHOPIFY; order #1001",
    )
    again = consent_from_order(shop, order("subscribed"), delivery)
    assert again.id == sub.id
    assert len(ledger(shop.id, sub.id)) == 1


def test_consent_from_order_matches_existing_subscribers(shop: Shop) -> None:
    """No consent statement: the buyer is matched by a phone on the order (billing address)
    and linked to the customer; an unknown buyer gives None."""
    existing = add_subscriber(shop, PHONE)
    payload = order(None)
    payload["customer"]["phone"] = None
    sub = consent_from_order(shop, payload, None)
    assert sub is not None and sub.id == existing.id
    assert sub.customer_id == CUSTOMER_ID

    stranger = order(None, billing_address={"country_code": "US", "phone": None})
    stranger["customer"].update(id=99, phone=None)
    assert consent_from_order(shop, stranger, None) is None


def test_consent_from_order_withdrawal(shop: Shop) -> None:
    """An order whose customer withdrew SMS consent (newer than ours) unsubscribes."""
    sub = add_subscriber(shop, PHONE)
    payload = order("unsubscribed", datetime.now(UTC) + timedelta(seconds=1))
    result = consent_from_order(shop, copy.deepcopy(payload), None)
    db.session.commit()
    assert result.id == sub.id
    assert subscriber(shop.id, PHONE).status == "unsubscribed"
    assert kinds(shop.id, sub.id)[-1] == ("opted_out", "shopify_sync")
