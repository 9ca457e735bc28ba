"""Webhook jobs: drain recorded deliveries exactly once each, retry failures, sweep lost work.

The WebhookDelivery row is the durable queue; RQ only carries work. The web process records a
delivery and asks for a drain (webhooks.handlers.request_drain). A drain claims "received" rows
in batches — `FOR UPDATE SKIP LOCKED` on PostgreSQL, so concurrent drains share a backlog
without waiting on each other — runs each handler in its own savepoint (one failure does not
poison the batch), and commits the handlers' effects together with the rows' "processed" mark:
a second run finds the mark and does nothing. A failing delivery is marked "failed" with its
payload kept and retried by its own job (`process_delivery`) at 10 s, 60 s and 300 s.

A malformed payload (MalformedPayload from the handler, or a DataError: PostgreSQL refusing one
of its values) never becomes valid, so it is not retried: the delivery is marked "failed" with
no attempts left and an error starting "malformed payload: ", its payload kept for a replay once
the code copes with it.
"""

from __future__ import annotations

import json
import logging
import time
import traceback
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path

from rq import Retry
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from sqlalchemy import or_, select, update
from sqlalchemy.exc import DataError

from shopify_app.extensions import db, get_queue, get_redis
from shopify_app.logs import log_context
from shopify_app.models import Shop, WebhookDelivery, utcnow
from shopify_app.services.shopify_payloads import MalformedPayload
from webhooks.handlers import (
    DRAIN_FLAG,
    DRAIN_JOB,
    DRAIN_RETRY,
    MAX_ATTEMPTS,
    PROCESS_JOB,
    QUEUE,
    RETRY_INTERVALS,
    delivery_job_id,
    handler_for,
    request_drain,
)

log = logging.getLogger(__name__)

STALE_AFTER = timedelta(minutes=2)
BATCH_SIZE = 100
# A drain hands over after this long (to the helper it queued) so other jobs get a worker.
DRAIN_SECONDS = 30.0
_SWEEP_LIMIT = 1000
# Errors a retry cannot cure: the payload itself is wrong.
_PERMANENT = (MalformedPayload, DataError)
MALFORMED_PREFIX = "malformed payload: "
_LIVE_JOB_STATUSES = {
    JobStatus.CREATED,
    JobStatus.QUEUED,
    JobStatus.STARTED,
    JobStatus.SCHEDULED,
    JobStatus.DEFERRED,
}


def describe_error(exc: BaseException) -> str:
    """What failed and where in our code, without the message: messages (SQL parameters,
    payload values) can carry phone numbers and emails."""
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if "site-packages" not in f.filename] or frames
    if not ours:
        return type(exc).__name__
    last = ours[-1]
    return (
        f"{type(exc).__name__} at {'/'.join(Path(last.filename).parts[-2:])}:"
        f"{last.lineno} in {last.name}"
    )


def describe_malformed(topic: str, exc: MalformedPayload | DataError) -> str:
    """The error recorded for a payload that can never be processed; no payload values (a
    DataError's message quotes them, so only its kind and place are kept)."""
    if isinstance(exc, MalformedPayload):
        return f"{MALFORMED_PREFIX}{topic}: {exc.reason}"
    # The driver's class names the refusal (NumericValueOutOfRange) without quoting the value.
    refused = f" ({type(exc.orig).__name__})" if exc.orig is not None else ""
    return f"{MALFORMED_PREFIX}{topic}: {describe_error(exc)}{refused}"


def drain(max_seconds: float = DRAIN_SECONDS) -> int:
    """Process every "received" delivery, a batch per transaction. Returns how many."""
    # First: a delivery committed from now on queues another drain instead of relying on us.
    get_redis().delete(DRAIN_FLAG)
    deadline = time.monotonic() + max_seconds
    done = 0
    while True:
        batch = _claim(BATCH_SIZE)
        if not batch:
            db.session.rollback()
            break
        if len(batch) == BATCH_SIZE:
            _ask_for_help()
        failed = [(d.id, d.attempts) for d in batch if not _run_in_savepoint(d)]
        db.session.commit()
        for delivery_id, attempts in failed:
            _schedule_retry(delivery_id, attempts)
        done += len(batch)
        # A full batch asked for a helper drain above: it carries on when this one stops.
        if len(batch) < BATCH_SIZE or time.monotonic() > deadline:
            break
    return done


def _ask_for_help() -> None:
    """A full batch means a backlog: queue one more drain (at most one waits at a time), so
    every free worker joins in rather than one draining alone."""
    try:
        request_drain()
    except Exception:
        log.warning("could not queue a helper drain; this one carries on alone")


