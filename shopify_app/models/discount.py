"""Discounts created in Shopify for a campaign or flow, and the codes they hold."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ForeignKey, Index, Numeric, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from shopify_app.models.base import BigId, JsonType, Money, ShopScoped, UTCDateTime

# shared: one code for every recipient; unique: one code per recipient message, all held by one
# Shopify discount; single: one discount with one code for one flow message.
DISCOUNT_MODES = ("shared", "unique", "single")
# pending -> ready | failed; expired after clean-up
DISCOUNT_STATUSES = ("pending", "ready", "failed", "expired")
# pending (generated here) -> submitted (in a bulk creation) -> ready | failed; expired later
CODE_STATUSES = ("pending", "submitted", "ready", "failed", "expired")


class Discount(ShopScoped):
    __tablename__ = "discount"
    __table_args__ = (
        # One discount per campaign: preparing a campaign twice finds the first one.
        UniqueConstraint("campaign_id"),
        Index("ix_discount_status_ends", "status", "ends_at"),
    )

    campaign_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("campaign.id", ondelete="SET NULL")
    )
    flow_id: Mapped[int | None] = mapped_column(BigId, index=True)
    mode: Mapped[str] = mapped_column(String(10), nullable=False)
    title: Mapped[str] = mapped_column(String(255), nullable=False)
    value_type: Mapped[str] = mapped_column(String(12), nullable=False)  # percentage | amount
    # Percentages as the merchant typed them (15 = 15 %); Shopify receives the fraction 0.15.
    value: Mapped[Decimal] = mapped_column(Numeric(12, 4), nullable=False)
    minimum_subtotal: Mapped[Decimal | None] = mapped_column(Money)
    once_per_customer: Mapped[bool] = mapped_column(default=True, nullable=False)
    combines_with: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict, nullable=False)
    prefix: Mapped[str] = mapped_column(String(20), default="", nullable=False)
    usage_limit: Mapped[int | None] = mapped_column()
    starts_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    shopify_id: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(12), default="pending", nullable=False)
    error: Mapped[str | None] = mapped_column(Text)
    expired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class DiscountCode(ShopScoped):
    __tablename__ = "discount_code"
    __table_args__ = (
        UniqueConstraint("shop_id", "code"),
        # At most one code per message: a retried preparation never issues a second one.
        Index("uq_discount_code_message", "message_id", unique=True),
        Index("ix_discount_code_discount_status", "discount_id", "status"),
    )

    discount_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("discount.id", ondelete="CASCADE"), nullable=False
    )
    code: Mapped[str] = mapped_column(String(64), nullable=False)  # upper case
    subscriber_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("subscriber.id", ondelete="SET NULL"), index=True
    )
    message_id: Mapped[int | None] = mapped_column(BigId)
    campaign_id: Mapped[int | None] = mapped_column(BigId)
    flow_id: Mapped[int | None] = mapped_column(BigId)
    status: Mapped[str] = mapped_column(String(12), default="pending", nullable=False)
    # The Shopify bulk creation this code was submitted in, so an interrupted preparation
    # polls it again instead of adding the code twice.
    bulk_creation_id: Mapped[str | None] = mapped_column(String(255))
    error: Mapped[str | None] = mapped_column(Text)
