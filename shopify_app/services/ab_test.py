"""A/B tests: 2–4 variants, a test share split evenly, then the winner goes to the rest.

The winner is chosen on `ab_metric` once `ab_decide_at` has passed and the test's texts all
have an outcome (automatically, unless the merchant turned that off), or whenever the merchant
picks one. Metrics, from services/stats.variant_stats:

- ``ctr``: unique clickers / delivered texts of the variant;
- ``revenue_per_recipient``: attributed revenue (net of refunds) / the variant's recipients.

A tie (or no data at all) goes to the lowest label. The rest of the audience is then inserted
by services/campaign_start.py with the winner's text.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select

from shopify_app.extensions import db
from shopify_app.jobqueue import enqueue_after_commit
from shopify_app.models import Campaign, Message, Variant, utcnow
from shopify_app.services import campaigns, stats

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VariantScore:
    variant_id: int
    label: str
    value: Decimal
    stats: dict[str, Any]


def is_waiting(campaign: Campaign) -> bool:
    """An A/B test is out and its winner not chosen yet."""
    return (
        campaign.status == "sending"
        and campaign.materialized_at is not None
        and campaign.audience_complete_at is None
        and campaign.winner_variant_id is None
    )


def metric_value(metric: str, row: dict[str, Any]) -> Decimal:
    if metric == "revenue_per_recipient":
        recipients = int(row.get("recipients") or 0)
        if not recipients:
            return Decimal(0)
        return Decimal(str(row.get("revenue") or "0")) / recipients
    ctr = row.get("ctr")
    return Decimal(str(ctr)) if ctr is not None else Decimal(0)


def scores(campaign: Campaign) -> list[VariantScore]:
    """Each variant's metric value, best first (ties: lowest label first)."""
    variants = {v.id: v.label for v in campaigns.variants_of(campaign)}
    rows = stats.variant_stats(campaign.shop_id, campaign.id)
    by_id = {r["variant_id"]: r for r in rows if r["variant_id"] in variants}
    found = [
        VariantScore(
            vid, label, metric_value(campaign.ab_metric, by_id.get(vid, {})), by_id.get(vid, {})
        )
        for vid, label in variants.items()
    ]
    return sorted(found, key=lambda s: (-s.value, s.label))


def test_settled(campaign: Campaign) -> bool:
    """No text of the test is still waiting or being sent."""
    open_rows = db.session.scalar(
        select(func.count())
        .select_from(Message)
        .where(Message.campaign_id == campaign.id, Message.status.in_(("pending", "sending")))
    )
    return not open_rows


def choose_winner(
    campaign: Campaign, variant_id: int, *, by: str, now: datetime | None = None
) -> Campaign:
    """Record the winner and queue the rest of the audience with its text. Commits."""
    if campaign.status != "sending":
        raise campaigns.InvalidTransition("choose a winner for", campaign.status)
    if campaign.winner_variant_id is not None:
        raise campaigns.CampaignError(
            "The winner was already chosen.", "variant_id", code="winner_chosen"
        )
    if campaign.materialized_at is None or campaign.audience_complete_at is not None:
        raise campaigns.CampaignError(
            "This campaign has no A/B test waiting for a winner.", "variant_id", code="no_test"
        )
    variant = Variant.get_for_shop(campaign.shop_id, variant_id)
    if variant is None or variant.campaign_id != campaign.id:
        raise campaigns.CampaignError("That variant is not one of this campaign's.", "variant_id")
    campaign.winner_variant_id = variant.id
    campaign.winner_chosen_at = now or utcnow()
    campaign.winner_chosen_by = by
    enqueue_after_commit(campaigns.START_JOB, campaign.id, queue=campaigns.CAMPAIGN_QUEUE)
    db.session.commit()
    log.info("campaign %s: winner %s chosen (%s)", campaign.id, variant.label, by)
    return campaign


def decide(campaign: Campaign, *, now: datetime | None = None) -> VariantScore | None:
    """Pick the winner automatically when its time came and the test has settled."""
    now = now or utcnow()
    if not is_waiting(campaign) or not campaign.ab_auto_winner:
        return None
    if campaign.ab_decide_at is None or campaign.ab_decide_at > now or not test_settled(campaign):
        return None
    ranked = scores(campaign)
    if not ranked:
        return None
    choose_winner(campaign, ranked[0].variant_id, by="auto", now=now)
    return ranked[0]


def waiting_for_winner(limit: int = 200) -> list[Campaign]:
    """A/B campaigns whose test is out and whose winner is still to be chosen."""
    return list(
        db.session.scalars(
            select(Campaign)
            .where(
                Campaign.status == "sending",
                Campaign.materialized_at.is_not(None),
                Campaign.audience_complete_at.is_(None),
                Campaign.winner_variant_id.is_(None),
            )
            .order_by(Campaign.ab_decide_at)
            .limit(limit)
        )
    )