def _claim(limit: int) -> list[WebhookDelivery]:
    """Lock up to `limit` received deliveries for this transaction, oldest first."""
    query = (
        select(WebhookDelivery)
        .where(WebhookDelivery.status == "received")
        .order_by(WebhookDelivery.id)
        .limit(limit)
    )
    if db.session.get_bind().dialect.name == "postgresql":
        return list(db.session.scalars(query.with_for_update(skip_locked=True)))
    # SQLite has no row locks: a no-op write first takes the database's write lock, so what
    # we read next cannot be processed by another drain before we commit.
    db.session.execute(
        update(WebhookDelivery).where(WebhookDelivery.id == -1).values(status="received")
    )
    return list(db.session.scalars(query))


def _run_in_savepoint(delivery: WebhookDelivery) -> bool:
    """Run one claimed delivery's handler; False if it failed and is to be retried (marked,
    payload kept). A malformed payload fails for good, so True."""
    with log_context(shop=delivery.shop_domain):
        try:
            with db.session.begin_nested():
                _handle(delivery)
            return True
        except _PERMANENT as exc:
            _mark_failed(delivery, describe_malformed(delivery.topic, exc), permanent=True)
            return True
        except Exception as exc:
            _mark_failed(delivery, describe_error(exc))
            return False


def _handle(delivery: WebhookDelivery) -> str:
    """Run the handler and mark the row, inside the caller's transaction."""
    handler = handler_for(delivery.topic)
    if handler is None or delivery.payload is None:
        reason = "no handler for topic" if handler is None else "no payload left to process"
        log.info("webhook %s (%s) ignored: %s", delivery.webhook_id, delivery.topic, reason)
        _mark(delivery, "ignored", error=reason)
        return "ignored"
    try:
        payload = json.loads(delivery.payload)
    except ValueError:
        raise MalformedPayload("the body is not JSON") from None
    if not isinstance(payload, dict):
        raise MalformedPayload("the body is not a JSON object")
    # The identity map makes repeated lookups of one shop in a batch free.
    shop = (
        db.session.get(Shop, delivery.shop_id)
        if delivery.shop_id is not None
        else Shop.by_domain(delivery.shop_domain)
    )
    handler(shop, payload, delivery)
    _mark(delivery, "processed")
    return "processed"


def _mark(delivery: WebhookDelivery, status: str, error: str | None = None) -> None:
    delivery.status = status
    delivery.error = error
    delivery.attempts += 1
    delivery.processed_at = utcnow()
    delivery.payload = None  # it can hold personal data; the row stays as the audit record
    db.session.flush()


def _mark_failed(delivery: WebhookDelivery, error: str, *, permanent: bool = False) -> None:
    """Record a failure, payload kept. `permanent` uses up the attempts, so that neither
    `_schedule_retry` nor the sweep tries it again."""
    delivery.status = "failed"
    delivery.attempts = (
        max(delivery.attempts + 1, MAX_ATTEMPTS) if permanent else delivery.attempts + 1
    )
    delivery.error = error
    db.session.flush()
    if permanent:
        log.warning(
            "webhook %s (%s) failed for good, not retried: %s",
            delivery.webhook_id,
            delivery.topic,
            error,
        )
        return
    log.warning(
        "webhook %s (%s) failed, attempt %s: %s",
        delivery.webhook_id,
        delivery.topic,
        delivery.attempts,
        error,
    )


def _schedule_retry(delivery_id: int, attempts_done: int, *, wait: bool = True) -> None:
    """Queue the delivery's own job for its next attempt (after the interval its attempts so
    far call for, or at once when that time has passed); RQ spaces the ones after it."""
    if not 1 <= attempts_done < MAX_ATTEMPTS:
        return
    remaining = list(RETRY_INTERVALS[attempts_done:])
    options = {
        "job_id": delivery_job_id(delivery_id),
        "failure_ttl": 7 * 24 * 3600,
        "retry": Retry(max=len(remaining), interval=remaining) if remaining else None,
    }
    queue = get_queue(QUEUE)
    try:
        if wait:
            queue.enqueue_in(
                timedelta(seconds=RETRY_INTERVALS[attempts_done - 1]),
                PROCESS_JOB,
                delivery_id,
                **options,
            )
        else:
            queue.enqueue(PROCESS_JOB, delivery_id, **options)
    except Exception:
        # The row says "failed" with attempts left: the sweep queues the retry later.
        log.exception("could not schedule the retry of webhook delivery %s", delivery_id)


