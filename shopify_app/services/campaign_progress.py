"""A campaign's progress while it sends: counts by outcome, rate, time left.

One grouped query over the campaign's rows (ix_message_campaign_report covers it). Definitions:
total = recipient rows except held-out ones; sent = handed to the carrier (sent, delivered or
undelivered); delivered = carrier-confirmed; failed = failed or undelivered; skipped = skipped
for any reason but the holdout (opted out, quiet hours impossible, caps, ended...); pending =
waiting or being sent; rate = texts handed over in the last five minutes, per minute.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, func, or_, select

from shopify_app.extensions import db
from shopify_app.models import Campaign, Message, utcnow

RATE_WINDOW = timedelta(minutes=5)


def progress(campaign: Campaign, *, now: datetime | None = None) -> dict[str, Any]:
    now = now or utcnow()
    holdout = and_(Message.status == "skipped", Message.skip_reason == "holdout")
    counted = or_(Message.skip_reason.is_(None), Message.skip_reason != "holdout")

    def n(condition: Any) -> Any:
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

    row = db.session.execute(
        select(
            n(counted),
            n(holdout),
            n(Message.status.in_(("sent", "delivered", "undelivered"))),
            n(Message.status == "delivered"),
            n(Message.status.in_(("failed", "undelivered"))),
            n(and_(Message.status == "skipped", counted)),
            n(Message.status.in_(("pending", "sending"))),
            n(Message.sent_at >= now - RATE_WINDOW),
        ).where(Message.shop_id == campaign.shop_id, Message.campaign_id == campaign.id)
    ).one()
    total, held, sent, delivered, failed, skipped, pending, recent = (int(v or 0) for v in row)
    rate = recent / (RATE_WINDOW.total_seconds() / 60)
    eta = int(pending / rate * 60) if rate and pending else None
    waiting_winner = (
        campaign.status == "sending"
        and campaign.materialized_at is not None
        and campaign.audience_complete_at is None
    )
    return {
        "campaign_id": campaign.id,
        "status": campaign.status,
        "total": total,
        "held_out": held,
        "sent": sent,
        "delivered": delivered,
        "failed": failed,
        "skipped": skipped,
        "pending": pending,
        "rate_per_minute": round(rate, 1),
        "eta_seconds": eta,
        "started_at": campaign.started_at,
        "finished_at": campaign.finished_at,
        "waiting_for_winner": waiting_winner,
        "ab_decide_at": campaign.ab_decide_at,
    }
