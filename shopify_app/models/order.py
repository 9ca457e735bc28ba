"""Orders from Shopify, their refunds, and the message each order is attributed to."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Computed, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from shopify_app.models.base import BigId, JsonType, Money, ShopScoped, UTCDateTime

ATTRIBUTION_REASONS = ("discount", "click", "view")
ZERO = Decimal("0.00")


# What an order is worth to the merchant now: nothing when a test or cancelled, never less
# than nothing. One formula, computed by the database into `net_total`, so every writer (the
# webhook path, demo and benchmark seeds) gets it right and SQL aggregates can sum it.
NET_TOTAL_SQL = (
    "CASE WHEN test OR cancelled_at IS NOT NULL THEN 0 "
    "WHEN total > refunded THEN total - refunded ELSE 0 END"
)


def net_total_of(total: Decimal, refunded: Decimal, *, test: bool, cancelled: bool) -> Decimal:
    """NET_TOTAL_SQL in Python (for an order not yet flushed)."""
    if test or cancelled:
        return ZERO
    return max(total - refunded, ZERO)


class Order(ShopScoped):
    __tablename__ = "shop_order"
    __table_args__ = (
        UniqueConstraint("shop_id", "shopify_order_id"),
        Index("ix_order_campaign", "campaign_id"),
        Index("ix_order_flow", "flow_id"),
        Index("ix_order_subscriber", "subscriber_id", "ordered_at"),
        Index("ix_order_shop_created", "shop_id", "ordered_at"),
    )

    shopify_order_id: Mapped[int] = mapped_column(BigId, nullable=False)
    name: Mapped[str | None] = mapped_column(String(64))
    checkout_token: Mapped[str | None] = mapped_column(String(255), index=True)
    customer_id: Mapped[int | None] = mapped_column(BigId)
    subscriber_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("subscriber.id", ondelete="SET NULL")
    )
    phone: Mapped[str | None] = mapped_column(String(20))  # E.164, when the order carried one
    # Every amount below is in the shop's currency (`currency`), never the presentment currency.
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    total: Mapped[Decimal] = mapped_column(Money, nullable=False)  # after edits, before refunds
    current_total: Mapped[Decimal | None] = mapped_column(Money)  # Shopify's, for reconciling
    refunded: Mapped[Decimal] = mapped_column(
        Money, default=ZERO, server_default="0", nullable=False
    )
    net_total: Mapped[Decimal] = mapped_column(Money, Computed(NET_TOTAL_SQL, persisted=True))
    presentment_currency: Mapped[str | None] = mapped_column(String(3))
    presentment_total: Mapped[Decimal | None] = mapped_column(Money)
    financial_status: Mapped[str | None] = mapped_column(String(30))
    test: Mapped[bool] = mapped_column(default=False, nullable=False)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ordered_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    shopify_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    landing_site: Mapped[str | None] = mapped_column(Text)
    discount_codes: Mapped[list[Any]] = mapped_column(JsonType, default=list, nullable=False)
    message_id: Mapped[int | None] = mapped_column(BigId, index=True)
    campaign_id: Mapped[int | None] = mapped_column(BigId)
    flow_id: Mapped[int | None] = mapped_column(BigId)
    attribution_reason: Mapped[str | None] = mapped_column(String(10))
    attributed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When the rule set last looked at this order, and the windows it used (days, hours; hours
    # is null when view-through was off) — so a recompute can tell what changed.
    attribution_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attribution_click_days: Mapped[int | None] = mapped_column()
    attribution_view_hours: Mapped[int | None] = mapped_column()

    @property
    def net_revenue(self) -> Decimal:
        """What the order is worth to the merchant now: zero when cancelled or a test."""
        return net_total_of(
            self.total, self.refunded, test=self.test, cancelled=self.cancelled_at is not None
        )


class OrderRefund(ShopScoped):
    """One Shopify refund, keyed by its id so redelivery never subtracts it twice.

    Keyed by the Shopify order id, not ours: refunds/create can arrive before orders/create.
    """

    __tablename__ = "order_refund"
    __table_args__ = (
        UniqueConstraint("shop_id", "shopify_refund_id"),
        Index("ix_order_refund_order", "shop_id", "shopify_order_id"),
    )

    shopify_refund_id: Mapped[int] = mapped_column(BigId, nullable=False)
    shopify_order_id: Mapped[int] = mapped_column(BigId, nullable=False)
    amount: Mapped[Decimal] = mapped_column(Money, nullable=False)  # shop currency
    refunded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
