"""The merchant's discount settings, checked before anything reaches Shopify, and the codes
they produce: an alphabet a shopper cannot misread, behind the merchant's prefix."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from shopify_app.services.codes import ALPHABET, clean_prefix, generate_codes
from shopify_app.services.discount_config import InvalidDiscountConfig, parse_discount_config
from shopify_app.shopify.discounts import basic_input

NOW = datetime(2026, 10, 1, 12, 0, tzinfo=UTC)


def parse(config: dict, **kwargs):
    return parse_discount_config(
        config, title="Tidings: Fall (campaign #7)", default_prefix="SMS", now=NOW, **kwargs
    )


def test_every_setting_reaches_the_shopify_input() -> None:
    """Fixed amount, minimum subtotal, dates, once per customer off, combinations, limit."""
    settings = parse(
        {
            "value_type": "amount",
            "value": "10",
            "minimum_subtotal": "75.5",
            "once_per_customer": False,
            "combines_with": {"shippingDiscounts": True, "productDiscounts": True},
            "starts_at": "2026-10-02T09:00:00-04:00",
            "ends_at": "2026-10-09T09:00:00-04:00",
            "usage_limit": 500,
            "prefix": "fall-21!",
        }
    )
    assert settings.prefix == "FALL21" and settings.code is None
    data = basic_input(settings.terms, "FALL21-ABCDEFGH")
    assert data["customerGets"]["value"] == {
        "discountAmount": {"amount": "10", "appliesOnEachItem": False}
    }
    assert data["minimumRequirement"] == {"subtotal": {"greaterThanOrEqualToSubtotal": "75.5"}}
    assert (data["startsAt"], data["endsAt"]) == ("2026-10-02T13:00:00Z", "2026-10-09T13:00:00Z")
    assert data["appliesOncePerCustomer"] is False
    assert data["combinesWith"] == {
        "orderDiscounts": False,
        "productDiscounts": True,
        "shippingDiscounts": True,
    }
    assert data["usageLimit"] == 500


def test_defaults_start_now_without_end_or_minimum() -> None:
    """A bare percentage: starts now, no end, no minimum, once per customer, combines with
    nothing; the shop's prefix."""
    settings = parse({"value_type": "percentage", "value": "20"})
    data = basic_input(settings.terms, "SMS-ABCDEFGH")
    assert settings.prefix == "SMS"
    assert (data["startsAt"], data["endsAt"]) == ("2026-10-01T12:00:00Z", None)
    assert "minimumRequirement" not in data and "usageLimit" not in data
    assert data["appliesOncePerCustomer"] is True
    assert set(data["combinesWith"].values()) == {False}
    assert data["customerGets"]["value"] == {"percentage": 0.2}


def test_flow_codes_are_single_use_and_expire() -> None:
    """A flow's code is for one message: usage limit 1, 7 days unless told otherwise."""
    week = parse({"value_type": "percentage", "value": "10"}, flow=True).terms
    assert (week.usage_limit, week.ends_at) == (1, NOW + timedelta(days=7))
    day = parse({"value_type": "percentage", "value": "10", "expires_after_hours": 24}, flow=True)
    assert day.terms.ends_at == NOW + timedelta(hours=24)


def test_shared_code_is_normalised() -> None:
    assert parse({"value_type": "amount", "value": "5", "code": " spring15 "}).code == "SPRING15"


@pytest.mark.parametrize(
    ("config", "reason"),
    [
        (None, "no discount"),
        ({"value_type": "bogo", "value": "1"}, "value_type"),
        ({"value_type": "amount", "value": "0"}, "positive"),
        ({"value_type": "amount", "value": "ten"}, "must be a number"),
        ({"value_type": "amount", "value": "NaN"}, "must be a number"),
        ({"value_type": "percentage", "value": "100.5"}, "exceed 100"),
        ({"value_type": "amount", "value": "5", "minimum_subtotal": "-1"}, "negative"),
        ({"value_type": "amount", "value": "5", "combines_with": {"all": True}}, "combines_with"),
        ({"value_type": "amount", "value": "5", "ends_at": "2026-10-05T00:00:00"}, "time zone"),
        ({"value_type": "amount", "value": "5", "ends_at": "next week"}, "ISO 8601"),
        (
            {
                "value_type": "amount",
                "value": "5",
                "starts_at": "2026-10-05T00:00:00Z",
                "ends_at": "2026-10-04T00:00:00Z",
            },
            "after starts_at",
        ),
        ({"value_type": "amount", "value": "5", "usage_limit": 0}, "usage_limit"),
        ({"value_type": "amount", "value": "5", "code": "X!"}, "code must be"),
        ({"value_type": "amount", "value": "5", "expires_after_hours": "soon"}, "expires_after"),
    ],
)
def test_invalid_settings_name_the_problem(config: dict | None, reason: str) -> None:
    with pytest.raises(InvalidDiscountConfig, match=reason):
        parse(config)


def test_codes_are_unambiguous_distinct_and_prefixed() -> None:
    """Ten thousand codes: all distinct, none in the excluded set, no 0/O/1/I/L."""
    assert not set("01OIL") & set(ALPHABET)
    taken = set(generate_codes(50, "VIP"))
    codes = generate_codes(10_000, "vip", exclude=taken)
    assert len(set(codes)) == 10_000 and not set(codes) & taken
    for code in codes:
        prefix, body = code.split("-")
        assert prefix == "VIP" and len(body) == 8 and set(body) <= set(ALPHABET)
    assert generate_codes(1, "")[0].isalnum()  # no prefix: no dash either
    assert clean_prefix("  black friday 2026!! ") == "BLACKFRIDAY2026"
    assert clean_prefix("x" * 30) == "X" * 20
    assert Decimal(str(parse({"value_type": "percentage", "value": "12.5"}).terms.value)) == (
        Decimal("12.5")
    )
