"""Short links (one per message and URL) and the clicks on them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from shopify_app.models.base import BigId, ShopScoped, UTCDateTime


class Link(ShopScoped):
    __tablename__ = "link"

    token: Mapped[str] = mapped_column(String(32), unique=True, nullable=False)
    message_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("message.id", ondelete="CASCADE"), index=True
    )
    subscriber_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("subscriber.id", ondelete="CASCADE")
    )
    campaign_id: Mapped[int | None] = mapped_column(BigId, index=True)
    flow_id: Mapped[int | None] = mapped_column(BigId)
    url: Mapped[str] = mapped_column(Text, nullable=False)
    # utm_campaign for the redirect (campaign id or flow kind), fixed when the link is made so
    # the redirect needs no second query.
    utm_campaign: Mapped[str | None] = mapped_column(String(64))


class Click(ShopScoped):
    __tablename__ = "click"
    __table_args__ = (Index("ix_click_subscriber_time", "subscriber_id", "clicked_at"),)

    link_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("link.id", ondelete="CASCADE"), nullable=False, index=True
    )
    message_id: Mapped[int | None] = mapped_column(BigId, index=True)
    subscriber_id: Mapped[int | None] = mapped_column(BigId)
    clicked_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(Text)
    is_bot: Mapped[bool] = mapped_column(default=False, nullable=False)
