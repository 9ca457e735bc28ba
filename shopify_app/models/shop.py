"""The Shop aggregate: one installed store, its encrypted tokens and its merchant settings."""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, String, Text, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.mutable import MutableDict
from sqlalchemy.orm import Mapped, mapped_column

from shopify_app.extensions import db
from shopify_app.models.base import Model, UTCDateTime

DEFAULT_CONSENT_TEXT = (
    "By submitting this form, you agree to receive recurring automated marketing text messages "
    "(e.g. cart reminders) from {brand} at the number provided. Consent is not a condition of "
    "purchase. Msg frequency varies. Msg & data rates may apply. Reply HELP for help and STOP "
    "to cancel."
)
DEFAULT_CONFIRMATION_TEXT = (
    "{brand}: Reply Y to confirm your subscription to recurring automated marketing texts. "
    "Msg frequency varies. Msg & data rates may apply. Reply HELP for help, STOP to cancel."
)
DEFAULT_WELCOME_TEXT = (
    "{brand}: You're subscribed to recurring automated marketing texts. Msg frequency varies. "
    "Msg & data rates may apply. Reply HELP for help, STOP to cancel."
)
DEFAULT_HELP_TEXT = (
    "{brand}: Recurring automated marketing texts. Msg frequency varies. Msg & data rates may "
    "apply. Reply STOP to cancel. Help: {support}"
)
DEFAULT_OPT_OUT_TEXT = "{brand}: You're unsubscribed and will receive no further messages."

# Every merchant setting with its default. A shop stores only what it changed.
SHOP_SETTING_DEFAULTS: dict[str, Any] = {
    "brand_name": "",
    "support_contact": "",
    "sender": {"messaging_service_sid": "", "from_number": ""},
    "quiet_hours": {"start": "08:00", "end": "21:00"},
    "smart_sending_hours": 12,
    "frequency_caps": [],  # [{"count": 3, "hours": 24}]
    "usage_caps": {
        "daily_messages": None,
        "monthly_messages": None,
        "daily_spend": None,
        "monthly_spend": None,
    },
    "max_segments": 4,
    "footer_every_n": 0,
    "footer_text": "Reply STOP to opt out",
    "consent_text": DEFAULT_CONSENT_TEXT,
    "confirmation_text": DEFAULT_CONFIRMATION_TEXT,
    "welcome_text": DEFAULT_WELCOME_TEXT,
    "help_text": DEFAULT_HELP_TEXT,
    "opt_out_text": DEFAULT_OPT_OUT_TEXT,
    "join_keywords": ["JOIN"],
    "attribution": {"click_window_days": 5, "view_through": False, "view_through_hours": 24},
    "price_table": {},  # country -> price per segment; empty means the built-in table
    "allowed_link_domains": [],
    "messages_per_second": 10,
    "holdout_percent": 0,
    "discount_prefix": "SMS",
    "widget": {
        "enabled": True,
        "headline": "Get 10% off your first order",
        "body": "Join our text list for exclusive offers.",
        "offer_text": None,
        "button_label": "Subscribe",
        "welcome_discount": None,
    },
}


def merge_settings(stored: dict[str, Any] | None) -> dict[str, Any]:
    """Defaults overlaid with what the shop stored (one level deep for dict settings)."""
    merged = copy.deepcopy(SHOP_SETTING_DEFAULTS)
    for key, value in (stored or {}).items():
        if isinstance(merged.get(key), dict) and isinstance(value, dict):
            merged[key].update(value)
        else:
            merged[key] = value
    return merged


class Shop(Model):
    __tablename__ = "shop"

    domain: Mapped[str] = mapped_column(String(255), unique=True, nullable=False)
    name: Mapped[str] = mapped_column(String(255), default="", nullable=False)
    email: Mapped[str | None] = mapped_column(String(255))
    primary_domain: Mapped[str | None] = mapped_column(String(255))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC", nullable=False)
    currency: Mapped[str] = mapped_column(String(3), default="USD", nullable=False)
    country: Mapped[str] = mapped_column(String(2), default="US", nullable=False)
    scopes: Mapped[str] = mapped_column(Text, default="", nullable=False)
    access_token_enc: Mapped[str | None] = mapped_column(Text)
    access_token_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    refresh_token_enc: Mapped[str | None] = mapped_column(Text)
    refresh_token_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    installed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    uninstalled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A fresh type instance: as_mutable() would otherwise make every JSON column a MutableDict.
    settings: Mapped[dict[str, Any]] = mapped_column(
        MutableDict.as_mutable(JSON().with_variant(JSONB(), "postgresql")),
        default=dict,
        nullable=False,
    )

    @property
    def is_installed(self) -> bool:
        return self.installed_at is not None and self.uninstalled_at is None

    @property
    def config(self) -> dict[str, Any]:
        """The effective settings: defaults plus what the merchant changed."""
        return merge_settings(self.settings)

    def setting(self, key: str) -> Any:
        return self.config[key]

    @property
    def brand(self) -> str:
        return self.setting("brand_name") or self.name or self.domain.split(".")[0]

    @classmethod
    def by_domain(cls, domain: str) -> Shop | None:
        return db.session.scalars(select(cls).where(cls.domain == domain)).first()

    def __repr__(self) -> str:
        return f"<Shop {self.id} {self.domain}>"
