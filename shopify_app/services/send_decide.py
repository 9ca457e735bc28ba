"""Step 2 of a batch, the check transaction: lock the subscribers, decide consent, quiet hours
and caps against committed history, render, and write the outcome of the check — the body,
price and hand-over time of the rows that go, the reason for those that do not.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select, update

from shopify_app.extensions import db
from shopify_app.models import Campaign, Message, Shop, Subscriber, utcnow
from shopify_app.services import links, rendering, send_checks
from shopify_app.services.bulk import bulk_update, in_ids, is_postgresql
from shopify_app.services.send_checks import MARKETING_KINDS, ShopRules
from shopify_app.services.send_types import BatchReport, Ready, Settings

log = logging.getLogger(__name__)

_SUBSCRIBER_COLUMNS = (
    Subscriber.id,
    Subscriber.phone,
    Subscriber.status,
    Subscriber.phone_invalid,
    Subscriber.first_name,
    Subscriber.last_name,
    Subscriber.country,
    Subscriber.region,
    Subscriber.timezone,
)


@dataclass
class _Decisions:
    now: datetime
    lease_until: datetime
    rows: list[dict[str, Any]] = field(default_factory=list)  # skipped and deferred rows
    ready: list[Ready] = field(default_factory=list)
    link_rows: list[dict[str, Any]] = field(default_factory=list)

    def write(self, me: str, *, locked: bool = False) -> None:
        """The check transaction's writes: reasons for the rows that stay, the body, price and
        hand-over time of those that go (as constants where they are the same for all).
        `locked`: the rows are still `pending`, held by this transaction's row locks."""
        table = Message.__table__
        ours = {"status": "pending"} if locked else {"claimed_by": me}
        bulk_update(db.session, table, self.rows, where=ours)
        bulk_update(
            db.session,
            table,
            [
                {
                    "id": r.id,
                    "body": r.body,
                    "segments": r.segments,
                    "encoding": r.encoding,
                    "price": r.price,
                }
                for r in self.ready
            ],
            where=ours,
            constants={
                "status": "sending",
                "sent_at": self.now,
                "claimed_by": me,
                "lease_expires_at": self.lease_until,
                "skip_reason": None,
                "deferred_reason": None,
                "error_message": None,
                "updated_at": self.now,
            },
        )
        links.insert_links(self.link_rows)


def _row(
    message_id: int,
    *,
    status: str,
    due_at: datetime,
    now: datetime,
    me: str | None,
    lease: datetime | None,
    skip_reason: str | None = None,
    deferred_reason: str | None = None,
    body: str | None = None,
    segments: int | None = None,
    encoding: str | None = None,
    price: Decimal | None = None,
    sent_at: datetime | None = None,
    error_message: str | None = None,
) -> dict[str, Any]:
    return {
        "id": message_id,
        "status": status,
        "skip_reason": skip_reason,
        "deferred_reason": deferred_reason,
        "due_at": due_at,
        "body": body,
        "segments": segments,
        "encoding": encoding,
        "price": price,
        "sent_at": sent_at,
        "lease_expires_at": lease,
        "claimed_by": me,
        "error_message": error_message,
        "updated_at": now,
    }


def _lock_subscribers(
    shop_id: int, ids: list[int], *, skip_locked: bool = False
) -> tuple[dict[int, Any], set[int]]:
    """The subscribers, locked (PostgreSQL) until the check commits: (found, busy ids).

    Locks are taken in id order, so two workers locking overlapping sets never deadlock.
    With `skip_locked` (the message rows are themselves only locked, still `pending`) a
    subscriber another transaction holds — say an opt-out that is about to skip that very
    row — is not waited for: its rows are left for a later batch ("busy")."""
    query = (
        select(*_SUBSCRIBER_COLUMNS)
        .where(Subscriber.shop_id == shop_id, in_ids(db.session, Subscriber.id, ids))
        .order_by(Subscriber.id)
    )
    if not is_postgresql(db.session):
        return {r.id: r for r in db.session.execute(query)}, set()
    found = {
        r.id: r
        for r in db.session.execute(query.with_for_update(of=Subscriber, skip_locked=skip_locked))
    }
    missing = [i for i in ids if i not in found]
    busy: set[int] = set()
    if missing and skip_locked:
        busy = set(
            db.session.scalars(
                select(Subscriber.id).where(in_ids(db.session, Subscriber.id, missing))
            )
        )
    return found, busy


def _take_write_lock(ids: list[int], me: str, now: datetime) -> None:
    """SQLite: begin the check with a write so it holds the database's write lock while it
    reads history — the reads then see every committed send and no other writer can commit
    before we do. (PostgreSQL locks the subscriber rows instead.)"""
    db.session.execute(
        update(Message)
        .where(Message.id.in_(ids), Message.claimed_by == me)
        .values(updated_at=now)
        .execution_options(synchronize_session=False)
    )


