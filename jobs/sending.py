"""Send jobs: thin doors into services/sending.py and services/reconcile.py.

A job carries a batch, never one message (RQ runs a few hundred jobs per second at best), takes
ids, reloads everything, and is safe to run twice: rows are claimed atomically, so a second run
simply finds nothing due. Durability lives in the Message rows; a job lost with Redis is
replaced by the scheduler's sweep.
"""

from __future__ import annotations

import logging

from shopify_app.logs import log_context
from shopify_app.services import reconcile, sending

log = logging.getLogger(__name__)

# A job gives its worker back after this long, so webhooks and other queues are not starved;
# it queues its own continuation when rows are still due.
TIME_BUDGET_SECONDS = 30.0


def send_due(shop_id: int, slot: int = 0) -> dict[str, int]:
    """Send this shop's due messages, batch after batch, for up to TIME_BUDGET_SECONDS."""
    sending.job_started(shop_id, slot)
    with log_context(shop=str(shop_id)):
        report = sending.run(shop_id, time_budget=TIME_BUDGET_SECONDS)
        if report.claimed and sending.has_due_messages(shop_id):
            # Time is up but rows are still due: carry on in a fresh job (same slot).
            sending.schedule_slot(shop_id, slot)
        log.info("send batch done: %s", _summary(report))
    return _summary(report)


def send_messages(message_ids: list[int]) -> dict[str, int]:
    """Send these messages now if they are still pending and due (queue_message's job)."""
    report = sending.run(ids=[int(i) for i in message_ids])
    return _summary(report)


def sweep() -> int:
    """Periodic: make sure every shop with due messages has send jobs (a job lost with Redis,
    or rows whose retry time came, must not stall a send). Returns shops scheduled."""
    shops = sending.shops_with_due_messages()
    for shop_id in shops:
        sending.schedule_sending(shop_id)
    return len(shops)


def reconcile_stuck() -> dict[str, int]:
    """Periodic: settle rows stuck in `sending` past their lease, asking the provider."""
    report = reconcile.reconcile_stuck()
    if report.examined:
        log.info(
            "reconciled %d stuck messages: %d had left, %d requeued, %d failed, %d postponed",
            report.examined,
            report.found_sent,
            report.requeued,
            report.failed,
            report.unavailable,
        )
    for shop_id in sorted(report.requeued_shops):
        sending.schedule_sending(shop_id)
    return {k: v for k, v in vars(report).items() if isinstance(v, int)}


def _summary(report: sending.BatchReport) -> dict[str, int]:
    return {k: v for k, v in vars(report).items() if isinstance(v, int)}
