"""Segment: a named rule tree compiled to one SQL WHERE."""

from __future__ import annotations

from typing import Any

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from shopify_app.models.base import JsonType, ShopScoped


class Segment(ShopScoped):
    __tablename__ = "segment"

    name: Mapped[str] = mapped_column(String(255), nullable=False)
    rules: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict, nullable=False)
