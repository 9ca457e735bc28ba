"""The send pipeline: claim due Message rows, check them, render, submit, record.

Message rows are the unit of exactly-once. No transaction is open while texts are on the wire:

1. claim and check (services/send_decide.py) — on PostgreSQL one transaction locks a shop's
   due `pending` rows (`FOR UPDATE SKIP LOCKED`), locks their subscribers in id order, decides
   consent, quiet hours and caps against committed history (two workers can never both pass
   the same capped-out subscriber), renders, and writes `sending` + lease + body + price +
   `sent_at` for the rows that go (from then on they count against caps) or the reason for
   those that do not. SQLite (one writer at a time) claims first (`pending` -> `sending`),
   then checks in a second transaction that starts with a write, holding the write lock.
2. send (services/send_submit.py) — concurrently (a thread pool) under the sender's token
   bucket in Redis.
3. record (services/send_record.py) — outcomes in set-based UPDATEs as they arrive, on
   PostgreSQL by a recorder thread with its own connection, so submitting never waits for
   them.

On PostgreSQL a send job runs `SEND_LOOPS` (default 2) such batch loops side by side: SKIP
LOCKED gives each its own rows, so one loop's claim, checks and rendering overlap the other's
time on the wire, and the process's send threads are kept busy.

A row only ever leaves `sending` through a recorded outcome, or through reconciliation once
its lease expired (services/reconcile.py) — never by being sent again blindly. A worker stops
submitting well before its lease runs out and hands unsent rows back.
"""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

import redis
from flask import current_app
from sqlalchemy import func, select, update

from shopify_app.extensions import db, get_queue, get_redis
from shopify_app.models import Message, Shop, utcnow
from shopify_app.providers import get_provider
from shopify_app.providers.base import SmsProvider
from shopify_app.services import send_checks
from shopify_app.services.bulk import bulk_update, in_ids, is_postgresql
from shopify_app.services.ratelimit import TokenBucket
from shopify_app.services.send_decide import _ended_now, _row, decide
from shopify_app.services.send_record import Recorder, release, skip_ended
from shopify_app.services.send_submit import submit
from shopify_app.services.send_types import (
    BatchReport,
    Ready,
    Settings,
    backoff_seconds,
    worker_id,
)

log = logging.getLogger(__name__)

SENDING_QUEUE = "sending"
SEND_JOB = "jobs.sending.send_due"
SEND_IDS_JOB = "jobs.sending.send_messages"
LEASE_MARGIN = 5.0  # seconds kept between the last submission and the lease's end
MAX_PARALLEL_JOBS = 16

_CLAIM_COLUMNS = (
    Message.id,
    Message.shop_id,
    Message.subscriber_id,
    Message.kind,
    Message.campaign_id,
    Message.variant_id,
    Message.flow_run_id,
    Message.template,
    Message.context,
    Message.attempts,
    Message.due_at,
)


# --- 1. claim -----------------------------------------------------------------------------


