"""Subscriber and its append-only ConsentEvent ledger."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from shopify_app.models.base import BigId, Money, ShopScoped, UTCDateTime

SUBSCRIBER_STATUSES = ("pending", "subscribed", "unsubscribed")
CONSENT_KINDS = ("requested", "confirmed", "opted_out", "resubscribed", "redacted")
CONSENT_SOURCES = ("checkout", "widget", "keyword", "import", "admin", "shopify_sync", "carrier")


class Subscriber(ShopScoped):
    __tablename__ = "subscriber"
    __table_args__ = (
        UniqueConstraint("shop_id", "phone"),
        Index("ix_subscriber_shop_status", "shop_id", "status"),
        Index("ix_subscriber_shop_customer", "shop_id", "customer_id"),
        Index("ix_subscriber_shop_created", "shop_id", "created_at"),
    )

    # E.164; nulled (with redacted_at set) when a customers/redact erases the person.
    phone: Mapped[str | None] = mapped_column(String(20))
    customer_id: Mapped[int | None] = mapped_column(BigId)
    email: Mapped[str | None] = mapped_column(String(255))
    first_name: Mapped[str | None] = mapped_column(String(255))
    last_name: Mapped[str | None] = mapped_column(String(255))
    country: Mapped[str | None] = mapped_column(String(2))
    region: Mapped[str | None] = mapped_column(String(8))  # US state, for state rules
    timezone: Mapped[str | None] = mapped_column(String(255))  # comma-separated IANA zones
    status: Mapped[str] = mapped_column(String(20), default="pending", nullable=False)
    source: Mapped[str] = mapped_column(String(20), default="admin", nullable=False)
    subscribed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    unsubscribed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When the consent state last changed (the newest applied ledger event). Consent arriving
    # from Shopify stamped earlier than this is stale and must not override a newer state.
    consent_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    phone_invalid: Mapped[bool] = mapped_column(default=False, nullable=False)
    orders_count: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    total_spent: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"), nullable=False)
    last_order_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_click_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_message_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    messages_received: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    redacted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    @property
    def zones(self) -> list[str]:
        return [z for z in (self.timezone or "").split(",") if z]


class ConsentEvent(ShopScoped):
    """Append-only: what happened to a subscriber's consent, from where, with what evidence."""

    __tablename__ = "consent_event"
    __table_args__ = (Index("ix_consent_event_shop_kind_time", "shop_id", "kind", "occurred_at"),)

    subscriber_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("subscriber.id", ondelete="CASCADE"), nullable=False, index=True
    )
    kind: Mapped[str] = mapped_column(String(20), nullable=False)
    source: Mapped[str] = mapped_column(String(20), nullable=False)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(Text)
    page_url: Mapped[str | None] = mapped_column(Text)
    consent_text: Mapped[str | None] = mapped_column(Text)
    evidence_id: Mapped[str | None] = mapped_column(String(255))
    # Shopify's opt-in level (single_opt_in, confirmed_opt_in) when the consent came from there.
    opt_in_level: Mapped[str | None] = mapped_column(String(32))
    # Free-text evidence: the consent source named in an import row, where Shopify collected it.
    note: Mapped[str | None] = mapped_column(Text)
    # When this event was written back to the Shopify customer (consent collected by Tidings).
    synced_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
