"""Use cases that add, confirm, resubscribe and unsubscribe one subscriber.

Every status change goes through the consent ledger (services.consent.record). The texts these
changes send (confirmation request, welcome, opt-out confirmation) are queued through
services.outgoing with a dedupe key derived from the ledger event, so retrying a request or a
job never sends a second copy. These functions flush; the caller (door or job) commits.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from redis.exceptions import LockError
from sqlalchemy.exc import IntegrityError

from shopify_app.extensions import db, get_redis
from shopify_app.models import ConsentEvent, Shop, Subscriber, utcnow
from shopify_app.services import consent, flow_triggers
from shopify_app.services.outgoing import queue_message
from shopify_app.sms.phones import PhoneResult

# A second sign-up for a pending number inside this window is the same request (a double click,
# a reload): it sends no second confirmation text.
DUPLICATE_REQUEST_WINDOW = timedelta(minutes=10)
# Consent older than this (a Shopify backfill, an old customer record) gets no welcome text.
WELCOME_MAX_AGE = timedelta(hours=24)


@dataclass(frozen=True)
class OptInResult:
    # "pending": a confirmation request is (or already was) on its way;
    # "already_subscribed": nothing to do.
    status: str
    subscriber: Subscriber
    event: ConsentEvent | None = None
    created: bool = False


def queue_text(
    shop: Shop,
    sub: Subscriber,
    *,
    kind: str,
    template: str,
    dedupe_key: str,
    context: dict[str, Any] | None = None,
) -> None:
    """Queue one text for this subscriber through the send path (idempotent on dedupe_key)."""
    queue_message(shop, sub, kind=kind, template=template, dedupe_key=dedupe_key, context=context)


def find_by_phone(shop_id: int, e164: str) -> Subscriber | None:
    return db.session.scalars(Subscriber.for_shop(shop_id).where(Subscriber.phone == e164)).first()


def find_by_customer(shop_id: int, customer_id: int) -> Subscriber | None:
    return db.session.scalars(
        Subscriber.for_shop(shop_id)
        .where(Subscriber.customer_id == customer_id)
        .order_by(Subscriber.id)
    ).first()


def zones_for(shop: Shop, phone: PhoneResult) -> str:
    """Comma-separated zones of the number (the send rules use the overlap of all of them), or
    the shop's zone when the number does not tell."""
    return ",".join(phone.timezones) or shop.timezone


def find_or_create(
    shop: Shop,
    phone: PhoneResult,
    *,
    source: str,
    customer_id: int | None = None,
    email: str | None = None,
    first_name: str | None = None,
    last_name: str | None = None,
) -> tuple[Subscriber, bool]:
    """The shop's subscriber for this number, created (without consent yet) when missing.

    Profile fields (and the Shopify customer id) fill gaps only; they never overwrite what a
    subscriber row already has. Safe against a concurrent insert of the same number (unique
    shop_id + phone).
    """
    if not phone.ok or not phone.e164:
        raise ValueError("find_or_create needs a valid number")
    existing = find_by_phone(shop.id, phone.e164)
    created = False
    if existing is None:
        candidate = Subscriber(
            shop_id=shop.id,
            phone=phone.e164,
            country=phone.country,
            region=phone.state,
            timezone=zones_for(shop, phone),
            source=source,
            status="pending",
        )
        try:
            with db.session.begin_nested():
                db.session.add(candidate)
            existing, created = candidate, True
        except IntegrityError:
            existing = find_by_phone(shop.id, phone.e164)
            if existing is None:  # not a duplicate number after all
                raise
    fill_profile(
        existing, customer_id=customer_id, email=email, first_name=first_name, last_name=last_name
    )
    return existing, created


def fill_profile(sub: Subscriber, **values: Any) -> None:
    """Fill empty profile fields (email, names) and link a Shopify customer id if none yet."""
    customer_id = values.pop("customer_id", None)
    # Never re-pointed: two customers may share a number (a family phone), and flipping the
    # link with every webhook would write one person's consent onto the other.
    if customer_id is not None and sub.customer_id is None:
        link_customer(sub, customer_id)
    for name, value in values.items():
        if value and not getattr(sub, name):
            setattr(sub, name, str(value)[:255])


def link_customer(sub: Subscriber, customer_id: int) -> None:
    """Attach the Shopify customer; consent Tidings collected before is then written back."""
    sub.customer_id = customer_id
    if sub.id is None:
        return
    latest = consent.latest_event(sub.shop_id, sub.id)
    if latest is not None and consent.needs_sync(latest, sub):
        consent.enqueue_sync(latest)


@contextlib.contextmanager
def phone_lock(shop_id: int, e164: str, timeout: float = 10.0) -> Iterator[None]:
    """Serialise sign-ups of one number in one shop across processes: hold it around the
    service call *and* the commit, so a concurrent double submit sees the first one's rows."""
    digest = hashlib.sha256(e164.encode()).hexdigest()[:32]  # no numbers in Redis keys
    lock = get_redis().lock(
        f"tidings:lock:optin:{shop_id}:{digest}", timeout=timeout, blocking_timeout=timeout
    )
    # Not acquired in time (a stuck holder): go ahead; the duplicate window still applies.
    acquired = lock.acquire()
    try:
        yield
    finally:
        if acquired:
            with contextlib.suppress(LockError):  # expired meanwhile: nothing left to release
                lock.release()


