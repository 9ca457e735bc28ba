"""Campaign jobs: thin doors into services/campaign_start.py, campaigns.py and ab_test.py.

- `advance(campaign_id)`: start → materialise → (codes) → sending; also the A/B winner's
  rollout. Idempotent, under a per-campaign lock.
- `start_due()` (periodic): scheduled campaigns whose time came move to sending.
- `watch()` (periodic): finish campaigns with no open row, pick A/B winners whose wait is
  over, and notice campaigns that stopped moving (a start that died half way, codes Shopify
  was too busy for, due rows no worker is taking) and push them on.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import select

from shopify_app.extensions import db, get_queue, get_redis
from shopify_app.logs import log_context
from shopify_app.models import Campaign, Message, Shop, utcnow
from shopify_app.services import ab_test, campaign_start, campaigns, sending

log = logging.getLogger(__name__)

STALL_AFTER = timedelta(minutes=2)  # a due row waiting this long means nobody is sending
NUDGE_EVERY_SECONDS = 60  # at most one advance job per campaign per minute from the watch


def advance(campaign_id: int) -> dict[str, int | str]:
    """Do what is next for a sending campaign (rows, codes, hand-over to the send path)."""
    with log_context(shop=str(_shop_of(campaign_id))):
        step = campaign_start.advance(int(campaign_id))
        log.info(
            "campaign %s advanced: %s, %d rows inserted, %d released",
            campaign_id,
            step.outcome,
            step.inserted,
            step.released,
        )
        return {"outcome": step.outcome, "inserted": step.inserted, "released": step.released}


def _shop_of(campaign_id: int) -> int | None:
    return db.session.scalar(select(Campaign.shop_id).where(Campaign.id == campaign_id))


def start_due() -> int:
    """Periodic: start every scheduled campaign whose time came. Returns how many started."""
    now = utcnow()
    started = 0
    for campaign in campaign_start.due_to_start(now):
        shop = db.session.get(Shop, campaign.shop_id)
        if shop is None or not shop.is_installed:
            continue
        try:
            campaigns.start(campaign, now=now)
            started += 1
        except campaigns.InvalidTransition:
            db.session.rollback()  # switched off or sent by hand a moment ago
    return started


def _nudge(campaign_id: int) -> bool:
    """Queue an advance unless one was queued in the last minute."""
    key = f"tidings:campaign:nudged:{campaign_id}"
    if not get_redis().set(key, "1", nx=True, ex=NUDGE_EVERY_SECONDS):
        return False
    get_queue(campaigns.CAMPAIGN_QUEUE).enqueue(
        campaigns.START_JOB, campaign_id, job_timeout=1800, failure_ttl=86400
    )
    return True


def watch() -> dict[str, int]:
    """Periodic: finish, decide A/B winners, and push campaigns that stopped moving."""
    now = utcnow()
    report = {"finished": 0, "winners": 0, "nudged": 0, "stalled": 0}
    for campaign in ab_test.waiting_for_winner():
        try:
            if ab_test.decide(campaign, now=now) is not None:
                report["winners"] += 1
        except Exception:  # one campaign's stats must not stop the others' watch
            db.session.rollback()
            log.exception("campaign %s: choosing the A/B winner failed", campaign.id)
    sending_ids = list(
        db.session.scalars(
            select(Campaign.id).where(Campaign.status == "sending").order_by(Campaign.id)
        )
    )
    for campaign_id in sending_ids:
        campaign = db.session.get(Campaign, campaign_id)
        if campaign is None or campaign.status != "sending":
            continue
        if campaigns.finish_if_done(campaign):
            report["finished"] += 1
            continue
        started = campaign.started_at or campaign.updated_at
        waiting_on_engine = (
            campaign.materialized_at is None
            or (campaign.winner_variant_id is not None and campaign.audience_complete_at is None)
            or (campaign.discount_mode == "unique" and campaign_start.held_rows(campaign.id) > 0)
        )
        if waiting_on_engine and now - started >= timedelta(seconds=30):
            report["nudged"] += int(_nudge(campaign.id))
            continue
        # ix_message_pending_due: the shop's waiting rows in due order, first match only.
        late = db.session.scalar(
            select(Message.id)
            .where(
                Message.shop_id == campaign.shop_id,
                Message.status == "pending",
                Message.due_at < now - STALL_AFTER,
                Message.campaign_id == campaign.id,
            )
            .limit(1)
        )
        if late is not None:
            report["stalled"] += 1
            log.warning(
                "campaign %s stopped moving: rows due over %s ago are still waiting; "
                "scheduling senders",
                campaign.id,
                STALL_AFTER,
            )
            sending.schedule_sending(campaign.shop_id)
    db.session.commit()
    return report
