"""Write consent collected by Tidings back to the Shopify customer, so both sides agree.

Only events from Tidings' own channels are written (widget confirmation, keyword, STOP/START,
admin, carrier opt-out); consent that came from Shopify is never echoed back. The event's own
time is sent as `consentUpdatedAt`, so the customers_marketing_consent/update webhook Shopify
sends after our write carries a time that is not newer than ours and changes nothing here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select

from shopify_app.extensions import db
from shopify_app.models import ConsentEvent, Shop, Subscriber, utcnow
from shopify_app.services import consent
from shopify_app.shopify.client import ShopifyClient, raise_user_errors
from shopify_app.shopify.errors import ShopifyUserError

log = logging.getLogger(__name__)

CONSENT_MUTATION = """
mutation TidingsSmsConsent($input: CustomerSmsMarketingConsentUpdateInput!) {
  customerSmsMarketingConsentUpdate(input: $input) {
    customer { id }
    userErrors { field message code }
  }
}
"""

_STATE = {
    consent.CONFIRMED: "SUBSCRIBED",
    consent.RESUBSCRIBED: "SUBSCRIBED",
    consent.OPTED_OUT: "UNSUBSCRIBED",
}


@dataclass(frozen=True)
class SyncResult:
    # "synced", or why nothing was written: "not_found", "already_synced", "not_synced_kind",
    # "superseded", "no_customer", "shop_unavailable", "rejected"
    outcome: str
    detail: str | None = None


def consent_input(event: ConsentEvent, customer_id: int) -> dict:
    """The mutation's input for one ledger event."""
    sms: dict = {
        "marketingState": _STATE[event.kind],
        "consentUpdatedAt": event.occurred_at.isoformat().replace("+00:00", "Z"),
    }
    if sms["marketingState"] == "SUBSCRIBED":
        # A reply Y (or START) after the sign-up is a confirmed opt-in.
        sms["marketingOptInLevel"] = "CONFIRMED_OPT_IN"
    return {"customerId": f"gid://shopify/Customer/{customer_id}", "smsMarketingConsent": sms}


def sync_event(event_id: int) -> SyncResult:
    """Write one ledger event to Shopify if it is still the subscriber's current consent.

    Transient Shopify failures (throttled after every wait, unavailable) raise so the job is
    retried; a refused input is recorded and not retried. The caller commits.
    """
    event = db.session.get(ConsentEvent, event_id)
    if event is None:
        return SyncResult("not_found")
    if event.synced_at is not None:
        return SyncResult("already_synced")
    if event.kind not in _STATE or event.source not in consent.SYNCED_SOURCES:
        return SyncResult("not_synced_kind")
    sub = Subscriber.get_for_shop(event.shop_id, event.subscriber_id)
    if sub is None or sub.customer_id is None or sub.redacted_at is not None:
        return SyncResult("no_customer")
    latest = consent.latest_event(event.shop_id, sub.id)
    if latest is not None and latest.id != event.id:
        # A newer change exists; it has (or had) its own sync, and Shopify keeps the newest.
        return SyncResult("superseded")
    shop = db.session.get(Shop, event.shop_id)
    if shop is None or not shop.is_installed:
        return SyncResult("shop_unavailable")
    with ShopifyClient(shop) as client:
        data = client.execute(CONSENT_MUTATION, {"input": consent_input(event, sub.customer_id)})
    try:
        raise_user_errors(data, "customerSmsMarketingConsentUpdate")
    except ShopifyUserError as exc:
        # e.g. the customer has no phone on file or was deleted: retrying will not help.
        log.warning(
            "Shopify refused consent update for subscriber %s: %s", sub.id, "; ".join(exc.messages)
        )
        event.synced_at = utcnow()
        event.note = _append(event.note, "Shopify sync refused: " + "; ".join(exc.messages))
        return SyncResult("rejected", "; ".join(exc.messages))
    event.synced_at = utcnow()
    return SyncResult("synced")


def unsynced_event_ids(older_than: timedelta = timedelta(minutes=5), limit: int = 500) -> list[int]:
    """Events that should have been written back and were not (a lost job): the newest event
    of a subscriber with a Shopify customer, from a Tidings channel, not yet synced. A sweep
    over every shop; each event is then handled in its own shop's scope."""
    rows = db.session.scalars(
        select(ConsentEvent.id)
        .join(Subscriber, Subscriber.id == ConsentEvent.subscriber_id)
        .where(
            ConsentEvent.synced_at.is_(None),
            ConsentEvent.kind.in_(tuple(_STATE)),
            ConsentEvent.source.in_(tuple(consent.SYNCED_SOURCES)),
            Subscriber.customer_id.is_not(None),
            Subscriber.consent_updated_at == ConsentEvent.occurred_at,
            # Younger events still have their own job in the queue.
            ConsentEvent.created_at < utcnow() - older_than,
        )
        .order_by(ConsentEvent.id)
        .limit(limit)
    )
    return list(rows)


def _append(note: str | None, text: str) -> str:
    return f"{note}\n{text}" if note else text
