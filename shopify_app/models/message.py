"""Message: one row per recipient per send, the unit of exactly-once delivery."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from shopify_app.models.base import BigId, JsonType, ShopScoped, UnitPrice, UTCDateTime

# campaign, flow: marketing, only to subscribed numbers, inside quiet hours and caps.
# transactional: the opt-in confirmation request and the welcome text — never to an opted-out
# number.
# compliance: the one opt-out confirmation and HELP replies — answers to the shopper's own text.
MESSAGE_KINDS = ("campaign", "flow", "transactional", "compliance")
# pending -> sending -> sent -> delivered | undelivered | failed; or skipped (with a reason).
MESSAGE_STATUSES = ("pending", "sending", "sent", "delivered", "undelivered", "failed", "skipped")
OPEN_STATUSES = ("pending", "sending")


class Message(ShopScoped):
    """One text to one subscriber.

    No foreign keys to shop, subscriber, campaign or variant: on PostgreSQL each one costs a
    trigger, an index probe and a row lock per inserted row — with them, a 500 000-recipient
    campaign start took twice as long (19 s instead of 9). Nothing relies on a cascade: a
    campaign can be deleted only before it has rows, variants likewise, subscribers are
    redacted in place rather than deleted, and shop/redact deletes table by table
    (`privacy.redact_shop`). The ids are written only by code that has just read the parent.
    """

    __tablename__ = "message"
    __table_args__ = (
        UniqueConstraint("campaign_id", "subscriber_id"),
        # Partial unique indexes: most rows have no flow run, dedupe key or provider sid yet,
        # and an index entry for a NULL would cost every campaign row an insert for nothing.
        # Queries reach them by equality only; a query that says "IS NOT NULL" on one of these
        # columns could be planned as a scan of the whole index when the statistics predate
        # the send, so none does (see reconcile.py).
        Index(
            "uq_message_flow_run_id_flow_step",
            "flow_run_id",
            "flow_step",
            unique=True,
            postgresql_where=text("flow_run_id IS NOT NULL"),
            sqlite_where=text("flow_run_id IS NOT NULL"),
        ),
        Index(
            "uq_message_shop_id_dedupe_key",
            "shop_id",
            "dedupe_key",
            unique=True,
            postgresql_where=text("dedupe_key IS NOT NULL"),
            sqlite_where=text("dedupe_key IS NOT NULL"),
        ),
        Index(
            "uq_message_provider_sid",
            "provider_sid",
            unique=True,
            postgresql_where=text("provider_sid IS NOT NULL"),
            sqlite_where=text("provider_sid IS NOT NULL"),
        ),
        # Partial: a row leaves this index when it is claimed, so claiming and sending do not
        # also insert index entries for rows that are no longer waiting.
        Index(
            "ix_message_pending_due",
            "shop_id",
            "due_at",
            postgresql_where=text("status = 'pending'"),
            sqlite_where=text("status = 'pending'"),
        ),
        Index("ix_message_subscriber_sent", "subscriber_id", "sent_at"),
        Index(
            "ix_message_lease",
            "lease_expires_at",
            postgresql_where=text("status = 'sending'"),
            sqlite_where=text("status = 'sending'"),
        ),
        # Usage caps count a shop's sends (and spend) since the start of its day and month.
        # Not partial (WHERE sent_at IS NOT NULL), though that would spare a campaign start
        # half a second: with statistics taken before a send, such an index looks nearly
        # empty, and the planner scanned all of it for any query saying "sent_at IS NOT NULL"
        # (the per-subscriber count of texts received, 40 % of a 100 000-recipient send).
        Index("ix_message_shop_sent", "shop_id", "sent_at"),
        # Campaign reports (services/stats.py) read every recipient row. Keyed by the values
        # they group on, PostgreSQL aggregates a million rows from this index alone, in order,
        # and the campaign's id range (which bounds its clicks) comes from the same pass.
        # Its (campaign_id, status) prefix also serves progress counts: no separate index, as
        # each one costs every row of a campaign start another entry.
        Index(
            "ix_message_campaign_report",
            "campaign_id",
            "status",
            "skip_reason",
            "error_code",
            "segments",
            "price",
            postgresql_include=["sent_at", "due_at", "shop_id", "id"],
        ),
    )

    # The shop's id without ShopScoped's foreign key and index (see the class docstring; the
    # indexes above all lead with shop_id or a key that implies the shop).
    shop_id: Mapped[int] = mapped_column(BigId, nullable=False)
    subscriber_id: Mapped[int] = mapped_column(BigId, nullable=False)
    kind: Mapped[str] = mapped_column(String(20), default="campaign", nullable=False)
    campaign_id: Mapped[int | None] = mapped_column(BigId)
    variant_id: Mapped[int | None] = mapped_column(BigId)
    flow_run_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("flow_run.id", ondelete="CASCADE")
    )
    flow_step: Mapped[int | None] = mapped_column(Integer)
    # Idempotency for one-off texts (confirmation, welcome, HELP reply...).
    dedupe_key: Mapped[str | None] = mapped_column(String(120))
    template: Mapped[str | None] = mapped_column(Text)  # unrendered text for non-campaign sends
    # Merge values given when queued (e.g. {"discount_code": "WELCOME10"}).
    context: Mapped[dict[str, Any] | None] = mapped_column(JsonType)
    status: Mapped[str] = mapped_column(String(20), default="pending", nullable=False)
    skip_reason: Mapped[str | None] = mapped_column(String(40))
    # Why the row went back to pending with a later due_at (quiet_hours, daily_cap, retry...).
    deferred_reason: Mapped[str | None] = mapped_column(String(40))
    marketing: Mapped[bool] = mapped_column(default=True, nullable=False)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    body: Mapped[str | None] = mapped_column(Text)
    segments: Mapped[int | None] = mapped_column(Integer)
    encoding: Mapped[str | None] = mapped_column(String(8))
    price: Mapped[Decimal | None] = mapped_column(UnitPrice)
    provider_sid: Mapped[str | None] = mapped_column(String(64))
    provider_status: Mapped[str | None] = mapped_column(String(20))
    error_code: Mapped[int | None] = mapped_column(Integer)
    error_message: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    # Set when the send path hands the text to the provider (and counted by caps from then on);
    # cleared again when the provider refused it or it goes back to pending.
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
