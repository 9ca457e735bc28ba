"""Small readers for Shopify webhook payload values (times, ids, money, phones).

The lenient readers (`parse_time`, `int_id`) give None for a value they cannot read, for
optional fields. The strict ones (`required_id`, `money`, `obj`, `objects`) raise
MalformedPayload: a payload of the wrong shape never becomes right, so its delivery fails for
good instead of being retried.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from shopify_app.models import to_decimal
from shopify_app.sms.phones import PhoneResult, normalize

# Shopify ids are positive 64-bit integers (our BIGINT columns).
_MAX_ID = 2**63 - 1
# Larger than any order; also keeps `quantize` within Decimal's 28 digits.
_MAX_MONEY_DIGITS = 15


class MalformedPayload(Exception):
    """A webhook payload we cannot process as sent: not a JSON object, a required field
    missing, a value of the wrong type. Not a ValueError on purpose: a ValueError from our own
    code is a bug that a fix and a retry can cure; this is permanent.

    `reason` names the field and what is wrong with it, never its value (payloads carry
    phone numbers, emails and names): "refunds[0].transactions[1].amount is not a decimal".
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def field_name(where: str, key: str) -> str:
    """The dotted path of `key` inside the object at `where` ("" for the payload itself)."""
    return f"{where}.{key}" if where else key


def parse_time(value: Any) -> datetime | None:
    """An aware UTC datetime from Shopify's ISO 8601 strings ("2026-01-02T10:00:00-05:00")."""
    if not value or not isinstance(value, str):
        return None
    text = value.strip().replace("Z", "+00:00")
    try:
        parsed = datetime.fromisoformat(text)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError):  # OverflowError: year 1 or 9999 shifted out of range
        return None


def int_id(value: Any) -> int | None:
    """A numeric Shopify id from a number, a numeric string or a GraphQL gid."""
    if value is None or isinstance(value, bool):
        return None
    text = str(value).rsplit("/", 1)[-1]
    # isascii: str.isdigit() also accepts digits int() refuses ("²").
    if not (text.isascii() and text.isdigit()):
        return None
    number = int(text)
    return number if 0 < number <= _MAX_ID else None


def required_id(container: dict[str, Any], key: str, where: str = "") -> int:
    """container[key] as a Shopify id; MalformedPayload when it is missing or not one."""
    value = container.get(key)
    if value is None or value == "":
        raise MalformedPayload(f"{field_name(where, key)} is missing")
    number = int_id(value)
    if number is None:
        raise MalformedPayload(f"{field_name(where, key)} is not a Shopify id")
    return number


def money(value: Any, field: str) -> Decimal:
    """A Shopify money amount ("12.50", 12.5) as a Decimal, None and "" as zero;
    MalformedPayload when it is not a finite number of a plausible size."""
    try:
        amount = to_decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        raise MalformedPayload(f"{field} is not a decimal") from None
    if not amount.is_finite():
        raise MalformedPayload(f"{field} is not a decimal")
    if amount and amount.adjusted() >= _MAX_MONEY_DIGITS:
        raise MalformedPayload(f"{field} is out of range")
    return amount


def obj(container: dict[str, Any], key: str, where: str = "") -> dict[str, Any]:
    """container[key] as an object, {} when absent or empty (null, "", [], false: read as "no
    address" before, and still so); MalformedPayload for any other non-object."""
    value = container.get(key)
    if not value:
        return {}
    if not isinstance(value, dict):
        raise MalformedPayload(f"{field_name(where, key)} is not an object")
    return value


def objects(container: dict[str, Any], key: str, where: str = "") -> list[dict[str, Any]]:
    """container[key] as a list of objects, [] when absent or empty (null, "", {}, false);
    MalformedPayload when it is not a list or an item is not an object."""
    value = container.get(key)
    if not value:
        return []
    name = field_name(where, key)
    if not isinstance(value, list):
        raise MalformedPayload(f"{name} is not a list")
    for index, item in enumerate(value):
        if not isinstance(item, dict):
            raise MalformedPayload(f"{name}[{index}] is not an object")
    return value


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