def _recent_request(sub: Subscriber, now: datetime) -> ConsentEvent | None:
    latest = consent.latest_event(sub.shop_id, sub.id)
    if (
        latest is not None
        and latest.kind == consent.REQUESTED
        and now - latest.occurred_at < DUPLICATE_REQUEST_WINDOW
    ):
        return latest
    return None


def request_opt_in(
    shop: Shop,
    phone: PhoneResult,
    *,
    source: str,
    consent_text: str | None,
    ip: str | None = None,
    user_agent: str | None = None,
    page_url: str | None = None,
    evidence_id: str | None = None,
    note: str | None = None,
    customer_id: int | None = None,
) -> OptInResult:
    """Double opt-in, step one: a pending subscriber, its `requested` event, and the text asking
    the shopper to reply Y. A subscribed number is left alone; a repeat inside the duplicate
    window sends nothing new."""
    sub, created = find_or_create(shop, phone, source=source, customer_id=customer_id)
    if sub.status == "subscribed":
        return OptInResult("already_subscribed", sub, created=created)
    now = utcnow()
    if not created and sub.status == "pending":
        previous = _recent_request(sub, now)
        if previous is not None:
            return OptInResult("pending", sub, previous)
    event = consent.record(
        shop,
        sub,
        consent.REQUESTED,
        source,
        occurred_at=now,
        ip=ip,
        user_agent=user_agent,
        page_url=page_url,
        consent_text=consent_text,
        evidence_id=evidence_id,
        note=note,
    )
    queue_text(
        shop,
        sub,
        kind="transactional",
        template=shop.setting("confirmation_text"),
        dedupe_key=f"optin-confirm:{sub.id}:{event.id}",
    )
    return OptInResult("pending", sub, event, created)


def confirm(
    shop: Shop,
    sub: Subscriber,
    *,
    source: str,
    evidence_id: str | None = None,
    occurred_at: datetime | None = None,
    opt_in_level: str | None = None,
    note: str | None = None,
) -> ConsentEvent | None:
    """Consent confirmed (reply Y, Shopify's checkbox): subscribed, then the welcome text.
    Returns None when the subscriber already was subscribed."""
    if sub.status == "subscribed":
        return None
    event = consent.record(
        shop,
        sub,
        consent.CONFIRMED,
        source,
        occurred_at=occurred_at,
        evidence_id=evidence_id,
        opt_in_level=opt_in_level,
        note=note,
    )
    send_welcome(shop, sub, event)
    return event


def resubscribe(
    shop: Shop,
    sub: Subscriber,
    *,
    source: str,
    evidence_id: str | None = None,
    occurred_at: datetime | None = None,
    note: str | None = None,
) -> ConsentEvent | None:
    """An opted-out number opts back in (START, UNSTOP, YES). None unless it was unsubscribed."""
    if sub.status != "unsubscribed":
        return None
    event = consent.record(
        shop,
        sub,
        consent.RESUBSCRIBED,
        source,
        occurred_at=occurred_at,
        evidence_id=evidence_id,
        note=note,
    )
    # The first text after an opt-in names the brand and the program: the welcome does.
    send_welcome(shop, sub, event)
    return event


def send_welcome(shop: Shop, sub: Subscriber, event: ConsentEvent) -> None:
    """The first text after an opt-in (brand, program, frequency, rates, HELP/STOP), with the
    merchant's welcome code for sign-ups through the widget or a keyword."""
    if utcnow() - event.occurred_at > WELCOME_MAX_AGE:
        return
    template = str(shop.setting("welcome_text"))
    context: dict[str, Any] = {}
    code = (shop.setting("widget") or {}).get("welcome_discount")
    if isinstance(code, str) and code.strip() and event.source in ("widget", "keyword"):
        context["discount_code"] = code.strip()
        if "{discount_code" not in template.lower():
            template = f"{template} Your code: {{discount_code}}"
    queue_text(
        shop,
        sub,
        kind="transactional",
        template=template,
        dedupe_key=f"welcome:{sub.id}:{event.id}",
        context=context or None,
    )
    flow_triggers.subscription_confirmed(shop, sub)  # the welcome series follows this text


def unsubscribe(
    shop: Shop,
    sub: Subscriber,
    *,
    source: str,
    evidence_id: str | None = None,
    occurred_at: datetime | None = None,
    send_confirmation: bool = True,
    note: str | None = None,
) -> ConsentEvent | None:
    """Opt out now: unsubscribed, pending messages skipped, and (unless Twilio's filter already
    answered, or the caller says otherwise) the one opt-out confirmation. A number that is
    already unsubscribed gets neither a new event nor a second confirmation."""
    if sub.status == "unsubscribed":
        return None
    event = consent.record(
        shop,
        sub,
        consent.OPTED_OUT,
        source,
        occurred_at=occurred_at,
        evidence_id=evidence_id,
        note=note,
    )
    if send_confirmation:
        queue_text(
            shop,
            sub,
            kind="compliance",
            template=shop.setting("opt_out_text"),
            dedupe_key=f"optout-confirm:{sub.id}:{event.id}",
        )
    return event


def suppress(
    shop: Shop, phone: PhoneResult, *, source: str, evidence_id: str | None = None
) -> Subscriber:
    """Record an opt-out for a number the shop never had: the row keeps the number from being
    added again by an import or a stale webhook without new consent."""
    sub, _created = find_or_create(shop, phone, source=source)
    if sub.status != "unsubscribed":
        consent.record(shop, sub, consent.OPTED_OUT, source, evidence_id=evidence_id)
    return sub
