"""SMS marketing consent arriving from Shopify: checkout checkbox, customer account, orders.

Consent given in Shopify (its checkout checkbox or a checkout UI extension's) creates or
confirms a subscriber with source `checkout`; a single opt-in there is consent, and its opt-in
level is recorded. Consent withdrawn in Shopify unsubscribes. Webhooks arrive out of order, so
Shopify's `consent_updated_at` is compared with the subscriber's last consent change: an older
state never overrides a newer one, and an opt-out is never undone by an older subscribe.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func

from shopify_app.extensions import db
from shopify_app.models import ConsentEvent, Shop, Subscriber, WebhookDelivery, utcnow
from shopify_app.services import consent, subscribers
from shopify_app.services.shopify_payloads import (
    address_country,
    first_valid_phone,
    int_id,
    obj,
    parse_time,
)
from shopify_app.sms.phones import PhoneResult


@dataclass(frozen=True)
class ShopifyConsent:
    """One consent statement read from a payload."""

    state: str  # subscribed | unsubscribed | not_subscribed | pending | redacted | invalid
    updated_at: datetime
    opt_in_level: str | None = None
    collected_from: str | None = None


def _evidence(delivery: WebhookDelivery | None) -> str | None:
    return f"webhook:{delivery.webhook_id}" if delivery is not None else None


def _fallback_time(delivery: WebhookDelivery | None) -> datetime:
    if delivery is not None and delivery.triggered_at is not None:
        return delivery.triggered_at
    return utcnow()


def read_consent(raw: Any, delivery: WebhookDelivery | None) -> ShopifyConsent | None:
    """`sms_marketing_consent` of a customer payload, or None when absent."""
    if not isinstance(raw, dict) or not raw.get("state"):
        return None
    return ShopifyConsent(
        state=str(raw["state"]).lower(),
        updated_at=parse_time(raw.get("consent_updated_at")) or _fallback_time(delivery),
        opt_in_level=(str(raw["opt_in_level"]).lower() if raw.get("opt_in_level") else None),
        collected_from=(
            str(raw["consent_collected_from"]).upper()
            if raw.get("consent_collected_from")
            else None
        ),
    )


def _last_opt_out(sub: Subscriber) -> datetime | None:
    return db.session.scalar(
        ConsentEvent.for_shop(sub.shop_id)
        .with_only_columns(func.max(ConsentEvent.occurred_at))
        .where(ConsentEvent.subscriber_id == sub.id, ConsentEvent.kind == consent.OPTED_OUT)
    )


def _applies(sub: Subscriber, statement: ShopifyConsent) -> bool:
    """Whether Shopify's statement is newer than what the subscriber's ledger already says."""
    current = sub.consent_updated_at
    if statement.state == "subscribed":
        last_out = _last_opt_out(sub)
        if last_out is not None and statement.updated_at <= last_out:
            return False  # an opt-out always beats an older subscribe
        # An older checkout consent may still complete a pending widget request.
        return current is None or statement.updated_at > current or sub.status == "pending"
    return current is None or statement.updated_at > current


def apply_consent(
    shop: Shop,
    phone: PhoneResult | None,
    statement: ShopifyConsent,
    *,
    customer_id: int | None,
    delivery: WebhookDelivery | None,
    email: str | None = None,
    first_name: str | None = None,
    last_name: str | None = None,
    note: str | None = None,
) -> Subscriber | None:
    """Bring the subscriber in line with Shopify's consent statement. Returns the subscriber
    matched or created (None when Shopify's customer is not, and need not be, one of ours)."""
    sub = None
    if phone is not None:
        sub = subscribers.find_by_phone(shop.id, phone.e164 or "")
    if sub is None and customer_id is not None:
        sub = subscribers.find_by_customer(shop.id, customer_id)
    profile = {
        "customer_id": customer_id,
        "email": email,
        "first_name": first_name,
        "last_name": last_name,
    }

    if statement.state == "subscribed":
        if sub is None:
            if phone is None:
                return None  # consent without a number we can text (e.g. data withheld)
            sub, _ = subscribers.find_or_create(shop, phone, source="checkout", **profile)
        else:
            subscribers.fill_profile(sub, **profile)
        if sub.status != "subscribed" and _applies(sub, statement):
            subscribers.confirm(
                shop,
                sub,
                source="checkout",
                occurred_at=statement.updated_at,
                evidence_id=_evidence(delivery),
                opt_in_level=statement.opt_in_level,
                note=_note(statement, note),
            )
        return sub

    if sub is None:
        return None
    subscribers.fill_profile(sub, **profile)
    if (
        statement.state == "unsubscribed"
        and sub.status != "unsubscribed"
        and _applies(sub, statement)
    ):
        # Withdrawn in Shopify (admin, customer account): no text is sent about it.
        subscribers.unsubscribe(
            shop,
            sub,
            source="shopify_sync",
            occurred_at=statement.updated_at,
            evidence_id=_evidence(delivery),
            send_confirmation=False,
            note=_note(statement, note),
        )
    return sub


def _note(statement: ShopifyConsent, extra: str | None) -> str:
    parts = [f"Shopify consent {statement.state}"]
    if statement.collected_from:
        parts.append(f"collected from {statement.collected_from}")
    if extra:
        parts.append(extra)
    return "; ".join(parts)


def consent_from_customer(
    shop: Shop, customer: dict[str, Any], delivery: WebhookDelivery | None
) -> Subscriber | None:
    """customers/create, customers/update, customers_marketing_consent/update."""
    statement = read_consent(customer.get("sms_marketing_consent"), delivery)
    customer_id = int_id(customer.get("id") or customer.get("customer_id"))
    address = customer.get("default_address") or {}
    region = address_country({"billing_address": address}) or shop.country
    phone = first_valid_phone([customer.get("phone")], region)
    if statement is None:
        # No consent information: only link an existing subscriber to its customer.
        if phone is not None and customer_id is not None:
            sub = subscribers.find_by_phone(shop.id, phone.e164 or "")
            if sub is not None and sub.customer_id is None:
                subscribers.link_customer(sub, customer_id)
            return sub
        return None
    return apply_consent(
        shop,
        phone,
        statement,
        customer_id=customer_id,
        delivery=delivery,
        email=customer.get("email"),
        first_name=customer.get("first_name"),
        last_name=customer.get("last_name"),
    )


def consent_from_checkout(
    shop: Shop, payload: dict[str, Any], delivery: WebhookDelivery | None
) -> Subscriber | None:
    """checkouts/create|update: the SMS checkbox (`buyer_accepts_sms_marketing` with
    `sms_marketing_phone`), else the customer's own consent statement if the payload has it."""
    customer = payload.get("customer") if isinstance(payload.get("customer"), dict) else {}
    region = address_country(payload) or shop.country
    customer_id = int_id(customer.get("id"))
    billing = obj(payload, "billing_address")
    names = {
        "email": payload.get("email") or customer.get("email"),
        "first_name": customer.get("first_name") or billing.get("first_name"),
        "last_name": customer.get("last_name") or billing.get("last_name"),
    }
    if payload.get("buyer_accepts_sms_marketing") is True:
        phone = first_valid_phone(
            [payload.get("sms_marketing_phone"), payload.get("phone")], region
        )
        if phone is None:
            return None
        statement = ShopifyConsent(
            state="subscribed",
            updated_at=parse_time(payload.get("updated_at")) or _fallback_time(delivery),
            opt_in_level="single_opt_in",
            collected_from="SHOPIFY",
        )
        token = payload.get("token")
        return apply_consent(
            shop,
            phone,
            statement,
            customer_id=customer_id,
            delivery=delivery,
            note=f"checkout {token}" if token else None,
            **names,
        )
    statement = read_consent(customer.get("sms_marketing_consent"), delivery)
    if statement is not None:
        phone = first_valid_phone([customer.get("phone"), payload.get("phone")], region)
        return apply_consent(
            shop, phone, statement, customer_id=customer_id, delivery=delivery, **names
        )
    return None


def consent_from_order(
    shop: Shop, payload: dict[str, Any], delivery: WebhookDelivery | None
) -> Subscriber | None:
    """orders/create (and updates): apply the customer's SMS consent statement and return the
    order's subscriber, matched by the consent phone, the order's other phones or the customer
    id. For the attribution engineer's orders handler."""
    customer = payload.get("customer") if isinstance(payload.get("customer"), dict) else {}
    region = address_country(payload) or shop.country
    customer_id = int_id(customer.get("id"))
    statement = read_consent(customer.get("sms_marketing_consent"), delivery)
    names = {
        "email": payload.get("email") or customer.get("email"),
        "first_name": customer.get("first_name"),
        "last_name": customer.get("last_name"),
    }
    consent_phone = first_valid_phone([customer.get("phone"), payload.get("phone")], region)
    sub = None
    if statement is not None:
        sub = apply_consent(
            shop,
            consent_phone,
            statement,
            customer_id=customer_id,
            delivery=delivery,
            note=_order_note(payload),
            **names,
        )
    if sub is not None:
        return sub
    # No consent change: find the buyer among existing subscribers.
    candidates = [
        customer.get("phone"),
        payload.get("phone"),
        obj(payload, "billing_address").get("phone"),
        obj(payload, "shipping_address").get("phone"),
    ]
    for raw in candidates:
        phone = first_valid_phone([raw], region)
        if phone is None:
            continue
        sub = subscribers.find_by_phone(shop.id, phone.e164 or "")
        if sub is not None:
            if customer_id is not None and sub.customer_id is None:
                subscribers.link_customer(sub, customer_id)
            return sub
    if customer_id is not None:
        return subscribers.find_by_customer(shop.id, customer_id)
    return None


def _order_note(payload: dict[str, Any]) -> str | None:
    name = payload.get("name")
    return f"order {name}" if name else None
