"""Shopify's mandatory privacy requests: report on a customer, erase a customer, erase a shop.

A customer is matched by Shopify customer id, phone (normalised to E.164: the payload may be
formatted) and email. Redaction keeps every row, so counts and revenue stay right, and erases
what identifies the person. These functions flush; the webhook job owns the transaction.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import phonenumbers
from sqlalchemy import delete, func, null, or_, select, update

from shopify_app.extensions import db
from shopify_app.models import (
    Checkout,
    Click,
    ComplianceRequest,
    ConsentEvent,
    FlowRun,
    ImportJob,
    InboundMessage,
    Link,
    Message,
    Order,
    OutboxMessage,
    Shop,
    Subscriber,
    WebhookDelivery,
    utcnow,
)
from shopify_app.services import consent
from shopify_app.sms.phones import normalize

log = logging.getLogger(__name__)

REDACTED = "redacted"
# Separators people and Shopify put inside numbers: "+1 (555) 010-2030" is one number.
_NUMBER_SEPARATORS = re.compile(r"(?<=\d)[\s().\-/\u00a0]+(?=\d)")


@dataclass
class Person:
    """Everything that identifies one customer inside one shop."""

    customer_ids: set[int] = field(default_factory=set)
    phones: set[str] = field(default_factory=set)  # E.164
    emails: set[str] = field(default_factory=set)  # lower-case
    subscriber_ids: set[int] = field(default_factory=set)

    def phone_variants(self) -> set[str]:
        """E.164, and the national digits, as they may appear inside free text."""
        variants = set()
        for phone in self.phones:
            variants.add(phone)
            try:
                national = str(phonenumbers.parse(phone, None).national_number)
            except phonenumbers.NumberParseException:
                continue
            variants.add(national)
        return variants

    def mentions(self) -> Callable[[str | None], bool]:
        """A test for "this text names the person" (email, or the number however formatted)."""
        phones = sorted(self.phone_variants(), key=len, reverse=True)
        emails = sorted(self.emails)

        def _mentions(text: str | None) -> bool:
            if not text:
                return False
            lowered = text.lower()
            if any(email in lowered for email in emails):
                return True
            compact = _NUMBER_SEPARATORS.sub("", text)
            return any(phone in compact for phone in phones)

        return _mentions


def e164(raw: str | None, region: str | None = "US") -> str | None:
    """The number in E.164 for matching, whether or not it could receive texts."""
    if not raw or not str(raw).strip():
        return None
    result = normalize(str(raw), region)
    if result.ok:
        return result.e164
    try:
        number = phonenumbers.parse(str(raw), region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _customer_id(value: Any) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def find_person(shop: Shop, customer: dict[str, Any], order_ids: Iterable[Any] = ()) -> Person:
    """Resolve the payload's customer to our rows: subscribers matched by customer id, phone
    or email, plus the numbers and addresses those rows and the customer's orders hold."""
    person = Person()
    cid = _customer_id(customer.get("id"))
    if cid is not None:
        person.customer_ids.add(cid)
    phone = e164(customer.get("phone"), shop.country or "US")
    if phone:
        person.phones.add(phone)
    email = (customer.get("email") or "").strip().lower()
    if email:
        person.emails.add(email)

    conditions = []
    if person.customer_ids:
        conditions.append(Subscriber.customer_id.in_(person.customer_ids))
    if person.phones:
        conditions.append(Subscriber.phone.in_(person.phones))
    if person.emails:
        conditions.append(func.lower(Subscriber.email).in_(person.emails))
    if conditions:
        for sub in db.session.scalars(Subscriber.for_shop(shop.id).where(or_(*conditions))):
            person.subscriber_ids.add(sub.id)
            if sub.phone:
                person.phones.add(sub.phone)
            if sub.email:
                person.emails.add(sub.email.lower())

    # Numbers and addresses the customer gave on orders and checkouts are theirs too.
    for order in _rows(Order, shop.id, _order_filter(person, order_ids)):
        if order.phone:
            person.phones.add(order.phone)
    for checkout in _rows(Checkout, shop.id, _person_filter(Checkout, person, with_email=True)):
        if checkout.phone:
            person.phones.add(checkout.phone)
        if checkout.email:
            person.emails.add(checkout.email.lower())
    return person


