"""Reconciliation: what became of a message whose sender stopped answering?

A row stays `sending` past its lease when a worker died mid-batch, or when a create call's
outcome was unknown (timeout, connection lost after the request was written). Such a row is
never sent again blindly: this module asks the provider — Twilio's message list filtered by the
number and date, matched on the exact body — whether it left.

* `sent_at` empty: the row never reached the hand-over (it is set, and committed, before the
  provider is called), so it goes straight back to pending.
* found: the provider's sid and status are recorded (and any early callback applied).
* not found: back to pending, counted as an attempt; it is sent again by the normal path.
* the provider cannot be asked right now: left alone, tried again on the next round.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta

from flask import current_app
from sqlalchemy import select, update

from shopify_app.extensions import db
from shopify_app.models import Message, Subscriber, utcnow
from shopify_app.providers import get_provider
from shopify_app.providers.base import ProviderUnavailable, SmsProvider
from shopify_app.services import delivery
from shopify_app.services.sending import worker_id

log = logging.getLogger(__name__)

RECONCILE_BATCH = 200


@dataclass
class ReconcileReport:
    examined: int = 0
    found_sent: int = 0
    requeued: int = 0
    failed: int = 0
    unavailable: int = 0
    requeued_shops: set[int] = field(default_factory=set)


def _take_stuck(limit: int, me: str, hold: timedelta) -> list[Message]:
    """Claim rows whose lease expired (SKIP LOCKED: reconcilers never share a row). Commits."""
    now = utcnow()
    stuck = (
        select(Message.id)
        .where(Message.status == "sending", Message.lease_expires_at < now)
        .order_by(Message.lease_expires_at, Message.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    ids = list(
        db.session.scalars(
            update(Message)
            .where(Message.id.in_(stuck.scalar_subquery()))
            .values(claimed_by=me, lease_expires_at=now + hold, updated_at=now)
            .returning(Message.id)
            .execution_options(synchronize_session=False)
        )
    )
    db.session.commit()
    if not ids:
        return []
    return list(db.session.scalars(select(Message).where(Message.id.in_(ids)).order_by(Message.id)))


def reconcile_stuck(
    limit: int = RECONCILE_BATCH, provider: SmsProvider | None = None
) -> ReconcileReport:
    """Settle up to `limit` rows stuck in `sending` past their lease."""
    provider = provider or get_provider()
    me = f"reconcile:{worker_id()}"
    max_attempts = max(1, int(current_app.config.get("SEND_MAX_ATTEMPTS", 10)))
    timeout = float(current_app.config["TWILIO_TIMEOUT_SECONDS"])
    report = ReconcileReport()
    rows = _take_stuck(limit, me, timedelta(seconds=max(60.0, timeout * 3)))
    phones = (
        dict(
            db.session.execute(
                select(Subscriber.id, Subscriber.phone).where(
                    Subscriber.id.in_({m.subscriber_id for m in rows})
                )
            ).all()
        )
        if rows
        else {}
    )
    for message in rows:
        report.examined += 1
        try:
            _settle(message, phones.get(message.subscriber_id), provider, max_attempts, report)
            db.session.commit()
        except ProviderUnavailable as exc:
            db.session.rollback()
            report.unavailable += 1
            log.warning("reconciliation of message %s postponed: %s", message.id, exc)
    return report


def _settle(
    message: Message,
    phone: str | None,
    provider: SmsProvider,
    max_attempts: int,
    report: ReconcileReport,
) -> None:
    now = utcnow()
    if message.sent_at is not None and message.body and phone:
        # NULLs are dropped here, not by "provider_sid IS NOT NULL" in SQL: that predicate
        # matches the partial unique index's, which the planner may then scan whole.
        taken = {
            sid
            for sid in db.session.scalars(
                select(Message.provider_sid).where(
                    Message.subscriber_id == message.subscriber_id,
                    Message.sent_at >= message.sent_at - timedelta(days=1),
                )
            )
            if sid is not None
        }
        matches = [
            m
            for m in provider.find_sent(phone, message.sent_at, message.body)
            if m.sid not in taken
        ]
        if matches:
            found = matches[0]
            message.status = "sent"
            message.provider_sid = found.sid
            message.provider_status = None  # apply_status below moves it to the listed one
            message.lease_expires_at = None
            message.claimed_by = None
            message.error_message = None
            message.updated_at = now
            db.session.flush()
            _apply_listed_status(message, found.status, found.error_code)
            db.session.execute(
                update(Subscriber)
                .where(Subscriber.id == message.subscriber_id)
                .values(messages_received=Subscriber.messages_received + 1, last_message_at=now)
                .execution_options(synchronize_session=False)
            )
            report.found_sent += 1
            return
    # Never reached the provider: the normal path may send it again.
    attempts = message.attempts + (1 if message.sent_at is not None else 0)
    message.sent_at = None
    message.lease_expires_at = None
    message.claimed_by = None
    message.attempts = attempts
    message.updated_at = now
    if attempts >= max_attempts:
        message.status = "failed"
        message.failed_at = now
        message.error_message = message.error_message or "no outcome after repeated attempts"
        report.failed += 1
    else:
        message.status = "pending"
        message.due_at = now
        message.deferred_reason = "reconciled_unsent"
        report.requeued += 1
        report.requeued_shops.add(message.shop_id)


def _apply_listed_status(message: Message, status: str, error_code: int | None) -> None:
    """The list told us where the message is; move forward like a callback would, then apply
    any callback that arrived while the row had no sid."""
    from shopify_app.services import twilio_events

    twilio_events.apply_status(message, status, error_code)
    delivery.apply_early_statuses([message.provider_sid] if message.provider_sid else [])
