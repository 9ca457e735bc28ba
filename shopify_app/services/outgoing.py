"""Queueing one text: the door every non-campaign send goes through.

`queue_message` inserts one Message row idempotently — a retried request, a redelivered webhook
or a job run twice finds the row already there and queues nothing — and, once the transaction
commits, asks a worker to send it. Campaign starts insert their rows in bulk themselves and then
call `services.sending.schedule_sending`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from shopify_app.extensions import db
from shopify_app.jobqueue import enqueue_after_commit
from shopify_app.models import Message, Shop, Subscriber, utcnow
from shopify_app.models.message import MESSAGE_KINDS
from shopify_app.services.bulk import is_postgresql
from shopify_app.services.send_checks import MARKETING_KINDS
from shopify_app.services.sending import SEND_IDS_JOB, SENDING_QUEUE

# Rows due later than this are left to the scheduler's sweep instead of a job now.
IMMEDIATE = timedelta(seconds=5)


def queue_message(
    shop: Shop,
    subscriber: Subscriber,
    *,
    kind: str,
    template: str,
    dedupe_key: str | None = None,
    campaign_id: int | None = None,
    variant_id: int | None = None,
    flow_run_id: int | None = None,
    flow_step: int | None = None,
    due_at: datetime | None = None,
    context: dict[str, Any] | None = None,
) -> Message | None:
    """Insert one pending Message (due now unless `due_at`), idempotently.

    Returns the new row, or None when it already existed — same (campaign, subscriber),
    (flow run, step) or (shop, dedupe_key). The send job is enqueued after commit; the caller
    commits.
    """
    if kind not in MESSAGE_KINDS:
        raise ValueError(f"unknown message kind {kind!r}; one of {MESSAGE_KINDS}")
    if subscriber.shop_id != shop.id:
        raise ValueError("the subscriber belongs to another shop")
    if subscriber.id is None:
        db.session.flush()
    now = utcnow()
    due = due_at or now
    values = {
        "shop_id": shop.id,
        "subscriber_id": subscriber.id,
        "kind": kind,
        "template": template,
        "dedupe_key": dedupe_key,
        "campaign_id": campaign_id,
        "variant_id": variant_id,
        "flow_run_id": flow_run_id,
        "flow_step": flow_step,
        "context": context or None,
        "status": "pending",
        "marketing": kind in MARKETING_KINDS,
        "due_at": due,
        "attempts": 0,
        "created_at": now,
        "updated_at": now,
    }
    insert = pg_insert if is_postgresql(db.session) else sqlite_insert
    new_id = db.session.execute(
        insert(Message).values(**values).on_conflict_do_nothing().returning(Message.id)
    ).scalar()
    if new_id is None:
        return None
    if due <= now + IMMEDIATE:
        enqueue_after_commit(SEND_IDS_JOB, [new_id], queue=SENDING_QUEUE)
    return db.session.get(Message, new_id)
