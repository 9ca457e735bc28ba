"""Checkouts seen through webhooks, for abandoned-checkout flows and segments."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from shopify_app.models.base import BigId, Money, ShopScoped, UTCDateTime


class Checkout(ShopScoped):
    __tablename__ = "checkout"
    __table_args__ = (UniqueConstraint("shop_id", "token"),)

    token: Mapped[str] = mapped_column(String(255), nullable=False)
    subscriber_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("subscriber.id", ondelete="SET NULL"), index=True
    )
    customer_id: Mapped[int | None] = mapped_column(BigId)
    phone: Mapped[str | None] = mapped_column(String(20))
    email: Mapped[str | None] = mapped_column(String(255))
    recovery_url: Mapped[str | None] = mapped_column(Text)
    total: Mapped[Decimal | None] = mapped_column(Money)
    currency: Mapped[str | None] = mapped_column(String(3))
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    shopify_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
