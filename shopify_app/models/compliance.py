"""ComplianceRequest: what a Shopify privacy webhook asked of a shop and what we did about it.

A `data_request` keeps the assembled report until the merchant has sent it to the customer; a
`redact` keeps only anonymous counts, so the audit trail itself holds no personal data.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from shopify_app.models.base import JsonType, ShopScoped

COMPLIANCE_KINDS = ("data_request", "redact")


class ComplianceRequest(ShopScoped):
    __tablename__ = "compliance_request"
    __table_args__ = (Index("ix_compliance_request_shop_customer", "shop_id", "customer_id"),)

    kind: Mapped[str] = mapped_column(String(20), nullable=False)
    # Shopify's data_request.id (absent on redact requests).
    shopify_request_id: Mapped[str | None] = mapped_column(String(64))
    # Shopify's customer id: a pseudonymous key, kept so a later redact finds earlier reports.
    customer_id: Mapped[int | None] = mapped_column(BigInteger)
    report: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict, nullable=False)
