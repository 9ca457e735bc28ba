"""Helpers for the subscriber and consent tests: signed storefront and Twilio requests, the
Shopify stand-in wired in, and readers for the ledger and the texts that went out."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from shopify_app.extensions import db
from shopify_app.models import ConsentEvent, Message, Shop, Subscriber
from shopify_app.services import consent
from tests.conftest import API_KEY, API_SECRET, SHOP_DOMAIN
from tests.fakes.shopify_server import FakeShopify
from tests.fakes.signing import app_proxy_query, twilio_signature
from tests.integration.send_support import FROM_NUMBER, day_zone, id_of

TWILIO_TOKEN = "test-twilio-token"
INBOUND_URL = "http://localhost/webhooks/twilio/inbound"
SHOPPER_IP = "198.51.100.23"
SHOPPER_UA = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) Safari/604.1"
PAGE_URL = "https://tidings-test.myshopify.com/products/linen-shirt?variant=1"


def use_sender(shop: Shop, number: str = FROM_NUMBER, **settings: Any) -> Shop:
    """Give the shop its own sender number (inbound texts to it are the shop's) and lift the
    send rate limit so tests do not wait."""
    shop = db.session.get(Shop, id_of(shop))
    shop.settings["sender"] = {"from_number": number, "messaging_service_sid": ""}
    shop.settings["messages_per_second"] = 10_000
    for key, value in settings.items():
        shop.settings[key] = value
    db.session.commit()
    return shop


def inbound(
    client: FlaskClient,
    from_: str,
    body: str,
    *,
    to: str = FROM_NUMBER,
    sid: str | None = None,
    **extra: str,
) -> Any:
    """POST a text the way Twilio does (signed over the public URL)."""
    params = {
        "MessageSid": sid or "SM" + uuid.uuid4().hex,
        "AccountSid": "AC" + "0" * 32,
        "From": from_,
        "To": to,
        "Body": body,
        "NumMedia": "0",
        **extra,
    }
    headers = {"X-Twilio-Signature": twilio_signature(INBOUND_URL, params, TWILIO_TOKEN)}
    return client.post("/webhooks/twilio/inbound", data=params, headers=headers)


def proxy_url(path: str, domain: str = SHOP_DOMAIN, customer: str = "") -> str:
    query = app_proxy_query(
        {
            "shop": domain,
            "logged_in_customer_id": customer,
            "path_prefix": "/apps/sms",
            "timestamp": str(int(time.time())),
        },
        API_SECRET,
    )
    return f"/proxy/{path}?{urlencode(query)}"


def subscribe(
    client: FlaskClient,
    shop: Shop,
    phone: str,
    *,
    consent_text: str | None = None,
    ip: str = SHOPPER_IP,
    customer: str = "",
    **fields: str,
) -> Any:
    """POST the widget's form through the (signed) app proxy."""
    shop = db.session.get(Shop, id_of(shop))
    data = {
        "phone": phone,
        "page_url": PAGE_URL,
        "company": "",
        "consent_text": consent.shop_text(shop, "consent_text")
        if consent_text is None
        else consent_text,
        **fields,
    }
    return client.post(
        proxy_url("subscribe", shop.domain, customer),
        data=data,
        headers={"X-Forwarded-For": f"{ip}, 23.227.38.1", "User-Agent": SHOPPER_UA},
    )


def subscriber(shop_id: int, phone: str) -> Subscriber | None:
    db.session.expire_all()
    return db.session.scalars(Subscriber.for_shop(shop_id).where(Subscriber.phone == phone)).first()


def ledger(shop_id: int, sub_id: int) -> list[ConsentEvent]:
    db.session.expire_all()
    return list(
        db.session.scalars(
            ConsentEvent.for_shop(shop_id)
            .where(ConsentEvent.subscriber_id == sub_id)
            .order_by(ConsentEvent.id)
        )
    )


def kinds(shop_id: int, sub_id: int) -> list[tuple[str, str]]:
    return [(e.kind, e.source) for e in ledger(shop_id, sub_id)]


def messages_of(shop_id: int, sub_id: int) -> list[Message]:
    db.session.expire_all()
    return list(
        db.session.scalars(
            Message.for_shop(shop_id).where(Message.subscriber_id == sub_id).order_by(Message.id)
        )
    )


def add_subscriber(
    shop: Shop,
    phone: str,
    status: str = "subscribed",
    *,
    source: str = "widget",
    customer_id: int | None = None,
) -> Subscriber:
    """A subscriber brought to `status` through the ledger, like the app would."""
    shop = db.session.get(Shop, id_of(shop))
    sub = Subscriber(
        shop_id=shop.id,
        phone=phone,
        source=source,
        status="pending",
        country="US",
        timezone=day_zone(),
        customer_id=customer_id,
    )
    db.session.add(sub)
    db.session.flush()
    consent.record(shop, sub, consent.REQUESTED, source, consent_text="I agree")
    if status in ("subscribed", "unsubscribed"):
        consent.record(shop, sub, consent.CONFIRMED, source)
    if status == "unsubscribed":
        consent.record(shop, sub, consent.OPTED_OUT, "keyword")
    db.session.commit()
    return sub


def count(stmt: Any) -> int:
    return len(list(db.session.execute(stmt)))


def all_subscribers(shop_id: int) -> list[Subscriber]:
    db.session.expire_all()
    return list(db.session.scalars(select(Subscriber).where(Subscriber.shop_id == shop_id)))


@pytest.fixture(scope="module", name="_shopify_server")
def shopify_server_fixture() -> Iterator[FakeShopify]:
    with FakeShopify(API_KEY, API_SECRET) as fake:
        yield fake


# Fixtures are registered under `name=` so test modules can import them without the import
# being shadowed by the test function's argument of the same name.
@pytest.fixture(name="fake_shopify")
def fake_shopify_fixture(
    app: Flask, shop: Shop, _shopify_server: FakeShopify
) -> Iterator[FakeShopify]:
    """The Shopify stand-in, reset, accepting the test shop's token, as the Admin API."""
    fake = _shopify_server
    fake.reset()
    fake.add_token(shop.domain, "shpat_test_token")
    previous = app.config["SHOPIFY_ADMIN_BASE_URL"]
    app.config["SHOPIFY_ADMIN_BASE_URL"] = fake.base_url_template
    try:
        yield fake
    finally:
        app.config["SHOPIFY_ADMIN_BASE_URL"] = previous
