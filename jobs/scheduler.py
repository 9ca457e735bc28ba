"""The periodic tick: each periodic job is enqueued at its interval by exactly one scheduler.

Several scheduler processes may run (one per machine); a Redis lock per job and interval makes
sure each interval enqueues the job once. The jobs themselves are idempotent anyway.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from flask import Flask

from shopify_app.extensions import get_queue, get_redis

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Periodic:
    name: str
    func: str  # dotted path of an RQ job function taking no arguments
    every_seconds: int
    queue: str = "default"


# Job defaults and periodic definitions live here, in one place.
PERIODIC: list[Periodic] = [
    Periodic("refresh_tokens", "jobs.tokens.refresh_expiring_tokens", 300, "low"),
    Periodic("requeue_stale_webhooks", "jobs.webhooks.requeue_stale", 60, "webhooks"),
    Periodic("consent_sync_sweep", "jobs.consent_sync.sweep_unsynced", 600, "low"),
    Periodic("expire_discounts", "jobs.discounts.cleanup_expired", 3600, "low"),
    # Due messages always have a send job (jobs lost with Redis, retries whose time came).
    Periodic("send_sweep", "jobs.sending.sweep", 10, "sending"),
    # Rows stuck in `sending` past their lease are settled with the provider.
    Periodic("reconcile_sends", "jobs.sending.reconcile_stuck", 30, "sending"),
    # Due flow steps (waits that ended, texts to queue, exits to apply).
    Periodic("flow_tick", "jobs.flows.tick", 30, "default"),
    # Win-back runs for subscribers whose last order is old enough (set-based).
    Periodic("flow_winback_scan", "jobs.flows.winback_scan", 3600, "low"),
    # Scheduled campaigns whose time came start sending.
    Periodic("campaigns_due", "jobs.campaigns.start_due", 10, "default"),
    # Finish campaigns with no open row, pick A/B winners, push campaigns that stopped moving.
    Periodic("campaigns_watch", "jobs.campaigns.watch", 15, "default"),
]


def tick(app: Flask, now: float | None = None) -> list[str]:
    """Enqueue every periodic job whose interval has come round. Returns the names enqueued."""
    now = time.time() if now is None else now
    enqueued = []
    with app.app_context():
        conn = get_redis(app)
        for p in PERIODIC:
            slot = int(now // p.every_seconds)
            key = f"tidings:periodic:{p.name}:{slot}"
            if conn.set(key, "1", nx=True, ex=p.every_seconds * 2):
                get_queue(p.queue, app).enqueue(p.func, job_timeout=max(p.every_seconds, 60))
                enqueued.append(p.name)
    return enqueued


def run_forever(app: Flask, interval: float) -> None:
    log.info("scheduler started; tick every %ss", interval)
    while True:
        try:
            tick(app)
        except Exception:
            log.exception("scheduler tick failed; trying again next tick")
        time.sleep(interval)