def _person_filter(model: Any, person: Person, *, with_email: bool = False) -> Any:
    """OR of the ways a row of `model` (Order, Checkout, InboundMessage...) points at the
    person; None when nothing identifies them."""
    conds = []
    if person.customer_ids and hasattr(model, "customer_id"):
        conds.append(model.customer_id.in_(person.customer_ids))
    if person.subscriber_ids and hasattr(model, "subscriber_id"):
        conds.append(model.subscriber_id.in_(person.subscriber_ids))
    phone_col = getattr(model, "phone", None)
    if phone_col is None:
        phone_col = getattr(model, "from_phone", None)
    if person.phones and phone_col is not None:
        conds.append(phone_col.in_(person.phones))
    if with_email and person.emails:
        conds.append(func.lower(model.email).in_(person.emails))
    return or_(*conds) if conds else None


def _order_filter(person: Person, order_ids: Iterable[Any]) -> Any:
    """The person's orders, plus the ones Shopify names explicitly (orders_requested /
    orders_to_redact)."""
    ids = {i for i in (_customer_id(o) for o in order_ids) if i is not None}
    conds = [
        c
        for c in (_person_filter(Order, person), Order.shopify_order_id.in_(ids) if ids else None)
        if c is not None
    ]
    return or_(*conds) if conds else None


def _rows(model: Any, shop_id: int, condition: Any) -> list[Any]:
    """The shop's rows of `model` matching `condition` (none when there is no condition)."""
    if condition is None:
        return []
    return list(db.session.scalars(model.for_shop(shop_id).where(condition).order_by(model.id)))


# --- customers/data_request ---------------------------------------------------------------


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def _pick(row: Any, names: Iterable[str]) -> dict[str, Any]:
    return {name: _plain(getattr(row, name)) for name in names}


_PROFILE = (
    "id",
    "phone",
    "email",
    "first_name",
    "last_name",
    "customer_id",
    "country",
    "region",
    "timezone",
    "status",
    "source",
    "subscribed_at",
    "unsubscribed_at",
    "orders_count",
    "total_spent",
    "last_order_at",
    "last_click_at",
    "created_at",
    "consent_updated_at",
    "redacted_at",
)
_CONSENT = (
    "kind",
    "source",
    "occurred_at",
    "ip",
    "user_agent",
    "page_url",
    "consent_text",
    "evidence_id",
    "opt_in_level",
    "note",
    "synced_at",
)
_MESSAGE = (
    "id",
    "kind",
    "status",
    "skip_reason",
    "body",
    "due_at",
    "sent_at",
    "delivered_at",
    "failed_at",
    "campaign_id",
    "flow_run_id",
)
_CLICK = ("message_id", "clicked_at", "ip", "user_agent")
_INBOUND = ("from_phone", "to", "body", "keyword", "received_at")
_ORDER = (
    "shopify_order_id",
    "name",
    "phone",
    "currency",
    "total",
    "refunded",
    "ordered_at",
    "cancelled_at",
    "discount_codes",
    "campaign_id",
    "flow_id",
    "attribution_reason",
)
_CHECKOUT = ("token", "phone", "email", "total", "currency", "completed_at", "created_at")


