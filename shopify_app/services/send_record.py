"""Writing outcomes: what the provider answered, in set-based UPDATEs; texts counted on their
subscribers; early callbacks applied; permanent errors acted on; unsent rows handed back."""

from __future__ import annotations

import contextvars
import logging
import queue
import threading
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import select, update

from shopify_app.extensions import db
from shopify_app.models import Message, Shop, Subscriber, utcnow
from shopify_app.providers.base import ACCEPTED, PERMANENT, RETRY, UNKNOWN, SendResult
from shopify_app.services import delivery
from shopify_app.services.bulk import bulk_update, in_ids, is_postgresql
from shopify_app.services.send_types import BatchReport, Ready, Settings, backoff_seconds

log = logging.getLogger(__name__)


def _outcome_row(
    item: Ready,
    result: SendResult,
    *,
    now: datetime,
    me: str,
    settings: Settings,
    report: BatchReport,
) -> dict[str, Any]:
    attempts = item.attempts + 1
    row: dict[str, Any] = {
        "id": item.id,
        "status": "sending",
        "provider_sid": None,
        "provider_status": None,
        "error_code": result.error_code,
        "error_message": result.error_message,
        "attempts": attempts,
        "due_at": item.due_at,
        "sent_at": item.sent_at,
        "failed_at": None,
        "lease_expires_at": None,
        "claimed_by": None,
        "deferred_reason": None,
        "updated_at": now,
    }
    if result.outcome == RETRY and attempts < settings.max_attempts:
        delay = max(result.retry_after or 0.0, backoff_seconds(attempts))
        row.update(
            status="pending",
            due_at=now + timedelta(seconds=delay),
            sent_at=None,
            deferred_reason="retry",
        )
        report.retried += 1
    elif result.outcome == UNKNOWN and attempts < settings.max_attempts:
        # Leave it to reconciliation: ask the provider before anything is sent again. A short
        # lease lets the provider's list catch up first.
        grace = min(settings.lease, timedelta(seconds=60))
        row.update(status="sending", lease_expires_at=now + grace, claimed_by=me)
        report.unknown += 1
    else:  # permanent, or out of attempts
        row.update(status="failed", sent_at=None, failed_at=now)
        report.failed += 1
        report.count(f"error_{result.error_code}" if result.error_code else result.outcome)
    return row


def record(
    shop: Shop,
    results: Sequence[tuple[Ready, SendResult]],
    *,
    me: str,
    settings: Settings,
    report: BatchReport,
) -> None:
    """Write outcomes (one UPDATE), count texts on subscribers, apply early callbacks and act
    on permanent errors. Commits."""
    now = utcnow()
    table = Message.__table__
    mine = {"claimed_by": me, "status": "sending"}
    accepted = [(item, result) for item, result in results if result.outcome == ACCEPTED]
    bulk_update(
        db.session,
        table,
        [
            {"id": item.id, "provider_sid": r.sid, "provider_status": r.status}
            for item, r in accepted
        ],
        where=mine,
        increments=("attempts",),
        constants={
            "status": "sent",
            "lease_expires_at": None,
            "claimed_by": None,
            "error_code": None,
            "error_message": None,
            "deferred_reason": None,
            "updated_at": now,
        },
    )
    report.sent += len(accepted)
    others = [
        _outcome_row(item, result, now=now, me=me, settings=settings, report=report)
        for item, result in results
        if result.outcome != ACCEPTED
    ]
    bulk_update(db.session, table, others, where=mine)
    sent = [item.subscriber_id for item, _ in accepted]
    _count_texts(shop.id, sent, now)
    db.session.commit()
    sids = [r.sid for _, r in results if r.outcome == ACCEPTED and r.sid]
    refusals = [
        delivery.Refusal(item.subscriber_id, result.error_code, f"message:{item.id}")
        for item, result in results
        if result.outcome == PERMANENT and result.error_code in delivery.ACTIONABLE_CODES
    ]
    try:
        changed = delivery.apply_early_statuses(sids)
        if refusals:
            delivery.act_on_errors(shop, refusals)
        if changed or refusals:
            db.session.commit()
    except Exception:
        # The outcomes are recorded; a callback left in Redis is applied by its next retry.
        log.exception("applying early callbacks or error actions failed")
        db.session.rollback()


