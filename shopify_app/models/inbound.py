"""Inbound texts that were not a keyword, kept for the merchant to read."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from shopify_app.models.base import BigId, ShopScoped, UTCDateTime


class InboundMessage(ShopScoped):
    __tablename__ = "inbound_message"

    subscriber_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("subscriber.id", ondelete="SET NULL"), index=True
    )
    provider_sid: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    from_phone: Mapped[str | None] = mapped_column(String(20))
    to: Mapped[str] = mapped_column(String(64), nullable=False)
    body: Mapped[str | None] = mapped_column(Text)
    keyword: Mapped[str] = mapped_column(String(20), default="other", nullable=False)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
