"""Automated flows (trigger + steps) and the runs that walk a subscriber through them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from shopify_app.models.base import BigId, JsonType, ShopScoped, UTCDateTime

FLOW_KINDS = ("abandoned_checkout", "welcome", "post_purchase", "winback")
RUN_STATUSES = ("active", "completed", "exited")


class Flow(ShopScoped):
    __tablename__ = "flow"
    __table_args__ = (UniqueConstraint("shop_id", "kind"),)

    kind: Mapped[str] = mapped_column(String(30), nullable=False)
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    enabled: Mapped[bool] = mapped_column(default=False, nullable=False)
    # [{"type": "wait", "minutes": 30}, {"type": "message", "body": "...", "discount": {...}}]
    steps: Mapped[list[dict[str, Any]]] = mapped_column(JsonType, default=list, nullable=False)
    settings: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict, nullable=False)
    holdout_percent: Mapped[int] = mapped_column(Integer, default=0, nullable=False)


class FlowRun(ShopScoped):
    """One subscriber's way through one flow, started by one trigger (`trigger_key`).

    `step_index` is the next step to perform and `next_step_at` when; the step itself is read
    from the flow's current definition at that moment, so edits reach runs that have not got
    there yet.
    """

    __tablename__ = "flow_run"
    __table_args__ = (
        UniqueConstraint("flow_id", "trigger_key"),
        # The tick's one query: active runs in due order. Partial, so finished runs (the
        # large majority over time) cost the index nothing.
        Index(
            "ix_flow_run_due",
            "next_step_at",
            postgresql_where=text("status = 'active'"),
            sqlite_where=text("status = 'active'"),
        ),
    )

    flow_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("flow.id", ondelete="CASCADE"), nullable=False, index=True
    )
    subscriber_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("subscriber.id", ondelete="CASCADE"), nullable=False, index=True
    )
    trigger_key: Mapped[str] = mapped_column(String(255), nullable=False)
    status: Mapped[str] = mapped_column(String(12), default="active", nullable=False)
    step_index: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    next_step_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    exit_reason: Mapped[str | None] = mapped_column(String(40))
    held_out: Mapped[bool] = mapped_column(default=False, nullable=False)
    context: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict, nullable=False)
    # When the run completed or exited.
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
