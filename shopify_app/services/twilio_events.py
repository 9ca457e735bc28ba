"""What Twilio tells us: texts people send to a shop's number, and how sent messages fared.

Inbound: find the shop(s) the text is for, record it once per MessageSid, answer TwiML.
(Keyword handling — STOP, START, HELP, Y, JOIN — plugs in at `handle_inbound`.)

Status callbacks arrive out of order, more than once, and sometimes before the send path has
recorded the sid. A message's status therefore only moves forward by rank, and a callback for
a sid we do not know yet is parked in Redis for an hour for the send path to apply.
The caller (the Twilio door) commits.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from flask import current_app
from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from twilio.twiml.messaging_response import MessagingResponse

from shopify_app.extensions import db, get_redis
from shopify_app.models import InboundMessage, Message, Shop, Subscriber, utcnow
from shopify_app.services import delivery

log = logging.getLogger(__name__)

# Twilio's statuses by how far along a message is. Equal ranks never replace each other, so
# the first final outcome stands and a late "sent" never overwrites "delivered".
STATUS_RANK: dict[str, int] = {
    "accepted": 1,
    "scheduled": 1,
    "queued": 1,
    "sending": 2,
    "sent": 3,
    "delivered": 4,
    "undelivered": 4,
    "failed": 4,
    "canceled": 4,
}
# Our Message.status for each of Twilio's ("canceled": a scheduled send that never left).
_OUR_STATUS = {
    "accepted": "sent",
    "scheduled": "sent",
    "queued": "sent",
    "sending": "sent",
    "sent": "sent",
    "delivered": "delivered",
    "undelivered": "undelivered",
    "failed": "failed",
    "canceled": "failed",
}
# How far along our own statuses are. "skipped" ranks below "sent": a skipped row that Twilio
# reports on did go out (it was skipped while its send was in flight), and the truth wins.
_OUR_RANK = {
    "pending": 0,
    "sending": 1,
    "skipped": 1,
    "sent": 2,
    "delivered": 3,
    "undelivered": 3,
    "failed": 3,
}
_FAILED = {"undelivered", "failed", "canceled"}

EARLY_STATUS_TTL_SECONDS = 3600
_EARLY_KEY = "tidings:twilio:early-status:{sid}"


def empty_twiml() -> str:
    return str(MessagingResponse())


# --- inbound ------------------------------------------------------------------------------


@dataclass(frozen=True)
class InboundRecord:
    message: InboundMessage
    created: bool  # False for a repeated MessageSid: act on it once only


def _installed() -> list:
    return [Shop.installed_at.is_not(None), Shop.uninstalled_at.is_(None)]


def shops_for_inbound(params: dict[str, str]) -> list[Shop]:
    """The installed shops a text is for.

    A shop that set its own sender (number or Messaging Service) owns texts to it. Texts to the
    app-wide sender (TWILIO_FROM_NUMBER / TWILIO_MESSAGING_SERVICE_SID) belong to every shop that
    has the sender as a subscriber, the one that texted them most recently first.
    """
    to = params.get("To", "")
    service = params.get("MessagingServiceSid", "")
    sender_is = []
    if to:
        sender_is.append(Shop.settings[("sender", "from_number")].as_string() == to)
    if service:
        sender_is.append(Shop.settings[("sender", "messaging_service_sid")].as_string() == service)
    if sender_is:
        own = list(
            db.session.scalars(select(Shop).where(*_installed(), or_(*sender_is)).order_by(Shop.id))
        )
        if own:
            return own

    config = current_app.config
    app_wide = (to and to == config.get("TWILIO_FROM_NUMBER")) or (
        service and service == config.get("TWILIO_MESSAGING_SERVICE_SID")
    )
    sender = params.get("From", "")
    if not app_wide or not sender:
        return []
    rows = db.session.execute(
        select(Shop, Subscriber.last_message_at)
        .join(Subscriber, Subscriber.shop_id == Shop.id)
        .where(*_installed(), Subscriber.phone == sender)
        .order_by(Subscriber.last_message_at.desc().nulls_last(), Shop.id)
    ).all()
    return [shop for shop, _ in rows]


def record_inbound(shop: Shop, params: dict[str, str]) -> InboundRecord | None:
    """Store the text for `shop` once per MessageSid (Twilio retries; we may see it twice)."""
    sid = params.get("MessageSid") or params.get("SmsSid") or ""
    if not sid:
        return None
    existing = _inbound_by_sid(sid)
    if existing is not None:
        return InboundRecord(existing, created=False)
    sender = params.get("From") or None
    subscriber_id = None
    if sender:
        subscriber_id = db.session.scalar(
            select(Subscriber.id).where(Subscriber.shop_id == shop.id, Subscriber.phone == sender)
        )
    row = InboundMessage(
        shop_id=shop.id,
        subscriber_id=subscriber_id,
        provider_sid=sid,
        from_phone=sender if sender and len(sender) <= 20 else None,
        to=(params.get("To") or params.get("MessagingServiceSid") or "")[:64],
        body=params.get("Body"),
        received_at=utcnow(),
    )
    try:
        with db.session.begin_nested():
            db.session.add(row)
    except IntegrityError:  # the same sid recorded by a concurrent request
        existing = _inbound_by_sid(sid)
        return InboundRecord(existing, created=False) if existing is not None else None
    return InboundRecord(row, created=True)


def _inbound_by_sid(sid: str) -> InboundMessage | None:
    # Twilio's MessageSid is globally unique; the shop is not known until it is found.
    return db.session.scalars(
        select(InboundMessage).where(InboundMessage.provider_sid == sid)
    ).first()


def handle_inbound(params: dict[str, str]) -> str:
    """A text to one of our numbers. Returns the TwiML answer."""
    shops = shops_for_inbound(params)
    if not shops:
        log.info("inbound text to a sender no installed shop uses; not recorded")
        return empty_twiml()
    record = record_inbound(shops[0], params)
    if record is not None and not record.created:
        return empty_twiml()  # a repeated MessageSid: its keyword was acted on the first time
    # Imported here: keyword handling queues replies through the send path, which uses this
    # module (early status callbacks).
    from shopify_app.services.keywords_inbound import handle_keywords

    outcome = handle_keywords(shops, params)
    if record is not None and outcome.handled:
        record.message.keyword = outcome.keyword.value
    if outcome.reply:
        reply = MessagingResponse()
        reply.message(outcome.reply)
        return str(reply)
    return empty_twiml()


# --- status callbacks ---------------------------------------------------------------------


@dataclass(frozen=True)
class EarlyStatus:
    status: str
    error_code: int | None


def _error_code(raw: str | None) -> int | None:
    try:
        code = int(raw) if raw else 0
    except ValueError:
        return None
    return code or None


def apply_status(message: Message, status: str, error_code: int | None = None) -> bool:
    """Move the message forward to Twilio's `status`; never backward. Returns True if changed."""
    rank = STATUS_RANK.get(status)
    if rank is None:
        log.info("ignoring unknown Twilio status %r for message %s", status, message.id)
        return False
    if rank <= STATUS_RANK.get(message.provider_status or "", 0):
        # A duplicate or a late callback. A repeated failure may still carry the code.
        if (
            status == message.provider_status
            and error_code is not None
            and message.error_code is None
        ):
            message.error_code = error_code
            return True
        return False
    now = utcnow()
    message.provider_status = status
    if error_code is not None:
        message.error_code = error_code
    ours = _OUR_STATUS[status]
    if _OUR_RANK[ours] > _OUR_RANK.get(message.status, 0):
        message.status = ours
    if message.sent_at is None and status not in {"accepted", "scheduled", "queued", "canceled"}:
        message.sent_at = now
    if status == "delivered" and message.delivered_at is None:
        message.delivered_at = now
    if status in _FAILED and message.failed_at is None:
        message.failed_at = now
    return True


