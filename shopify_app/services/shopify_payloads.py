"""Small readers for Shopify webhook payload values (times, ids, phones)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from shopify_app.sms.phones import PhoneResult, normalize


def parse_time(value: Any) -> datetime | None:
    """An aware UTC datetime from Shopify's ISO 8601 strings ("2026-01-02T10:00:00-05:00")."""
    if not value or not isinstance(value, str):
        return None
    text = value.strip().replace("Z", "+00:00")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def int_id(value: Any) -> int | None:
    """A numeric Shopify id from a number, a numeric string or a GraphQL gid."""
    if value is None or isinstance(value, bool):
        return None
    text = str(value).rsplit("/", 1)[-1]
    return int(text) if text.isdigit() else None


def address_country(payload: dict[str, Any]) -> str | None:
    for key in ("billing_address", "shipping_address"):
        address = payload.get(key) or {}
        code = address.get("country_code") if isinstance(address, dict) else None
        if isinstance(code, str) and len(code) == 2:
            return code.upper()
    return None


def first_valid_phone(candidates: list[Any], region: str | None) -> PhoneResult | None:
    """The first candidate that is a textable number, normalised."""
    for raw in candidates:
        if isinstance(raw, str) and raw.strip():
            result = normalize(raw, region)
            if result.ok:
                return result
    return None
