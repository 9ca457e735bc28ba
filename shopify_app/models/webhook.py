"""WebhookDelivery: one row per Shopify delivery, for dedupe and audit."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from shopify_app.models.base import BigId, Model, UTCDateTime


class WebhookDelivery(Model):
    __tablename__ = "webhook_delivery"
    # The drain claims waiting rows oldest first, and the sweep looks for failed ones: a small
    # partial index keeps both off the ever-growing audit trail of processed rows.
    __table_args__ = (
        Index(
            "ix_webhook_delivery_waiting",
            "status",
            "id",
            postgresql_where=text("status IN ('received', 'failed')"),
            sqlite_where=text("status IN ('received', 'failed')"),
        ),
    )

    # Nullable: a delivery for a shop we no longer know is still recorded (and answered).
    shop_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("shop.id", ondelete="CASCADE"), index=True
    )
    shop_domain: Mapped[str] = mapped_column(String(255), nullable=False)
    topic: Mapped[str] = mapped_column(String(100), nullable=False)
    webhook_id: Mapped[str] = mapped_column(String(100), unique=True, nullable=False)
    event_id: Mapped[str | None] = mapped_column(String(100))
    api_version: Mapped[str | None] = mapped_column(String(20))
    triggered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # received -> processed | failed | ignored
    status: Mapped[str] = mapped_column(String(20), default="received", nullable=False)
    error: Mapped[str | None] = mapped_column(Text)
    payload_bytes: Mapped[int] = mapped_column(BigInteger, default=0, nullable=False)
    # The raw body until the handler succeeds (then cleared): durability lives in the database,
    # so a job lost with Redis is re-enqueued by the scheduler's sweep.
    payload: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(default=0, nullable=False)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