def claim(
    limit: int,
    *,
    shop_id: int | None = None,
    ids: Sequence[int] | None = None,
    me: str | None = None,
    lease: timedelta | None = None,
) -> list[Any]:
    """Mark up to `limit` due pending rows as ours (`sending`, leased). Commits."""
    now = utcnow()
    lease = lease or Settings.from_app().lease
    due = (
        select(Message.id)
        .where(Message.status == "pending", Message.due_at <= now)
        .order_by(Message.due_at)  # not also by id: see lock_due
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    if shop_id is not None:
        due = due.where(Message.shop_id == shop_id)
    if ids is not None:
        due = due.where(Message.id.in_(list(ids)))
    rows = db.session.execute(
        update(Message)
        .where(Message.id.in_(due.scalar_subquery()))
        .values(
            status="sending",
            lease_expires_at=now + lease,
            claimed_by=me or worker_id(),
            updated_at=now,
        )
        .returning(*_CLAIM_COLUMNS)
        .execution_options(synchronize_session=False)
    ).all()
    db.session.commit()
    return sorted(rows, key=lambda r: r.id)


def lock_due(limit: int, *, shop_id: int, ids: Sequence[int] | None = None) -> list[Any]:
    """PostgreSQL: lock up to `limit` of one shop's due pending rows for this transaction
    (`FOR UPDATE SKIP LOCKED`, so workers never wait for or share a row). The check then
    writes `sending` and the body in one UPDATE: a row is updated twice on its way out
    (claimed with its body, then its outcome) instead of three times."""
    now = utcnow()
    query = (
        select(*_CLAIM_COLUMNS)
        .where(Message.shop_id == shop_id, Message.status == "pending", Message.due_at <= now)
        # By due time alone, the order of ix_message_pending_due: the scan stops after `limit`
        # rows. A campaign gives thousands of rows the same due time, and ordering them by id
        # too meant reading and sorting every due row for each batch of 500.
        .order_by(Message.due_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    if ids is not None:
        query = query.where(in_ids(db.session, Message.id, list(ids)))
    return sorted(db.session.execute(query).all(), key=lambda r: r.id)


def batch_size_for(shop: Shop, settings: Settings) -> int:
    """Never claim more than the sender can take within half a lease."""
    rate = send_checks.shop_rules(shop, current_app.config).rate
    fits = int(rate * settings.lease.total_seconds() / 2)
    return max(1, min(settings.batch_size, fits))


# --- a batch, a run -----------------------------------------------------------------------


def process_claimed(
    claimed: Sequence[Any],
    *,
    me: str | None = None,
    settings: Settings | None = None,
    provider: SmsProvider | None = None,
) -> BatchReport:
    """Check, render, send and record rows this worker claimed (any shops)."""
    me = me or worker_id()
    settings = settings or Settings.from_app()
    provider = provider or get_provider()
    report = BatchReport(claimed=len(claimed))
    by_shop: dict[int, list[Any]] = {}
    for row in claimed:
        by_shop.setdefault(row.shop_id, []).append(row)
    for shop_id, rows in sorted(by_shop.items()):
        _process_shop(shop_id, rows, me=me, settings=settings, provider=provider, report=report)
    return report


def _process_shop(
    shop_id: int,
    rows: list[Any],
    *,
    me: str,
    settings: Settings,
    provider: SmsProvider,
    report: BatchReport,
    locked: bool = False,
    recorder: Recorder | None = None,
    stop: threading.Event | None = None,
) -> None:
    """One shop's rows: check, render, submit; outcomes go to `recorder` (a loop's, which
    may still be writing them when this returns) or, without one, are all written before
    this returns."""
    # The send deadline: everything submitted must finish (timeout) well inside the lease.
    deadline = time.monotonic() + settings.lease.total_seconds() - settings.timeout - LEASE_MARGIN
    shop = db.session.get(Shop, shop_id)
    if shop is None or not shop.is_installed:
        now = utcnow()
        bulk_update(
            db.session,
            Message.__table__,
            [
                _row(
                    r.id,
                    status="skipped",
                    skip_reason="shop_uninstalled",
                    due_at=r.due_at,
                    now=now,
                    me=None,
                    lease=None,
                )
                for r in rows
            ],
            where={"status": "pending"} if locked else {"claimed_by": me},
        )
        db.session.commit()
        report.skipped += len(rows)
        return
    rules = send_checks.shop_rules(shop, current_app.config)
    try:
        decisions = decide(
            shop, rules, rows, me=me, settings=settings, report=report, locked=locked
        )
        decisions.write(me, locked=locked)
        db.session.commit()
    except Exception:
        db.session.rollback()
        # Nothing was sent: hand the rows back so another attempt starts clean.
        if not locked:
            _unclaim([r.id for r in rows], me)
        raise
    if not decisions.ready:
        return
    bucket = TokenBucket(get_redis(), rules.sender.key, rules.rate)
    own = recorder is None
    if recorder is None:
        recorder = Recorder(shop_id, me=me, settings=settings)
    try:
        unsent = submit(
            decisions.ready,
            provider=provider,
            rules=rules,
            bucket=bucket,
            settings=settings,
            deadline=deadline,
            on_results=recorder.put,
            halted=_ended_now,
        )
    finally:
        if own:
            report.add(recorder.close())
    stopped = _ended_now({i.campaign_id for i in unsent if i.campaign_id})
    report.skipped += skip_ended([i for i in unsent if i.campaign_id in stopped], me=me)
    handed_back = [i for i in unsent if i.campaign_id not in stopped]
    if handed_back and stop is not None:
        stop.set()  # before they are due again: no other loop of this run takes them back
    report.released += release(handed_back, me=me, reason="released")


def _unclaim(ids: list[int], me: str) -> None:
    now = utcnow()
    db.session.execute(
        update(Message)
        .where(Message.id.in_(ids), Message.claimed_by == me, Message.status == "sending")
        .values(
            status="pending", lease_expires_at=None, claimed_by=None, sent_at=None, updated_at=now
        )
        .execution_options(synchronize_session=False)
    )
    db.session.commit()


def run(
    shop_id: int | None = None, *, ids: Sequence[int] | None = None, time_budget: float = 30.0
) -> BatchReport:
    """Claim and process batches until nothing is due or `time_budget` seconds have passed."""
    settings = Settings.from_app()
    me = worker_id()
    provider = get_provider()
    total = BatchReport()
    started = time.monotonic()
    limit = settings.batch_size
    if shop_id is not None:
        shop = db.session.get(Shop, shop_id)
        if shop is not None:
            limit = batch_size_for(shop, settings)
    postgres = is_postgresql(db.session)
    if postgres and shop_id is not None and ids is None:
        return _run_loops(shop_id, limit, me, settings, provider, started, time_budget)
    if postgres and shop_id is None:
        shops = sorted(
            set(
                db.session.scalars(
                    select(Message.shop_id).where(in_ids(db.session, Message.id, list(ids or ())))
                )
            )
        )
        db.session.rollback()
        for one in shops:
            total.add(_run_locked(one, ids, limit, me, settings, provider, started, time_budget))
        return total
    if postgres:
        return _run_locked(shop_id, ids, limit, me, settings, provider, started, time_budget)
    while True:
        claimed = claim(limit, shop_id=shop_id, ids=ids, me=me, lease=settings.lease)
        if not claimed:
            break
        batch = process_claimed(claimed, me=me, settings=settings, provider=provider)
        total.add(batch)
        # Rows handed back mean the lease ran short or Redis is unavailable: stop for now.
        if batch.released or ids is not None or time.monotonic() - started >= time_budget:
            break
    return total


def _run_loops(
    shop_id: int,
    limit: int,
    me: str,
    settings: Settings,
    provider: SmsProvider,
    started: float,
    time_budget: float,
) -> BatchReport:
    """PostgreSQL: up to `settings.loops` batch loops for one shop — this thread, and helper
    threads each with its own app context (so its own session and connection). SKIP LOCKED
    hands each loop different rows and every write is keyed by row id and `claimed_by`, so
    the loops cannot take or record each other's rows; they share the process's send pool.
    While one loop claims, checks, renders and records, the other's texts are on the wire.

    Helpers start only once the first batch came back full (more is due): a small send stays
    one loop. A loop that hands rows back (the lease ran short, Redis is away) or fails stops
    the others after their current batch; the first error is raised once all have finished,
    so no thread outlives the job with rows in hand."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    stop = threading.Event()
    reports: dict[int, BatchReport] = {}
    errors: list[BaseException] = []
    threads: list[threading.Thread] = []

    def loop(index: int, on_full: Callable[[], None] | None = None) -> None:
        try:
            reports[index] = _run_locked(
                shop_id,
                None,
                limit,
                me,
                settings,
                provider,
                started,
                time_budget,
                stop=stop,
                on_full=on_full,
            )
        except BaseException as exc:
            errors.append(exc)
            stop.set()
            if index == 0:
                raise
            log.exception("send loop %d failed", index)

    def helper(index: int) -> None:
        with app.app_context():
            loop(index)

    def start_helpers() -> None:
        for i in range(1, settings.loops):
            thread = threading.Thread(
                target=contextvars.copy_context().run,
                args=(helper, i),
                name=f"send-loop-{i}",
                daemon=True,
            )
            thread.start()
            threads.append(thread)

    try:
        loop(0, start_helpers if settings.loops > 1 else None)
    finally:
        try:
            for thread in threads:
                thread.join()
        except BaseException:  # interrupted while waiting (say, the job timed out)
            stop.set()
            raise
    if errors:
        raise errors[0]
    total = BatchReport()
    for report in reports.values():
        total.add(report)
    return total


def _run_locked(
    shop_id: int,
    ids: Sequence[int] | None,
    limit: int,
    me: str,
    settings: Settings,
    provider: SmsProvider,
    started: float,
    time_budget: float,
    *,
    stop: threading.Event | None = None,
    on_full: Callable[[], None] | None = None,
) -> BatchReport:
    """PostgreSQL batches: lock due rows, check and claim them in one transaction, send.
    `stop` ends the loop between batches (and is set when this loop hands rows back);
    `on_full` is called once, when a batch comes back full."""
    total = BatchReport()
    recorder = Recorder(shop_id, me=me, settings=settings)
    try:
        while not (stop is not None and stop.is_set()):
            rows = lock_due(limit, shop_id=shop_id, ids=ids)
            if not rows:
                db.session.rollback()
                break
            if on_full is not None and len(rows) >= limit:
                on_full()
                on_full = None
            batch = BatchReport(claimed=len(rows))
            _process_shop(
                shop_id,
                rows,
                me=me,
                settings=settings,
                provider=provider,
                report=batch,
                locked=True,
                recorder=recorder,
                stop=stop,
            )
            total.add(batch)
            stalled = batch.reasons.get("subscriber_busy", 0) >= len(rows)
            if (
                stalled
                or batch.released
                or ids is not None
                or time.monotonic() - started >= time_budget
            ):
                break
    finally:
        # Every outcome is written before the run returns (or its error is raised).
        total.add(recorder.close())
    return total


# --- scheduling ---------------------------------------------------------------------------

_QUEUED_KEY = "tidings:send:queued:{shop}:{slot}"
QUEUED_TTL = 300


def queued_key(shop_id: int | None, slot: int) -> str:
    return _QUEUED_KEY.format(shop="all" if shop_id is None else shop_id, slot=slot)


def parallel_jobs() -> int:
    """As many send jobs per shop as there are workers on the sending queue (at least one)."""
    from rq import Worker

    try:
        count = Worker.count(connection=get_redis(), queue=get_queue(SENDING_QUEUE))
    except redis.RedisError:
        count = 1
    return max(1, min(MAX_PARALLEL_JOBS, int(count)))


def schedule_slot(shop_id: int, slot: int) -> bool:
    """Enqueue the send job for one slot unless that slot's job is still waiting."""
    if not get_redis().set(queued_key(shop_id, slot), "1", nx=True, ex=QUEUED_TTL):
        return False
    get_queue(SENDING_QUEUE).enqueue(SEND_JOB, shop_id, slot, job_timeout=600, failure_ttl=86400)
    return True


def schedule_sending(shop_id: int, *, jobs: int | None = None) -> int:
    """Make sure workers are sending this shop's due messages: one send job per worker on the
    sending queue, skipping slots whose job is still waiting. Call it after committing the
    rows. Returns how many jobs were enqueued."""
    return sum(schedule_slot(shop_id, slot) for slot in range(jobs or parallel_jobs()))


def job_started(shop_id: int, slot: int) -> None:
    """A send job for this slot is running: a later schedule may queue the next one."""
    get_redis().delete(queued_key(shop_id, slot))


def has_due_messages(shop_id: int) -> bool:
    now = utcnow()
    return (
        db.session.scalar(
            select(Message.id)
            .where(Message.shop_id == shop_id, Message.status == "pending", Message.due_at <= now)
            .limit(1)
        )
        is not None
    )


def shops_with_due_messages(limit: int = 1000) -> list[int]:
    now = utcnow()
    return list(
        db.session.scalars(
            select(Message.shop_id)
            .where(Message.status == "pending", Message.due_at <= now)
            .group_by(Message.shop_id)
            .order_by(func.min(Message.due_at))
            .limit(limit)
        )
    )


__all__ = [
    "SEND_IDS_JOB",
    "SEND_JOB",
    "SENDING_QUEUE",
    "BatchReport",
    "Ready",
    "Settings",
    "TokenBucket",
    "backoff_seconds",
    "batch_size_for",
    "claim",
    "has_due_messages",
    "lock_due",
    "process_claimed",
    "run",
    "schedule_sending",
    "schedule_slot",
    "shops_with_due_messages",
    "worker_id",
]