def build_customer_report(shop: Shop, person: Person, order_ids: Iterable[Any] = ()) -> dict:
    """Everything Tidings holds about the person, as one JSON-able document."""
    subscribers = []
    subs = person.subscriber_ids
    for sub in _rows(Subscriber, shop.id, Subscriber.id.in_(subs) if subs else None):
        mine = {"subscriber_id": sub.id}
        subscribers.append(
            {
                "profile": _pick(sub, _PROFILE),
                "consent_events": [
                    _pick(e, _CONSENT)
                    for e in db.session.scalars(
                        ConsentEvent.for_shop(shop.id).filter_by(**mine).order_by(ConsentEvent.id)
                    )
                ],
                "messages": [
                    _pick(m, _MESSAGE)
                    for m in db.session.scalars(
                        Message.for_shop(shop.id).filter_by(**mine).order_by(Message.id)
                    )
                ],
                "clicks": [
                    _pick(c, _CLICK)
                    for c in db.session.scalars(
                        Click.for_shop(shop.id).filter_by(**mine).order_by(Click.id)
                    )
                ],
            }
        )
    inbound = _rows(InboundMessage, shop.id, _person_filter(InboundMessage, person))
    orders = _rows(Order, shop.id, _order_filter(person, order_ids))
    checkouts = _rows(Checkout, shop.id, _person_filter(Checkout, person, with_email=True))
    return {
        "shop": shop.domain,
        "generated_at": utcnow().isoformat(),
        "customer": {
            "customer_ids": sorted(person.customer_ids),
            "phones": sorted(person.phones),
            "emails": sorted(person.emails),
        },
        "subscribers": subscribers,
        "inbound_messages": [_pick(m, _INBOUND) for m in inbound],
        "orders": [_pick(o, _ORDER) for o in orders],
        "checkouts": [_pick(c, _CHECKOUT) for c in checkouts],
    }


def customer_data_request(shop: Shop, payload: dict[str, Any]) -> ComplianceRequest:
    """Assemble the report for customers/data_request and keep it for the merchant."""
    person = find_person(shop, payload.get("customer") or {}, payload.get("orders_requested") or ())
    report = build_customer_report(shop, person, payload.get("orders_requested") or ())
    request_id = (payload.get("data_request") or {}).get("id")
    request_id = str(request_id) if request_id not in (None, "") else None
    existing = None
    if request_id is not None:
        existing = db.session.scalars(
            ComplianceRequest.for_shop(shop.id).where(
                ComplianceRequest.kind == "data_request",
                ComplianceRequest.shopify_request_id == request_id,
            )
        ).first()
    row = existing or ComplianceRequest(
        shop_id=shop.id, kind="data_request", shopify_request_id=request_id
    )
    row.customer_id = min(person.customer_ids) if person.customer_ids else None
    row.report = report
    db.session.add(row)
    db.session.flush()
    log.info(
        "customer data request %s ready for the merchant (compliance_request %s, "
        "%s subscriber rows)",
        request_id,
        row.id,
        len(report["subscribers"]),
    )
    return row


# --- customers/redact ---------------------------------------------------------------------


def _scrub(value: Any, mentions: Callable[[str | None], bool]) -> Any:
    """The JSON value with every string that names the person replaced by None."""
    if isinstance(value, str):
        return None if mentions(value) else value
    if isinstance(value, list):
        return [_scrub(v, mentions) for v in value]
    if isinstance(value, dict):
        return {k: _scrub(v, mentions) for k, v in value.items()}
    return value


def _count(result: Any) -> int:
    return max(result.rowcount or 0, 0)


