"""Campaign and its A/B Variants."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, Numeric, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from shopify_app.models.base import BigId, JsonType, ShopScoped, UTCDateTime

CAMPAIGN_STATUSES = ("draft", "scheduled", "sending", "sent", "cancelled")
DISCOUNT_MODES = ("none", "shared", "unique")


class Campaign(ShopScoped):
    __tablename__ = "campaign"
    __table_args__ = (Index("ix_campaign_status_send_at", "status", "send_at"),)

    name: Mapped[str] = mapped_column(String(255), nullable=False)
    status: Mapped[str] = mapped_column(String(20), default="draft", nullable=False)
    body: Mapped[str] = mapped_column(Text, default="", nullable=False)
    segment_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("segment.id", ondelete="SET NULL")
    )
    # The rules as they were when the send started, so later segment edits change nothing.
    audience: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict, nullable=False)
    send_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    local_time: Mapped[bool] = mapped_column(default=False, nullable=False)
    discount_mode: Mapped[str] = mapped_column(String(10), default="none", nullable=False)
    discount_config: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict, nullable=False)
    holdout_percent: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    # A/B: share of the audience in the test, metric, wait before the winner goes out.
    ab_test_percent: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    ab_metric: Mapped[str] = mapped_column(String(32), default="ctr", nullable=False)
    ab_wait_minutes: Mapped[int] = mapped_column(Integer, default=240, nullable=False)
    ab_auto_winner: Mapped[bool] = mapped_column(default=True, nullable=False)
    winner_variant_id: Mapped[int | None] = mapped_column(BigId)
    recipients_count: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    estimated_cost: Mapped[Decimal | None] = mapped_column(Numeric(12, 4))
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status_reason: Mapped[str | None] = mapped_column(Text)
    # The engine's checkpoints (services/campaign_start.py): the first recipient rows are in;
    # every row that will ever exist is in (for an A/B test: after the winner's rollout).
    materialized_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    audience_complete_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A/B: when the winner is picked automatically, when and by whom it was picked.
    ab_decide_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    winner_chosen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    winner_chosen_by: Mapped[str | None] = mapped_column(String(10))  # auto | merchant


class Variant(ShopScoped):
    __tablename__ = "campaign_variant"
    __table_args__ = (UniqueConstraint("campaign_id", "label"),)

    campaign_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("campaign.id", ondelete="CASCADE"), nullable=False, index=True
    )
    label: Mapped[str] = mapped_column(String(4), nullable=False)
    body: Mapped[str] = mapped_column(Text, nullable=False)