def process_delivery(delivery_id: int) -> str:
    """Run one delivery now (a retry, or a lone delivery). Returns its final status."""
    # FOR UPDATE (PostgreSQL): a drain and a retry for one delivery run one after the other,
    # and the second sees the first one's "processed".
    delivery = db.session.scalars(
        select(WebhookDelivery).where(WebhookDelivery.id == delivery_id).with_for_update()
    ).first()
    if delivery is None:
        log.warning("webhook delivery %s not found (shop data deleted?)", delivery_id)
        return "missing"
    if delivery.status in ("processed", "ignored"):
        db.session.rollback()
        return delivery.status
    topic = delivery.topic
    with log_context(shop=delivery.shop_domain):
        try:
            status = _handle(delivery)
            db.session.commit()
        except _PERMANENT as exc:
            db.session.rollback()
            _record_failure(delivery_id, describe_malformed(topic, exc), permanent=True)
            return "failed"  # returning, not raising: RQ must not retry it either
        except Exception as exc:
            db.session.rollback()
            _record_failure(delivery_id, describe_error(exc))
            raise  # RQ retries per the job's Retry policy
    return status


def _record_failure(delivery_id: int, error: str, *, permanent: bool = False) -> None:
    delivery = db.session.get(WebhookDelivery, delivery_id)
    if delivery is None:
        return
    _mark_failed(delivery, error, permanent=permanent)
    db.session.commit()


def replay_failed(
    *,
    ids: Sequence[int] = (),
    malformed_only: bool = False,
    shop_domain: str | None = None,
    topic: str | None = None,
) -> int:
    """Put failed deliveries that still hold their payload back to "received" with their
    attempts reset, and ask for a drain: after a fix, for what failed for good (or ran out of
    retries). Returns how many. Caller needs no transaction; this commits."""
    conditions = [WebhookDelivery.status == "failed", WebhookDelivery.payload.is_not(None)]
    if ids:
        conditions.append(WebhookDelivery.id.in_(list(ids)))
    if malformed_only:
        conditions.append(WebhookDelivery.error.startswith(MALFORMED_PREFIX, autoescape=True))
    if shop_domain:
        conditions.append(WebhookDelivery.shop_domain == shop_domain)
    if topic:
        conditions.append(WebhookDelivery.topic == topic)
    replayed = db.session.execute(
        update(WebhookDelivery)
        .where(*conditions)
        .values(status="received", attempts=0, error=None, updated_at=utcnow())
    ).rowcount
    db.session.commit()
    if replayed:
        log.warning("%s failed webhook deliveries replayed by hand", replayed)
        request_drain()
    return int(replayed or 0)


def requeue_stale(now: datetime | None = None) -> int:
    """Periodic: find work whose job was lost (Redis flushed or restarted, a worker killed,
    an enqueue that failed after commit) and queue it again. Deliveries still "received"
    after STALE_AFTER get a drain unless one is already waiting; failed deliveries with
    attempts left get their retry job back unless it is still alive. Returns how many jobs
    it queued."""
    now = now or utcnow()
    cutoff = now - STALE_AFTER
    stale = db.session.scalars(
        select(WebhookDelivery.id)
        .where(WebhookDelivery.status == "received", WebhookDelivery.created_at < cutoff)
        .order_by(WebhookDelivery.id)
        .limit(_SWEEP_LIMIT)
    ).all()
    # A failed delivery's next try was due RETRY_INTERVALS[attempts - 1] after it failed: one
    # clause per attempt count, each true for rows with another count, ANDed together.
    retry_due = [
        or_(
            WebhookDelivery.attempts != n,
            WebhookDelivery.updated_at < now - timedelta(seconds=wait) - STALE_AFTER,
        )
        for n, wait in enumerate(RETRY_INTERVALS, start=1)
    ]
    failed = db.session.execute(
        select(WebhookDelivery.id, WebhookDelivery.attempts)
        .where(
            WebhookDelivery.status == "failed", WebhookDelivery.attempts < MAX_ATTEMPTS, *retry_due
        )
        .order_by(WebhookDelivery.id)
        .limit(_SWEEP_LIMIT)
    ).all()
    db.session.rollback()
    conn = get_redis()
    queued = 0
    if stale and not conn.exists(DRAIN_FLAG):
        get_queue(QUEUE).enqueue(DRAIN_JOB, retry=DRAIN_RETRY)
        queued += 1
        log.warning("%s webhook deliveries waited past %s: drain queued", len(stale), STALE_AFTER)
    retried = 0
    for delivery_id, attempts in failed:
        try:
            if Job.fetch(delivery_job_id(delivery_id), connection=conn).get_status() in (
                _LIVE_JOB_STATUSES
            ):
                continue  # its retry is still pending
        except NoSuchJobError:
            pass
        _schedule_retry(delivery_id, attempts, wait=False)
        retried += 1
    if retried:
        log.warning("re-queued the retry of %s failed webhook deliveries", retried)
    return queued + retried
