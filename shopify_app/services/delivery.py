"""Acting on what a provider says about a message, wherever it says it.

A permanent error means something about the subscriber, not just this message: 21610 (the
recipient replied STOP to the carrier or Twilio) opts the subscriber out through the consent
ledger, and 21211 / 21614 (not a valid mobile number) mark the number bad so no later send
tries it. The send path calls `act_on_errors` for refused creates; the status-callback path
(services/twilio_events.handle_status) calls `after_status`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import select, update

from shopify_app.extensions import db, get_redis
from shopify_app.models import Message, Shop, Subscriber, utcnow
from shopify_app.providers.base import INVALID_NUMBER_CODES, OPTED_OUT_CODE

log = logging.getLogger(__name__)

ACTIONABLE_CODES = INVALID_NUMBER_CODES | {OPTED_OUT_CODE}
_FINAL_FAILURES = {"failed", "undelivered"}


@dataclass(frozen=True)
class Refusal:
    subscriber_id: int
    code: int
    evidence_id: str  # the message sid, or our message id when the create was refused


def act_on_errors(shop: Shop, refusals: Iterable[Refusal]) -> int:
    """Opt out (21610) or mark invalid (21211, 21614) the subscribers concerned.
    Returns how many subscribers changed. The caller commits."""
    from shopify_app.services import subscribers

    changed = 0
    invalid = sorted({r.subscriber_id for r in refusals if r.code in INVALID_NUMBER_CODES})
    opted_out = {r.subscriber_id: r for r in refusals if r.code == OPTED_OUT_CODE}
    if invalid:
        result = db.session.execute(
            update(Subscriber)
            .where(
                Subscriber.shop_id == shop.id,
                Subscriber.id.in_(invalid),
                Subscriber.phone_invalid.is_(False),
            )
            .values(phone_invalid=True, updated_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        changed += int(result.rowcount or 0)
    for sub_id, refusal in sorted(opted_out.items()):
        sub = Subscriber.get_for_shop(shop.id, sub_id)
        if sub is None:
            continue
        # The carrier already blocks this number; a confirmation text could not be delivered.
        event = subscribers.unsubscribe(
            shop,
            sub,
            source="carrier",
            evidence_id=refusal.evidence_id,
            send_confirmation=False,
            note=f"Twilio error {refusal.code}",
        )
        changed += event is not None
    return changed


def after_status(message: Message, status: str, error_code: int | None) -> None:
    """Called by the status-callback path after it applied `status`: act on a permanent error
    the carrier reported (e.g. 21610 arriving as a failed callback). The caller commits."""
    if error_code not in ACTIONABLE_CODES or status not in _FINAL_FAILURES:
        return
    shop = db.session.get(Shop, message.shop_id)
    if shop is None:
        return
    act_on_errors(
        shop,
        [
            Refusal(
                message.subscriber_id, error_code, message.provider_sid or f"message:{message.id}"
            )
        ],
    )


def apply_early_statuses(sids: Sequence[str]) -> int:
    """Apply callbacks that arrived before their send was recorded, for many sids at once: one
    Redis round trip finds which have any, then each such message is updated. Returns how many
    messages changed. The caller commits."""
    from shopify_app.services import twilio_events

    if not sids:
        return 0
    pipe = get_redis().pipeline(transaction=False)
    for sid in sids:
        pipe.exists(twilio_events._EARLY_KEY.format(sid=sid))
    waiting = [sid for sid, found in zip(sids, pipe.execute(), strict=True) if found]
    if not waiting:
        return 0
    changed = 0
    messages = db.session.scalars(
        select(Message).where(Message.provider_sid.in_(waiting)).with_for_update()
    ).all()
    for message in messages:
        if twilio_events.apply_early_status(message):
            changed += 1
            after_status(message, message.provider_status or "", message.error_code)
    return changed
