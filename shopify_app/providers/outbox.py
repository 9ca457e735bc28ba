"""The development outbox: "sends" by storing an OutboxMessage row the admin shows.

It answers like Twilio (an "SM…" sid, status queued) and can play what would happen next:
`play` moves a message through the same status-callback code as Twilio's callbacks, and
`simulate_inbound` / `simulate_click` let a developer reply to or tap a message without a phone.
"""

from __future__ import annotations

import secrets
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from shopify_app.extensions import db
from shopify_app.models import OutboxMessage, Shop, utcnow
from shopify_app.providers.base import ACCEPTED, ProviderMessage, Sender, SendResult


def new_sid(prefix: str = "SM") -> str:
    return prefix + secrets.token_hex(16)


class OutboxProvider:
    name = "outbox"

    def __init__(self, engine: Engine) -> None:
        # Sends run in worker threads without an app context: use the engine, not db.session.
        self.engine = engine

    def send(
        self,
        to: str,
        body: str,
        *,
        sender: Sender,
        status_callback: str | None,
        validity_period: int | None,
    ) -> SendResult:
        if sender.shop_id is None:
            raise ValueError("the outbox files messages under a shop: sender.shop_id is required")
        sid = new_sid()
        with Session(self.engine) as session:
            session.add(
                OutboxMessage(
                    shop_id=sender.shop_id,
                    sid=sid,
                    to=to,
                    body=body,
                    status="queued",
                    sender=sender.messaging_service_sid or sender.from_number or "outbox",
                    status_callback=status_callback,
                )
            )
            session.commit()
        return SendResult(ACCEPTED, sid=sid, status="queued", http_status=201)

    def find_sent(self, to: str, since: datetime, body: str) -> list[ProviderMessage]:
        with Session(self.engine) as session:
            rows = session.scalars(
                select(OutboxMessage)
                .where(
                    OutboxMessage.to == to,
                    OutboxMessage.created_at >= since,
                    OutboxMessage.body == body,
                )
                .order_by(OutboxMessage.id)
            ).all()
            return [ProviderMessage(r.sid, r.to, r.body, r.status, r.created_at) for r in rows]


def play(sid: str, status: str, error_code: int | None = None) -> bool:
    """Apply a delivery status to an outbox message as Twilio's callback would. Commits.
    Returns False when no outbox message has that sid."""
    from shopify_app.services import twilio_events

    row = db.session.scalars(select(OutboxMessage).where(OutboxMessage.sid == sid)).first()
    if row is None:
        return False
    row.status = status
    params = {"MessageSid": sid, "MessageStatus": status, "To": row.to, "From": row.sender}
    if error_code is not None:
        params["ErrorCode"] = str(error_code)
    twilio_events.handle_status(params)
    db.session.commit()
    return True


def simulate_inbound(shop: Shop, from_phone: str, body: str) -> str:
    """A text from `from_phone` to the shop's sender, through the inbound webhook's code.
    Commits. Returns the TwiML answer."""
    from flask import current_app

    from shopify_app.services import keywords_inbound, twilio_events

    sender = shop.setting("sender") or {}
    config = current_app.config
    params = {
        "MessageSid": new_sid(),
        "AccountSid": config.get("TWILIO_ACCOUNT_SID") or "AC-outbox",
        "From": from_phone,
        "Body": body,
        "NumMedia": "0",
        "To": sender.get("from_number") or config.get("TWILIO_FROM_NUMBER") or "",
    }
    service = sender.get("messaging_service_sid") or config.get("TWILIO_MESSAGING_SERVICE_SID")
    if service:
        params["MessagingServiceSid"] = service
    if twilio_events.shops_for_inbound(params):
        answer = twilio_events.handle_inbound(params)
    else:
        # A development shop often has no sender at all: address this shop directly.
        outcome = keywords_inbound.handle_keywords([shop], params)
        if not outcome.handled:
            twilio_events.record_inbound(shop, params)
        answer = twilio_events.empty_twiml()
    db.session.commit()
    return answer


def simulate_click(token: str, user_agent: str = "Tidings outbox (simulated tap)") -> str | None:
    """A tap on a short link, recorded as a human click. Commits. Returns the redirect target,
    or None for an unknown token."""
    from shopify_app.services import links

    link = links.resolve(token)
    if link is None:
        return None
    links.record_click(link, ip=None, user_agent=user_agent, is_bot=False, at=utcnow())
    db.session.commit()
    return links.redirect_target(link)
