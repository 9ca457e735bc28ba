"""The consent ledger: append a ConsentEvent, derive the subscriber's status from it.

`record()` is the only way consent changes and `apply_event()` the only code that writes
`Subscriber.status`. An opt-out also skips, in the same transaction, every message still waiting
to go to that subscriber; consent collected by Tidings is queued for writing back to Shopify.
"""

from __future__ import annotations

from datetime import datetime

from rq import Retry
from sqlalchemy import update

from shopify_app.extensions import db
from shopify_app.jobqueue import enqueue_after_commit
from shopify_app.models import ConsentEvent, Message, Shop, Subscriber, utcnow
from shopify_app.services import flow_triggers
from shopify_app.sms.compose import RenderContext, render

REQUESTED = "requested"
CONFIRMED = "confirmed"
OPTED_OUT = "opted_out"
RESUBSCRIBED = "resubscribed"
REDACTED = "redacted"

# Consent that arrived from Shopify is never written back to it (no ping-pong); an import's
# consent was collected elsewhere and has no Shopify customer to write to.
FROM_SHOPIFY = frozenset({"checkout", "shopify_sync"})
SYNCED_SOURCES = frozenset({"widget", "keyword", "admin", "carrier"})
SYNCED_KINDS = frozenset({CONFIRMED, RESUBSCRIBED, OPTED_OUT})
SYNC_JOB = "jobs.consent_sync.sync_consent_event"
# Shopify throttling or an outage: try again over about an hour; the periodic sweep catches
# anything still unsynced after that.
SYNC_RETRY = Retry(max=5, interval=[30, 120, 300, 900, 1800])


def enqueue_sync(event: ConsentEvent) -> None:
    """Write the event back to Shopify once this transaction commits."""
    enqueue_after_commit(SYNC_JOB, event.id, queue="low", retry=SYNC_RETRY)


def status_after(kind: str, current: str | None) -> str:
    """The status a subscriber has after an event of `kind` (`current` is None for a new row).

    requested -> pending, unless already subscribed (asking again changes nothing);
    confirmed / resubscribed -> subscribed; opted_out and redacted -> unsubscribed.
    """
    if kind == REQUESTED:
        return "subscribed" if current == "subscribed" else "pending"
    if kind in (CONFIRMED, RESUBSCRIBED):
        return "subscribed"
    if kind in (OPTED_OUT, REDACTED):
        return "unsubscribed"
    raise ValueError(f"unknown consent event kind {kind!r}")


def apply_event(subscriber: Subscriber, event: ConsentEvent) -> bool:
    """Move the subscriber to the status the event implies. Returns whether the status changed."""
    before = subscriber.status
    after = status_after(event.kind, before if subscriber.id is not None else None)
    subscriber.status = after
    if after == "subscribed" and before != "subscribed":
        subscriber.subscribed_at = event.occurred_at
        subscriber.unsubscribed_at = None
    elif after == "unsubscribed" and before != "unsubscribed":
        subscriber.unsubscribed_at = event.occurred_at
    if subscriber.consent_updated_at is None or event.occurred_at > subscriber.consent_updated_at:
        subscriber.consent_updated_at = event.occurred_at
    return after != before


def record(
    shop: Shop,
    subscriber: Subscriber,
    kind: str,
    source: str,
    *,
    occurred_at: datetime | None = None,
    ip: str | None = None,
    user_agent: str | None = None,
    page_url: str | None = None,
    consent_text: str | None = None,
    evidence_id: str | None = None,
    opt_in_level: str | None = None,
    note: str | None = None,
) -> ConsentEvent:
    """Append one ledger event and apply it. The caller commits."""
    status_after(kind, subscriber.status)  # reject an unknown kind before writing anything
    if subscriber.id is None:
        db.session.add(subscriber)
        db.session.flush()
    event = ConsentEvent(
        shop_id=shop.id,
        subscriber_id=subscriber.id,
        kind=kind,
        source=source,
        occurred_at=occurred_at or utcnow(),
        ip=ip,
        user_agent=user_agent,
        page_url=page_url,
        consent_text=consent_text,
        evidence_id=evidence_id,
        opt_in_level=opt_in_level,
        note=note,
    )
    db.session.add(event)
    apply_event(subscriber, event)
    db.session.flush()
    if kind in (OPTED_OUT, REDACTED):
        skip_pending_messages(shop.id, subscriber.id)
        flow_triggers.subscriber_left(shop.id, subscriber.id, kind)
    if needs_sync(event, subscriber):
        enqueue_sync(event)
    return event


def needs_sync(event: ConsentEvent, subscriber: Subscriber) -> bool:
    """Whether this event should be written back to the subscriber's Shopify customer."""
    return (
        subscriber.customer_id is not None
        and event.kind in SYNCED_KINDS
        and event.source in SYNCED_SOURCES
        and event.synced_at is None
    )


def skip_pending_messages(shop_id: int, subscriber_id: int) -> int:
    """Every message still waiting for this subscriber becomes `skipped (opted_out)`.

    Messages already claimed by a sender (`sending`) are left to the send path, which re-checks
    consent before it submits. Returns how many rows were skipped.
    """
    result = db.session.execute(
        update(Message)
        .where(
            Message.shop_id == shop_id,
            Message.subscriber_id == subscriber_id,
            Message.status == "pending",
        )
        .values(status="skipped", skip_reason="opted_out", updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)


def shop_template(shop: Shop, key: str) -> str:
    """A merchant text setting as a message template: {support} (a setting placeholder, not a
    per-subscriber merge tag) filled in, merge tags such as {brand} left for the send path."""
    template = str(shop.setting(key) or "")
    support = shop.setting("support_contact") or shop.email or shop.primary_domain or shop.domain
    return template.replace("{support}", str(support).replace("{", "{{").replace("}", "}}"))


def shop_text(shop: Shop, key: str) -> str:
    """A merchant text setting (consent_text, help_text, ...) with the shop's brand filled in,
    exactly as a shopper reads it."""
    ctx = RenderContext(shop_name=shop.name or "", brand=shop.brand)
    return render(shop_template(shop, key), ctx, brand_prefix=False).body


def latest_event(shop_id: int, subscriber_id: int) -> ConsentEvent | None:
    """The last event applied (by id: events are applied as they are appended, and an older
    Shopify consent that completes a pending request is applied last though stamped earlier)."""
    return db.session.scalars(
        ConsentEvent.for_shop(shop_id)
        .where(ConsentEvent.subscriber_id == subscriber_id)
        .order_by(ConsentEvent.id.desc())
        .limit(1)
    ).first()
