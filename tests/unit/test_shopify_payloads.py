"""The payload readers: lenient ones give None, strict ones raise MalformedPayload naming the
field and never its value."""

from __future__ import annotations

from decimal import Decimal

import pytest

from shopify_app.services.shopify_payloads import (
    MalformedPayload,
    int_id,
    money,
    obj,
    objects,
    parse_time,
    required_id,
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (5820041936934, 5820041936934),
        ("gid://shopify/Order/5820041936934", 5820041936934),
        ("²", None),  # str.isdigit() says yes, int() says no
        (10**30, None),  # beyond BIGINT
        (0, None),
        (True, None),
        ("12.5", None),
    ],
)
def test_int_id(value, expected):
    assert int_id(value) == expected


def test_parse_time_outside_datetime_range_is_none():
    """Shifting year 9999 to UTC overflows: unreadable, like any bad timestamp."""
    assert parse_time("9999-12-31T23:59:59-05:00") is None
    assert parse_time("2026-01-02T10:00:00-05:00").isoformat() == "2026-01-02T15:00:00+00:00"


def test_required_id_names_the_field():
    assert required_id({"order_id": "77"}, "order_id") == 77
    with pytest.raises(MalformedPayload, match=r"^refunds\[1\]\.id is missing$"):
        required_id({"id": ""}, "id", "refunds[1]")
    with pytest.raises(MalformedPayload, match=r"^id is not a Shopify id$"):
        required_id({"id": "+16175550101"}, "id")


@pytest.mark.parametrize("value", ["abc", "NaN", "Infinity", True, {"amount": "1"}, [1]])
def test_money_refuses_what_is_not_a_finite_decimal(value):
    with pytest.raises(MalformedPayload) as raised:
        money(value, "total_price")
    assert raised.value.reason == "total_price is not a decimal"


def test_money_reads_amounts_and_refuses_absurd_ones():
    assert money("12.50", "p") == Decimal("12.50")
    assert money(12.5, "p") == Decimal("12.5")
    assert money(None, "p") == Decimal("0.00")
    with pytest.raises(MalformedPayload, match=r"^p is out of range$"):
        money("1e30", "p")  # too big even to round to cents


def test_obj_and_objects_check_shapes():
    assert obj({"customer": None}, "customer") == {}
    assert objects({}, "transactions") == []
    # Empty values of any type meant "none" before the shape checks, and still do.
    for empty in ("", [], {}, False):
        assert obj({"billing_address": empty}, "billing_address") == {}
        assert objects({"transactions": empty}, "transactions") == []
    with pytest.raises(MalformedPayload, match=r"^billing_address is not an object$"):
        obj({"billing_address": "1 Main St"}, "billing_address")
    with pytest.raises(MalformedPayload, match=r"^transactions is not a list$"):
        objects({"transactions": {"amount": "1"}}, "transactions")
    with pytest.raises(MalformedPayload, match=r"^refunds\[0\]\.duties\[1\] is not an object$"):
        objects({"duties": [{}, "x"]}, "duties", "refunds[0]")


def test_malformed_payload_is_not_a_value_error():
    """A ValueError is the retried kind (our own bugs); this one is permanent."""
    assert not issubclass(MalformedPayload, ValueError)