def redact_customer(
    shop: Shop, payload: dict[str, Any], delivery: WebhookDelivery | None = None
) -> dict[str, int]:
    """customers/redact: erase the person everywhere, keep the rows (and so the counts)."""
    orders_to_redact = payload.get("orders_to_redact") or ()
    person = find_person(shop, payload.get("customer") or {}, orders_to_redact)
    mentions = person.mentions()
    counts = {"subscribers": _redact_subscribers(shop, person, mentions, delivery)}

    inbound_cond = _person_filter(InboundMessage, person)
    counts["inbound_messages"] = (
        0
        if inbound_cond is None
        else _count(
            db.session.execute(
                update(InboundMessage)
                .where(InboundMessage.shop_id == shop.id, inbound_cond)
                .values(from_phone=None, body=None)
            )
        )
    )

    orders = _rows(Order, shop.id, _order_filter(person, orders_to_redact))
    for order in orders:
        order.phone = None  # totals and attribution stay: they are the merchant's figures
        if mentions(order.landing_site):
            order.landing_site = None
    counts["orders"] = len(orders)

    checkouts = _rows(Checkout, shop.id, _person_filter(Checkout, person, with_email=True))
    recovery_urls = {c.recovery_url for c in checkouts if c.recovery_url}
    for checkout in checkouts:
        checkout.phone = checkout.email = checkout.recovery_url = None
    counts["checkouts"] = len(checkouts)
    if recovery_urls:
        # A recovery link opens the person's own cart and address: short links to it now
        # lead to the shop's front page.
        db.session.execute(
            update(Link)
            .where(Link.shop_id == shop.id, Link.url.in_(recovery_urls))
            .values(url=f"https://{shop.primary_domain or shop.domain}/")
        )

    counts["outbox_messages"] = (
        0
        if not person.phones
        else _count(
            db.session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.shop_id == shop.id, OutboxMessage.to.in_(person.phones))
                .values(to=REDACTED, body="")
            )
        )
    )

    _redact_imports(shop, mentions)
    _redact_reports(shop, person, mentions)
    counts["webhook_payloads"] = _redact_deliveries(shop, mentions, delivery)

    db.session.add(
        ComplianceRequest(
            shop_id=shop.id,
            kind="redact",
            customer_id=min(person.customer_ids) if person.customer_ids else None,
            report={"redacted_at": utcnow().isoformat(), "counts": counts},
        )
    )
    db.session.flush()
    log.info("customer redacted: %s", ", ".join(f"{k}={v}" for k, v in sorted(counts.items())))
    return counts


def _redact_subscribers(
    shop: Shop,
    person: Person,
    mentions: Callable[[str | None], bool],
    delivery: WebhookDelivery | None,
) -> int:
    """Erase the subscriber profiles and everything hanging off them; keep the rows."""
    subs = person.subscriber_ids
    if not subs:
        return 0
    evidence = delivery.webhook_id if delivery is not None else None
    for sub in _rows(Subscriber, shop.id, Subscriber.id.in_(subs)):
        # Through the ledger like any consent change: unsubscribed, queued texts skipped.
        consent.record(shop, sub, consent.REDACTED, "shopify_sync", evidence_id=evidence)
        sub.phone = sub.email = sub.first_name = sub.last_name = None
        sub.region = sub.timezone = None  # both were derived from the number
        sub.redacted_at = utcnow()
    db.session.flush()

    # Kind, source and time stay (anonymous counts); where and how the consent was given go.
    db.session.execute(
        update(ConsentEvent)
        .where(ConsentEvent.shop_id == shop.id, ConsentEvent.subscriber_id.in_(subs))
        .values(ip=None, user_agent=None, page_url=None)
    )
    for event in _rows(ConsentEvent, shop.id, ConsentEvent.subscriber_id.in_(subs)):
        if mentions(event.evidence_id):
            event.evidence_id = None  # e.g. a keyword text's evidence naming the number
        if mentions(event.note):
            event.note = None
    # Rendered bodies and merge values may hold names and codes; provider errors may echo
    # the number.
    db.session.execute(
        update(Message)
        .where(Message.shop_id == shop.id, Message.subscriber_id.in_(subs))
        .values(body=None, error_message=None, context=null())
    )
    their_messages = select(Message.id).where(
        Message.shop_id == shop.id, Message.subscriber_id.in_(subs)
    )
    db.session.execute(
        update(Click)
        .where(
            Click.shop_id == shop.id,
            or_(Click.subscriber_id.in_(subs), Click.message_id.in_(their_messages)),
        )
        .values(ip=None, user_agent=None)
    )
    for run in _rows(FlowRun, shop.id, FlowRun.subscriber_id.in_(subs)):
        scrubbed = _scrub(run.context, mentions)
        if scrubbed != run.context:
            run.context = scrubbed
    return len(subs)


