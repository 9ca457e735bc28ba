"""The merchant's discount settings (Campaign.discount_config, a flow step's "discount"),
checked and turned into the terms Shopify receives.

Shape: {"value_type": "percentage"|"amount", "value": "15" (percent) or "10.00",
"minimum_subtotal": "50.00"|null, "once_per_customer": true, "combines_with":
{"orderDiscounts": false, "productDiscounts": false, "shippingDiscounts": true},
"starts_at", "ends_at" (ISO 8601), "prefix": "SMS", "code": "SPRING15" (shared codes only),
"usage_limit": null, "expires_after_hours": 72 (flows: validity counted from the message)}.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from shopify_app.models.base import utcnow
from shopify_app.services.codes import clean_prefix, normalize_code
from shopify_app.shopify.discounts import DiscountTerms

COMBINES_KEYS = ("orderDiscounts", "productDiscounts", "shippingDiscounts")
_CODE_RE = re.compile(r"^[A-Z0-9][A-Z0-9_-]{2,63}$")
DEFAULT_FLOW_VALIDITY = timedelta(days=7)


class InvalidDiscountConfig(ValueError):
    """The configuration cannot become a Shopify discount; the message says why."""


@dataclass(frozen=True)
class DiscountSettings:
    terms: DiscountTerms
    prefix: str
    code: str | None  # a merchant-chosen shared code


def _decimal(config: dict[str, Any], key: str) -> Decimal | None:
    raw = config.get(key)
    if raw is None or raw == "":
        return None
    try:
        value = Decimal(str(raw))
    except InvalidOperation:
        raise InvalidDiscountConfig(f"{key} must be a number, not {raw!r}") from None
    if not value.is_finite():
        raise InvalidDiscountConfig(f"{key} must be a number, not {raw!r}")
    return value


def _moment(config: dict[str, Any], key: str) -> datetime | None:
    raw = config.get(key)
    if raw in (None, ""):
        return None
    if isinstance(raw, datetime):
        moment = raw
    else:
        try:
            moment = datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
        except ValueError:
            raise InvalidDiscountConfig(f"{key} must be an ISO 8601 date-time") from None
    if moment.tzinfo is None:
        raise InvalidDiscountConfig(f"{key} must include a time zone offset")
    return moment.astimezone(UTC)


def parse_discount_config(
    config: dict[str, Any] | None,
    *,
    title: str,
    default_prefix: str,
    flow: bool = False,
    now: datetime | None = None,
) -> DiscountSettings:
    """Check the configuration; raise InvalidDiscountConfig naming the first problem."""
    if not isinstance(config, dict) or not config:
        raise InvalidDiscountConfig("no discount is configured")
    now = now or utcnow()
    value_type = config.get("value_type")
    if value_type not in ("percentage", "amount"):
        raise InvalidDiscountConfig("value_type must be 'percentage' or 'amount'")
    value = _decimal(config, "value")
    if value is None or value <= 0:
        raise InvalidDiscountConfig("value must be a positive number")
    if value_type == "percentage" and value > 100:
        raise InvalidDiscountConfig("a percentage discount cannot exceed 100")
    minimum = _decimal(config, "minimum_subtotal")
    if minimum is not None and minimum < 0:
        raise InvalidDiscountConfig("minimum_subtotal cannot be negative")
    combines = config.get("combines_with") or {}
    if not isinstance(combines, dict) or any(k not in COMBINES_KEYS for k in combines):
        raise InvalidDiscountConfig(f"combines_with takes only {', '.join(COMBINES_KEYS)}")
    starts_at = _moment(config, "starts_at") or now
    ends_at = _moment(config, "ends_at")
    hours = config.get("expires_after_hours")
    if ends_at is None and hours not in (None, ""):
        try:
            ends_at = now + timedelta(hours=float(hours))
        except (TypeError, ValueError):
            raise InvalidDiscountConfig("expires_after_hours must be a number") from None
    if ends_at is None and flow:
        # Single-use flow codes must not pile up in the merchant's admin forever.
        ends_at = now + DEFAULT_FLOW_VALIDITY
    if ends_at is not None and ends_at <= starts_at:
        raise InvalidDiscountConfig("ends_at must be after starts_at")
    usage_limit = config.get("usage_limit")
    if usage_limit is not None and (not isinstance(usage_limit, int) or usage_limit < 1):
        raise InvalidDiscountConfig("usage_limit must be a positive whole number")
    code = config.get("code")
    if code:
        code = normalize_code(str(code))
        if not _CODE_RE.match(code):
            raise InvalidDiscountConfig(
                "code must be 3-64 letters, digits, '-' or '_' and start with a letter or digit"
            )
    prefix = clean_prefix(
        config.get("prefix") if config.get("prefix") is not None else default_prefix
    )
    terms = DiscountTerms(
        title=title[:255],
        value_type=value_type,
        value=value,
        minimum_subtotal=minimum,
        once_per_customer=bool(config.get("once_per_customer", True)),
        combines_with={k: bool(v) for k, v in combines.items()},
        starts_at=starts_at,
        ends_at=ends_at,
        usage_limit=1 if flow else usage_limit,
    )
    return DiscountSettings(terms=terms, prefix=prefix, code=code or None)
