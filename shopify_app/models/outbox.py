"""What the development outbox provider 'sent' instead of Twilio."""

from __future__ import annotations

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from shopify_app.models.base import ShopScoped


class OutboxMessage(ShopScoped):
    __tablename__ = "outbox_message"

    sid: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    to: Mapped[str] = mapped_column(String(20), nullable=False)
    sender: Mapped[str] = mapped_column(String(64), nullable=False)
    body: Mapped[str] = mapped_column(Text, nullable=False)
    status: Mapped[str] = mapped_column(String(20), default="queued", nullable=False)
    status_callback: Mapped[str | None] = mapped_column(Text)