def handle_status(params: dict[str, str]) -> None:
    """A status callback. An unknown sid is parked for `apply_early_status`."""
    sid = params.get("MessageSid") or params.get("SmsSid") or ""
    status = (params.get("MessageStatus") or params.get("SmsStatus") or "").strip().lower()
    if not sid or not status:
        log.info("status callback without MessageSid or MessageStatus ignored")
        return
    error_code = _error_code(params.get("ErrorCode"))
    # The sid is globally unique; the row tells us the shop. FOR UPDATE serialises callbacks
    # for one message that arrive together.
    message = db.session.scalars(
        select(Message).where(Message.provider_sid == sid).with_for_update()
    ).first()
    if message is None:
        _park(sid, status, error_code)
        log.info("status %s for unknown sid %s parked until the send is recorded", status, sid)
        return
    apply_status(message, status, error_code)
    delivery.after_status(message, status, error_code)  # 21610 opts out, 21211/21614 mark bad


def early_status_key(sid: str) -> str:
    """The Redis key holding callbacks that arrived before `sid` was recorded."""
    return _EARLY_KEY.format(sid=sid)


def _park(sid: str, status: str, error_code: int | None) -> None:
    if status not in STATUS_RANK:
        return
    key = early_status_key(sid)
    # One field per status: parallel callbacks never overwrite each other; the furthest wins.
    pipe = get_redis().pipeline()
    pipe.hset(key, status, "" if error_code is None else str(error_code))
    pipe.expire(key, EARLY_STATUS_TTL_SECONDS)
    pipe.execute()


def pending_status(sid: str) -> EarlyStatus | None:
    """The furthest status Twilio reported for `sid` before the send recorded it, if any."""
    stored = get_redis().hgetall(early_status_key(sid))
    if not stored:
        return None
    entries = [(k.decode(), v.decode()) for k, v in stored.items()]
    entries = [(s, v) for s, v in entries if s in STATUS_RANK]
    if not entries:
        return None
    status, code = max(entries, key=lambda e: (STATUS_RANK[e[0]], e[1] != ""))
    return EarlyStatus(status, _error_code(code))


def apply_early_status(message: Message) -> bool:
    """For the send path, right after it records `message.provider_sid`: apply a callback that
    arrived first. Returns True if the message changed. The caller commits."""
    if not message.provider_sid:
        return False
    early = pending_status(message.provider_sid)
    if early is None:
        return False
    changed = apply_status(message, early.status, early.error_code)
    get_redis().delete(early_status_key(message.provider_sid))
    return changed
