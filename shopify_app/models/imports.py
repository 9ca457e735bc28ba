"""A CSV import of subscribers: progress and the refused rows report."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from shopify_app.models.base import JsonType, ShopScoped, UTCDateTime


class ImportJob(ShopScoped):
    __tablename__ = "import_job"

    filename: Mapped[str] = mapped_column(String(255), nullable=False)
    status: Mapped[str] = mapped_column(String(12), default="queued", nullable=False)
    csv_text: Mapped[str | None] = mapped_column(Text)  # dropped once processed
    total_rows: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    processed_rows: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    imported: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    duplicates: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    refused: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    # [{"row": 7, "phone": "+1…", "reason": "..."}]
    refused_rows: Mapped[list[Any]] = mapped_column(JsonType, default=list, nullable=False)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