def decide(
    shop: Shop,
    rules: ShopRules,
    claimed: Sequence[Any],
    *,
    me: str,
    settings: Settings,
    report: BatchReport,
    locked: bool = False,
) -> _Decisions:
    """Consent, quiet hours, caps and rendering for one shop's claimed (or, on PostgreSQL,
    locked) rows, in the check transaction. Returns the row updates, the texts to send and
    their link rows."""
    now = utcnow()
    lease_until = now + settings.lease
    ids = [r.id for r in claimed]
    sqlite = not is_postgresql(db.session)
    if sqlite and not locked:
        _take_write_lock(ids, me, now)
    marketing = [r for r in claimed if r.kind in MARKETING_KINDS]
    usage = None
    if marketing and rules.has_usage_caps:
        if not sqlite:  # one shop's usage check at a time, across workers
            db.session.execute(select(Shop.id).where(Shop.id == shop.id).with_for_update())
        usage = send_checks.usage_of(shop.id, now, rules.timezone)
    subs, busy = _lock_subscribers(
        shop.id, sorted({r.subscriber_id for r in claimed}), skip_locked=locked
    )
    marketing_subs = sorted({r.subscriber_id for r in marketing})
    history = send_checks.marketing_history(marketing_subs, now - rules.history_window)
    prior = rendering.prior_marketing_counts(marketing_subs)
    templates = rendering.templates_for(claimed)
    need_codes = [r for r in claimed if "discount_code" in (templates.get(r.id) or "").lower()]
    codes = rendering.discount_codes_for(shop.id, need_codes) if need_codes else {}
    flows = rendering.flow_info(r.flow_run_id for r in claimed)
    ended = ended_campaigns({r.campaign_id for r in claimed if r.campaign_id})
    shop_text = rendering.ShopText.of(shop)
    out = _Decisions(now, lease_until)
    timings: dict[send_checks.Place, send_checks.Timing] = {}
    prices: dict[tuple[int, str | None], Decimal] = {}

    def skip(row: Any, reason: str, detail: str | None = None, segments: int | None = None) -> None:
        out.rows.append(
            _row(
                row.id,
                status="skipped",
                skip_reason=reason,
                due_at=row.due_at,
                now=now,
                me=None,
                lease=None,
                segments=segments,
                error_message=detail,
            )
        )
        report.skipped += 1
        report.count(reason)

    def defer(row: Any, until: datetime, reason: str) -> None:
        out.rows.append(
            _row(
                row.id,
                status="pending",
                deferred_reason=reason,
                due_at=until,
                now=now,
                me=None,
                lease=None,
            )
        )
        report.deferred += 1
        report.count(reason)

    for row in claimed:
        if row.subscriber_id in busy:
            report.count("subscriber_busy")  # left pending, untouched, for the next batch
            continue
        if row.campaign_id in ended:  # the merchant ended it after this row was queued
            skip(row, "cancelled")
            continue
        sub = subs.get(row.subscriber_id)
        refusal = send_checks.consent_refusal(row.kind, sub)
        if refusal:
            skip(row, refusal)
            continue
        is_marketing = row.kind in MARKETING_KINDS
        place = send_checks.place_of(sub, rules)
        validity = None
        if is_marketing:
            timing = timings.get(place)
            if timing is None:  # one computation per place and batch: `now` is shared
                timing = timings[place] = send_checks.marketing_timing(now, place, rules)
            if timing.impossible:
                skip(row, "no_allowed_time")
                continue
            if timing.defer_until is not None:
                defer(row, timing.defer_until, "quiet_hours")
                continue
            validity = timing.validity
            verdict = send_checks.subscriber_verdict(now, history.get(sub.id, ()), place, rules)
            if not verdict.ok:
                skip(row, verdict.reason or "capped")
                continue
        flow = flows.get(row.flow_run_id) if row.flow_run_id else None
        outcome = rendering.render_for_send(
            row,
            sub,
            shop,
            template=templates.get(row.id),
            discount_code=codes.get(row.id),
            prior_marketing=prior.get(sub.id, 0) if is_marketing else 0,
            utm_campaign=str(row.campaign_id) if row.campaign_id else (flow[1] if flow else None),
            flow_id=flow[0] if flow else None,
            shop_text=shop_text,
        )
        if not outcome.ok or outcome.rendered is None:
            skip(row, outcome.skip_reason or "render_failed", outcome.detail, outcome.segments)
            continue
        info = outcome.rendered.info
        price = prices.get((info.segments, place.country))
        if price is None:
            price = prices[(info.segments, place.country)] = send_checks.price_of(
                info.segments, place, rules
            )
        if is_marketing and usage is not None:
            verdict = send_checks.usage_verdict(usage, price, rules)
            if not verdict.ok:
                reason = verdict.reason or "usage_cap"
                if reason.startswith("daily"):
                    defer(row, usage.next_day, reason)
                else:
                    skip(row, reason)
                continue
        if usage is not None:
            usage.sent_today += 1
            usage.sent_month += 1
            usage.spend_today += price
            usage.spend_month += price
        if is_marketing:
            history.setdefault(sub.id, []).append(now)
            prior[sub.id] = prior.get(sub.id, 0) + 1
        out.link_rows.extend(outcome.link_rows)
        out.ready.append(
            Ready(
                row.id,
                sub.id,
                sub.phone,
                outcome.rendered.body,
                info.segments,
                info.encoding,
                price,
                row.attempts,
                row.due_at,
                now,
                validity,
                row.campaign_id,
            )
        )
    return out


def ended_campaigns(campaign_ids: set[int]) -> set[int]:
    """Those of `campaign_ids` the merchant ended (status cancelled): their rows must not go."""
    if not campaign_ids:
        return set()
    return set(
        db.session.scalars(
            select(Campaign.id).where(
                Campaign.id.in_(sorted(campaign_ids)), Campaign.status == "cancelled"
            )
        )
    )


def _ended_now(campaign_ids: set[int]) -> set[int]:
    """`ended_campaigns` between submissions: ends its read at once (nothing else is open
    then), so no transaction stays open while texts are on the wire."""
    ended = ended_campaigns(campaign_ids)
    db.session.commit()
    return ended