def _count_texts(shop_id: int, subscriber_ids: Sequence[int], now: datetime) -> None:
    counts: dict[int, int] = {}
    for sub_id in subscriber_ids:
        counts[sub_id] = counts.get(sub_id, 0) + 1
    by_count: dict[int, list[int]] = {}
    for sub_id, n in counts.items():
        by_count.setdefault(n, []).append(sub_id)
    postgres = is_postgresql(db.session)
    for n, ids in sorted(by_count.items()):
        target: Any = in_ids(db.session, Subscriber.id, sorted(ids))
        if postgres:
            # Lock in id order, like the check transaction, so the two never deadlock.
            target = Subscriber.id.in_(
                select(Subscriber.id)
                .where(in_ids(db.session, Subscriber.id, sorted(ids)))
                .order_by(Subscriber.id)
                .with_for_update()
                .scalar_subquery()
            )
        db.session.execute(
            update(Subscriber)
            .where(Subscriber.shop_id == shop_id, target)
            .values(messages_received=Subscriber.messages_received + n, last_message_at=now)
            .execution_options(synchronize_session=False)
        )


def skip_ended(items: Sequence[Ready], *, me: str) -> int:
    """Rows of an ended campaign that were never submitted: skipped "cancelled". Commits."""
    if not items:
        return 0
    now = utcnow()
    rows = [
        {
            "id": i.id,
            "status": "skipped",
            "skip_reason": "cancelled",
            "sent_at": None,
            "lease_expires_at": None,
            "claimed_by": None,
            "updated_at": now,
        }
        for i in items
    ]
    changed = bulk_update(
        db.session, Message.__table__, rows, where={"claimed_by": me, "status": "sending"}
    )
    db.session.commit()
    return changed


def release(items: Sequence[Ready], *, me: str, reason: str) -> int:
    """Hand unsent rows back (pending, due now) — they were never submitted. Commits."""
    if not items:
        return 0
    now = utcnow()
    rows = [
        {
            "id": i.id,
            "status": "pending",
            "sent_at": None,
            "lease_expires_at": None,
            "claimed_by": None,
            "deferred_reason": reason,
            "updated_at": now,
        }
        for i in items
    ]
    changed = bulk_update(
        db.session, Message.__table__, rows, where={"claimed_by": me, "status": "sending"}
    )
    db.session.commit()
    return changed


class Recorder:
    """Writes a loop's outcomes as they arrive, off the submit path.

    On PostgreSQL a thread of its own (its own app context, so its own session and connection)
    takes chunks of outcomes from a queue and records them, so the loop keeps submitting — and
    claims, checks and renders its next batch — while the UPDATEs run. Rows are written only
    where `claimed_by` is still this worker and the row still `sending`, exactly as in line.
    SQLite (one writer at a time) records in line. `close()` writes what is left and returns
    what was recorded; a recording error is raised by the next `put` (so the loop stops
    submitting) or by `close`. A row whose outcome was never written stays `sending` with its
    lease and is settled by reconciliation, never sent blindly again."""

    def __init__(self, shop_id: int, *, me: str, settings: Settings) -> None:
        self.shop_id = shop_id
        self.me = me
        self.settings = settings
        self.report = BatchReport()
        self._error: BaseException | None = None
        self._queue: queue.SimpleQueue[list[tuple[Ready, SendResult]] | None] | None = None
        self._thread: threading.Thread | None = None
        if is_postgresql(db.session):
            app = current_app._get_current_object()  # type: ignore[attr-defined]
            self._queue = queue.SimpleQueue()
            self._thread = threading.Thread(
                target=contextvars.copy_context().run,
                args=(self._drain, app),
                name="sms-record",
                daemon=True,
            )
            self._thread.start()

    def put(self, results: list[tuple[Ready, SendResult]]) -> None:
        if self._error is not None:
            raise RecordFailed("recording outcomes failed") from self._error
        if not results:
            return
        if self._queue is None:
            self._record(results)
        else:
            self._queue.put(list(results))

    def close(self) -> BatchReport:
        """Wait until everything put is written; returns the outcome counts."""
        if self._queue is not None and self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._queue = None
        if self._error is not None:
            raise RecordFailed("recording outcomes failed") from self._error
        return self.report

    def _record(self, results: list[tuple[Ready, SendResult]]) -> None:
        shop = db.session.get(Shop, self.shop_id)
        if shop is None:  # deleted mid-send: the rows stay sending and are reconciled
            raise RecordFailed(f"shop {self.shop_id} disappeared while sending")
        record(shop, results, me=self.me, settings=self.settings, report=self.report)

    def _drain(self, app: Any) -> None:
        assert self._queue is not None
        with app.app_context():
            while True:
                results = self._queue.get()
                if results is None:
                    return
                if self._error is not None:
                    continue  # after a failure only drain: the rows are left to reconciliation
                try:
                    self._record(results)
                except BaseException as exc:
                    log.exception("recording %d send outcomes failed", len(results))
                    db.session.rollback()
                    self._error = exc


class RecordFailed(RuntimeError):
    """Outcomes could not be written; the rows concerned stay `sending` under their lease."""
