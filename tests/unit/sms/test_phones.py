"""Phone normalization, refusals with shopper-readable reasons, zones, state and masking."""

from __future__ import annotations

import re
from collections import defaultdict

import pytest

from shopify_app.sms.legal_windows import AREA_CODE_STATE
from shopify_app.sms.phones import (
    INVALID,
    LANDLINE,
    NEED_COUNTRY_CODE,
    TOO_LONG,
    TOO_SHORT,
    PhoneResult,
    mask,
    normalize,
    timezones_for,
)


@pytest.mark.parametrize(
    ("raw", "region", "e164", "country"),
    [
        ("+1 650-253-0000", "US", "+16502530000", "US"),
        ("(415) 555-2671", "US", "+14155552671", "US"),
        ("415.555.2671", "US", "+14155552671", "US"),
        ("1 415 555 2671", "US", "+14155552671", "US"),
        ("  +1 (415) 555\u20112671 ", "US", "+14155552671", "US"),
        ("+1 604 555 0100", "US", "+16045550100", "CA"),
        ("(416) 555-0123", "CA", "+14165550123", "CA"),
        ("+44 7400 123456", "US", "+447400123456", "GB"),
        ("07400 123456", "GB", "+447400123456", "GB"),
        ("0044 7400 123456", "US", "+447400123456", "GB"),
        ("+33 6 12 34 56 78", None, "+33612345678", "FR"),
        ("06 12 34 56 78", "FR", "+33612345678", "FR"),
        ("+33 (0)6 12 34 56 78", None, "+33612345678", "FR"),
    ],
)
def test_valid_mobiles(raw, region, e164, country):
    """US/CA (fixed-line-or-mobile), GB and FR mobiles in many spellings normalize to E.164."""
    result = normalize(raw, region)
    assert result.ok, result.reason
    assert (result.e164, result.country, result.reason) == (e164, country, None)
    assert result.timezones


@pytest.mark.parametrize(
    ("raw", "region", "reason"),
    [
        ("+44 20 7946 0958", "US", LANDLINE),
        ("+33 1 42 68 53 00", None, LANDLINE),
        ("01 42 68 53 00", "FR", LANDLINE),
        ("+1 800 555 0199", "US", "That number can't receive texts (it is a toll-free number)."),
        ("+44 800 123 4567", "US", "That number can't receive texts (it is a toll-free number)."),
        ("+1 900 555 0100", "US", "That number can't receive texts (it is a premium-rate number)."),
        ("hello", "US", INVALID),
        ("call me", "US", INVALID),
        ("123", "US", TOO_SHORT),
        ("+1 415 555 267", "US", TOO_SHORT),
        ("+1 415 555 26711", "US", TOO_LONG),
        ("4155552671", None, NEED_COUNTRY_CODE),
        ("+999 1234567", None, INVALID),
        ("(123) 456-7890", "US", INVALID),
        ("", "US", "Please enter a phone number."),
    ],
)
def test_refusals(raw, region, reason):
    """Landlines, toll-free, premium, garbage and wrong lengths are refused in plain words."""
    assert normalize(raw, region) == PhoneResult(ok=False, reason=reason)


@pytest.mark.parametrize(
    ("raw", "zones"),
    [
        ("+1 208 555 0100", ("America/Boise", "America/Los_Angeles")),
        ("+1 701 555 0100", ("America/Denver", "America/North_Dakota/Center")),
        ("+1 907 555 0100", ("America/Adak", "America/Anchorage")),
        ("+1 212 555 0100", ("America/New_York",)),
        ("+1 808 555 0100", ("Pacific/Honolulu",)),
    ],
)
def test_multi_zone_numbers(raw, zones):
    """Area codes spanning zones return every zone (PLATFORM.md: 208, 701, 907)."""
    assert normalize(raw).timezones == zones


def test_state_from_area_code():
    """Florida, Texas and Oklahoma numbers carry their state; others none."""
    assert normalize("(305) 555-0100").state == "FL"
    assert normalize("+1 512 555 0100").state == "TX"
    assert normalize("+1 918 555 0100").state == "OK"
    assert normalize("+1 212 555 0100").state is None
    assert normalize("+1 604 555 0100").state is None  # Canada
    assert normalize("+44 7400 123456").state is None


def test_area_code_table_matches_phonenumbers_geocoder():
    """Our strict-state area codes are exactly those the library's geocoder assigns to them,
    so a new overlay shows up here when phonenumbers is upgraded."""
    from phonenumbers.geodata import GEOCODE_DATA

    names = {
        "FL": "Florida", "OK": "Oklahoma", "MD": "Maryland", "CT": "Connecticut",
        "TX": "Texas", "WA": "Washington State",
    }  # fmt: skip
    expected: dict[str, set[str]] = defaultdict(set)
    for prefix, descriptions in GEOCODE_DATA.items():
        if prefix[:1] != "1" or not re.match(r"1[2-9]\d\d", prefix):
            continue
        description = descriptions.get("en", "")  # "Florida" or "Miami, FL"
        for state, name in names.items():
            if description == name or description.endswith(f", {state}"):
                expected[state].add(prefix[1:4])
    ours: dict[str, set[str]] = defaultdict(set)
    for code, state in AREA_CODE_STATE.items():
        ours[state].add(code)
    assert ours == expected


def test_timezones_for():
    """Known numbers give their zones; unknown or unparseable ones the fallback."""
    assert timezones_for("+12085550100", "America/New_York") == (
        "America/Boise",
        "America/Los_Angeles",
    )
    assert timezones_for("+33612345678", "UTC") == ("Europe/Paris",)
    assert timezones_for("not a number", "America/Chicago") == ("America/Chicago",)
    assert timezones_for("+999123456", "UTC") == ("UTC",)


def test_unknown_zone_is_dropped():
    """phonenumbers' "Etc/Unknown" never leaks into a result."""
    for raw in ("+16502530000", "+447400123456", "+61412345678"):
        assert "Etc/Unknown" not in normalize(raw).timezones


@pytest.mark.parametrize(
    ("e164", "masked"),
    [
        ("+16502534567", "+1******4567"),
        ("+447400123456", "+44******3456"),
        ("+33612345678", "+33*****5678"),
        ("+1650", "+1***"),
        ("12", "**"),
        ("", ""),
    ],
)
def test_mask(e164, masked):
    """Only the country code and the last four digits of a full number are shown."""
    assert mask(e164) == masked