def _redact_imports(shop: Shop, mentions: Callable[[str | None], bool]) -> None:
    """Unfinished imports still hold the uploaded file, and refused rows quote numbers."""
    for job in db.session.scalars(ImportJob.for_shop(shop.id)):
        if job.refused_rows:
            scrubbed = _scrub(job.refused_rows, mentions)
            if scrubbed != job.refused_rows:
                job.refused_rows = scrubbed
        if job.csv_text and mentions(job.csv_text):
            # The person must not be imported later either: drop their lines.
            lines = job.csv_text.splitlines(keepends=True)
            job.csv_text = "".join(
                line for n, line in enumerate(lines) if n == 0 or not mentions(line)
            )


def _redact_reports(shop: Shop, person: Person, mentions: Callable[[str | None], bool]) -> None:
    """A data-request report prepared earlier for this person is their data too."""
    for row in db.session.scalars(
        ComplianceRequest.for_shop(shop.id).where(ComplianceRequest.kind == "data_request")
    ):
        if row.customer_id in person.customer_ids or _scrub(row.report, mentions) != row.report:
            row.report = {"redacted_at": utcnow().isoformat()}


def _redact_deliveries(
    shop: Shop, mentions: Callable[[str | None], bool], current: WebhookDelivery | None
) -> int:
    """Stored webhook bodies that name the person are cleared. One not processed yet is not
    processed at all: it would write the person back. The redact delivery itself is cleared by
    the job once this succeeds."""
    cleared = 0
    rows = db.session.scalars(
        select(WebhookDelivery).where(
            or_(WebhookDelivery.shop_id == shop.id, WebhookDelivery.shop_domain == shop.domain),
            WebhookDelivery.payload.is_not(None),
        )
    )
    for row in rows:
        if current is not None and row.id == current.id:
            continue
        if mentions(row.payload):
            row.payload = None
            if row.status in ("received", "failed"):
                row.status = "ignored"
                row.error = "payload redacted (customers/redact) before processing"
            cleared += 1
    return cleared


# --- shop/redact --------------------------------------------------------------------------


def redact_shop(domain: str, requested_at: datetime | None = None) -> bool:
    """shop/redact: delete every row the shop owns; keep the webhook audit rows, emptied.

    Returns False when nothing was deleted (unknown shop, or reinstalled since the request).
    """
    shop = Shop.by_domain(domain)
    if (
        shop is not None
        and shop.uninstalled_at is None
        and shop.installed_at is not None
        and requested_at is not None
        and shop.installed_at > requested_at
    ):
        log.warning("shop/redact older than the shop's current install; nothing deleted")
        return False
    audit = [WebhookDelivery.shop_domain == domain]
    if shop is not None:
        audit.append(WebhookDelivery.shop_id == shop.id)
    # Detach first: the foreign key cascades, and the audit rows must outlive the shop.
    db.session.execute(
        update(WebhookDelivery).where(or_(*audit)).values(shop_id=None, payload=None)
    )
    if shop is None:
        return False
    # Delete explicitly, children first, instead of trusting every table's ON DELETE: a table
    # added later without a cascade would otherwise block (or outlive) the shop's deletion.
    for table in reversed(db.metadata.sorted_tables):
        if table.name in (Shop.__tablename__, WebhookDelivery.__tablename__):
            continue
        if "shop_id" in table.c:
            db.session.execute(table.delete().where(table.c.shop_id == shop.id))
    db.session.execute(delete(Shop).where(Shop.id == shop.id))
    db.session.flush()
    log.info("shop data deleted (shop/redact)")
    return True
