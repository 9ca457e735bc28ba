"""Quiet hours, legal windows, DST, multi-zone overlap and sending caps."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from shopify_app.sms.legal_windows import (
    COUNTRY_RULES,
    US_STATE_RULES,
    easter_sunday,
    french_public_holidays,
)
from shopify_app.sms.rules import (
    CapVerdict,
    Window,
    check_subscriber_caps,
    check_usage_caps,
    effective_window,
    in_quiet_hours,
    legal_frequency_caps,
    legal_window,
    next_allowed,
    validity_seconds,
)

ANY_TIME = Window(time(0, 0), time(23, 59))
NY = "America/New_York"
LA = "America/Los_Angeles"
HONOLULU = "Pacific/Honolulu"
PARIS = "Europe/Paris"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def local(zone: str, *args: int, fold: int = 0) -> datetime:
    """A wall-clock time in ``zone`` as an aware UTC datetime."""
    return datetime(*args, tzinfo=ZoneInfo(zone), fold=fold).astimezone(UTC)


# --- legal windows ---------------------------------------------------------------------------


def test_federal_window_by_default():
    """US without a strict state, and unknown countries, get 8:00-21:00."""
    for country, state in (("US", None), ("US", "NY"), ("CA", None), (None, None), ("ZZ", "x")):
        assert legal_window(country, state, date(2026, 6, 1)) == Window(time(8), time(21))


@pytest.mark.parametrize("state", ["FL", "OK", "MD", "WA", "fl"])
def test_eight_pm_states(state):
    """Florida, Oklahoma, Maryland (and Washington, strictest reading) stop at 20:00."""
    assert legal_window("US", state, date(2026, 6, 1)) == Window(time(8), time(20))


def test_connecticut():
    """Connecticut: 9:00-20:00."""
    assert legal_window("US", "CT", date(2026, 6, 1)) == Window(time(9), time(20))


def test_texas_sunday():
    """Texas: 9:00-21:00 Monday-Saturday, 12:00-21:00 Sunday."""
    assert legal_window("US", "TX", date(2026, 6, 6)) == Window(time(9), time(21))  # Saturday
    assert legal_window("US", "TX", date(2026, 6, 7)) == Window(time(12), time(21))  # Sunday


def test_france_sunday_and_holidays():
    """France: 8:00-22:00 on working days, nothing on Sundays and public holidays."""
    assert legal_window("FR", None, date(2026, 6, 6)) == Window(time(8), time(22))  # Saturday
    assert legal_window("FR", None, date(2026, 6, 7)) is None  # Sunday
    assert legal_window("FR", None, date(2026, 7, 14)) is None  # Bastille Day, a Tuesday
    assert legal_window("FR", None, date(2026, 5, 14)) is None  # Ascension Thursday


def test_every_rule_cites_a_source():
    """The table is data with sources."""
    for rule in [*US_STATE_RULES.values(), *COUNTRY_RULES.values()]:
        assert len(rule.source) > 40
        assert len(rule.days) == 7


@pytest.mark.parametrize(
    ("year", "easter"),
    [(2000, date(2000, 4, 23)), (2024, date(2024, 3, 31)), (2025, date(2025, 4, 20)),
     (2026, date(2026, 4, 5)), (2027, date(2027, 3, 28)), (2038, date(2038, 4, 25)),
     (2285, date(2285, 3, 22))],
)  # fmt: skip
def test_easter(year, easter):
    """Gregorian Easter, including the earliest and latest possible dates."""
    assert easter_sunday(year) == easter


def test_french_holidays_2026():
    """Movable feasts follow Easter 2026-04-05; fixed ones are present."""
    holidays = french_public_holidays(2026)
    for day in [
        date(2026, 1, 1), date(2026, 4, 6), date(2026, 5, 1), date(2026, 5, 8),
        date(2026, 5, 14), date(2026, 5, 25), date(2026, 7, 14), date(2026, 8, 15),
        date(2026, 11, 1), date(2026, 11, 11), date(2026, 12, 25),
        date(2026, 4, 3), date(2026, 12, 26),  # Alsace-Moselle, applied everywhere
    ]:  # fmt: skip
        assert day in holidays, day
    assert date(2026, 4, 7) not in holidays


def test_merchant_window_narrows():
    """A merchant window inside the legal one is used as is."""
    merchant = Window(time(10), time(18))
    assert effective_window(merchant, "US", None, date(2026, 6, 1)) == merchant


def test_merchant_window_wider_is_clipped():
    """A merchant cannot widen the legal window."""
    merchant = Window(time(6), time(23))
    assert effective_window(merchant, "US", "FL", date(2026, 6, 1)) == Window(time(8), time(20))
    assert effective_window(merchant, "US", "CT", date(2026, 6, 1)) == Window(time(9), time(20))


def test_merchant_window_outside_legal_is_empty():
    """No overlap with the legal window means no sending that day."""
    assert effective_window(Window(time(5), time(8)), "US", None, date(2026, 6, 1)) is None
    assert effective_window(ANY_TIME, "FR", None, date(2026, 6, 7)) is None


def test_window_must_not_wrap():
    """Windows are same-day intervals."""
    with pytest.raises(ValueError):
        Window(time(21), time(8))


# --- quiet hours across zones --------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "wall", "quiet"),
    [
        (NY, (2026, 6, 1, 7, 59), True),
        (NY, (2026, 6, 1, 8, 0), False),
        (NY, (2026, 6, 1, 20, 59), False),
        (NY, (2026, 6, 1, 21, 0), True),
        (LA, (2026, 6, 1, 8, 0), False),
        (LA, (2026, 6, 1, 21, 30), True),
        (HONOLULU, (2026, 6, 1, 7, 30), True),
        (HONOLULU, (2026, 6, 1, 12, 0), False),
        (PARIS, (2026, 6, 1, 21, 30), False),  # Monday, France allows until 22:00
        (PARIS, (2026, 6, 1, 22, 0), True),
    ],
)
def test_quiet_hours_in_local_time(zone, wall, quiet):
    """Quiet hours are judged in the recipient's local time, end exclusive."""
    country = "FR" if zone == PARIS else "US"
    assert in_quiet_hours(local(zone, *wall), [zone], ANY_TIME, country, None) is quiet


def test_same_instant_differs_by_zone():
    """16:00 UTC is noon in New York but 6:00 in Honolulu."""
    at = utc(2026, 6, 1, 16, 0)
    assert not in_quiet_hours(at, [NY], ANY_TIME, "US", None)
    assert in_quiet_hours(at, [HONOLULU], ANY_TIME, "US", None)
    assert in_quiet_hours(at, [NY, HONOLULU], ANY_TIME, "US", None)


def test_next_allowed_returns_due_when_open():
    """An allowed due time is kept as is."""
    due = local(NY, 2026, 6, 1, 12, 0, 30)
    assert next_allowed(due, [NY], ANY_TIME, "US", None) == due


def test_next_allowed_moves_to_next_morning():
    """At 22:00 in New York the next slot is 8:00 the following day."""
    due = local(NY, 2026, 6, 1, 22, 0)
    assert next_allowed(due, [NY], ANY_TIME, "US", None) == local(NY, 2026, 6, 2, 8, 0)


def test_next_allowed_early_morning_same_day():
    """At 6:15 the slot is 8:00 the same day; a narrower merchant window pushes it later."""
    due = local(LA, 2026, 6, 1, 6, 15)
    assert next_allowed(due, [LA], ANY_TIME, "US", None) == local(LA, 2026, 6, 1, 8, 0)
    merchant = Window(time(10, 30), time(17))
    assert next_allowed(due, [LA], merchant, "US", None) == local(LA, 2026, 6, 1, 10, 30)


def test_next_allowed_returns_utc():
    """The result is in UTC even when due is given with another offset."""
    due = datetime(2026, 6, 1, 23, 0, tzinfo=ZoneInfo(NY))
    result = next_allowed(due, [NY], ANY_TIME, "US", None)
    assert result.tzinfo == UTC
    assert result == local(NY, 2026, 6, 2, 8, 0)


def test_texas_sunday_waits_for_noon():
    """A Texas number on a Sunday morning waits until 12:00."""
    due = local("America/Chicago", 2026, 6, 7, 9, 30)
    expected = local("America/Chicago", 2026, 6, 7, 12, 0)
    assert next_allowed(due, ["America/Chicago"], ANY_TIME, "US", "TX") == expected


def test_france_skips_sunday_and_easter_monday():
    """Saturday 22:00 before Easter 2026: Sunday and Easter Monday are skipped."""
    due = local(PARIS, 2026, 4, 4, 22, 0)
    assert next_allowed(due, [PARIS], ANY_TIME, "FR", None) == local(PARIS, 2026, 4, 7, 8, 0)


def test_france_long_weekend_with_holidays():
    """Christmas 2026 is a Friday: 25th, 26th (Alsace-Moselle) and Sunday 27th are skipped."""
    due = local(PARIS, 2026, 12, 24, 22, 30)
    assert next_allowed(due, [PARIS], ANY_TIME, "FR", None) == local(PARIS, 2026, 12, 28, 8, 0)


# --- DST -----------------------------------------------------------------------------------


def test_us_spring_forward():
    """On 2026-03-08 New York opens at 8:00 EDT, which is 12:00 UTC (not 13:00)."""
    due = utc(2026, 3, 8, 6, 0)  # 01:00 EST, before the 2:00 jump
    assert next_allowed(due, [NY], ANY_TIME, "US", None) == utc(2026, 3, 8, 12, 0)
    assert validity_seconds(utc(2026, 3, 8, 12, 0), [NY], ANY_TIME, "US", None, maximum=10**6) == (
        13 * 3600
    )


def test_us_fall_back():
    """On 2026-11-01 New York opens at 8:00 EST = 13:00 UTC; the day has 25 hours."""
    due = utc(2026, 11, 1, 5, 30)  # 01:30 EDT, the first of two 01:30s
    assert next_allowed(due, [NY], ANY_TIME, "US", None) == utc(2026, 11, 1, 13, 0)
    assert in_quiet_hours(utc(2026, 11, 1, 12, 30), [NY], ANY_TIME, "US", None)  # 7:30 EST


def test_eu_spring_forward_and_fall_back():
    """Paris 2026-03-29 is a Sunday; Monday opens 8:00 CEST = 6:00 UTC. On 2026-10-25
    (Sunday) the change also falls on a closed day; Monday opens 8:00 CET = 7:00 UTC."""
    spring = next_allowed(utc(2026, 3, 28, 21, 30), [PARIS], ANY_TIME, "FR", None)
    assert spring == utc(2026, 3, 30, 6, 0)
    autumn = next_allowed(utc(2026, 10, 24, 21, 0), [PARIS], ANY_TIME, "FR", None)
    assert autumn == utc(2026, 10, 26, 7, 0)


def test_london_dst_days_with_federal_default():
    """GB has no rule of its own: the default window follows London's clock across the change."""
    zone = "Europe/London"
    assert next_allowed(utc(2026, 3, 29, 1, 0), [zone], ANY_TIME, "GB", None) == utc(
        2026, 3, 29, 7, 0
    )
    assert next_allowed(utc(2026, 10, 25, 0, 30), [zone], ANY_TIME, "GB", None) == utc(
        2026, 10, 25, 8, 0
    )


def test_nonexistent_and_ambiguous_wall_times():
    """02:30 on spring-forward day is passed at 03:00 EDT; 01:30 on fall-back day is first
    reached on its EDT occurrence."""
    from shopify_app.sms.rules import _first_instant

    tz = ZoneInfo(NY)
    assert _first_instant(date(2026, 3, 8), time(2, 30), tz) == utc(2026, 3, 8, 7, 0)
    assert _first_instant(date(2026, 11, 1), time(1, 30), tz) == utc(2026, 11, 1, 5, 30)
    assert _first_instant(date(2026, 6, 1), time(8, 0), tz) == utc(2026, 6, 1, 12, 0)
    paris = ZoneInfo(PARIS)
    assert _first_instant(date(2026, 3, 29), time(2, 15), paris) == utc(2026, 3, 29, 1, 0)


# --- several zones -------------------------------------------------------------------------


def test_boise_and_los_angeles_overlap():
    """Idaho's 208 spans Mountain and Pacific: the window opens at 8:00 Pacific and closes
    at 21:00 Mountain."""
    zones = ["America/Boise", LA]
    due = local("America/Boise", 2026, 6, 1, 8, 0)  # 7:00 in Los Angeles
    assert next_allowed(due, zones, ANY_TIME, "US", None) == local(LA, 2026, 6, 1, 8, 0)
    at = local(LA, 2026, 6, 1, 19, 30)  # 20:30 in Boise
    assert validity_seconds(at, zones, ANY_TIME, "US", None) == 30 * 60
    assert in_quiet_hours(local(LA, 2026, 6, 1, 20, 0), zones, ANY_TIME, "US", None)


def test_chicago_and_denver_overlap():
    """Chicago closes first in the evening, Denver opens last in the morning."""
    zones = ["America/Chicago", "America/Denver"]
    due = local("America/Chicago", 2026, 6, 1, 20, 45)
    assert validity_seconds(due, zones, ANY_TIME, "US", None) == 15 * 60
    assert next_allowed(due, zones, ANY_TIME, "US", None) == local(
        "America/Chicago", 2026, 6, 1, 20, 45
    )
    late = local("America/Chicago", 2026, 6, 1, 21, 0)
    assert next_allowed(late, zones, ANY_TIME, "US", None) == local(
        "America/Denver", 2026, 6, 2, 8, 0
    )


def test_overlap_across_dst_boundary_in_one_zone():
    """Phoenix keeps MST; on spring-forward day Denver and Phoenix differ from then on."""
    zones = ["America/Denver", "America/Phoenix"]
    due = utc(2026, 3, 8, 4, 0)  # Saturday 21:00 in both
    # Sunday: Denver (MDT, UTC-6) opens 14:00 UTC, Phoenix (UTC-7) opens 15:00 UTC.
    assert next_allowed(due, zones, ANY_TIME, "US", None) == utc(2026, 3, 8, 15, 0)


def test_no_overlap_raises():
    """Zones whose windows never overlap within 8 days are an error, not a silent send."""
    zones = [NY, "Asia/Tokyo"]  # 13-14 hours apart, a 13-hour window each
    merchant = Window(time(9), time(17))
    with pytest.raises(ValueError, match="no allowed sending time"):
        next_allowed(utc(2026, 6, 1, 0, 0), zones, merchant, "US", None)


def test_empty_zones_is_a_caller_error():
    """At least one zone (or a fallback) must be passed."""
    with pytest.raises(ValueError):
        next_allowed(utc(2026, 6, 1), [], ANY_TIME, "US", None)
    with pytest.raises(ValueError):
        in_quiet_hours(utc(2026, 6, 1), (), ANY_TIME, "US", None)
    with pytest.raises(TypeError):
        in_quiet_hours(utc(2026, 6, 1), NY, ANY_TIME, "US", None)


def test_naive_datetimes_are_refused():
    """Times must be aware; a naive datetime is a bug upstream."""
    with pytest.raises(ValueError):
        next_allowed(datetime(2026, 6, 1, 12), [NY], ANY_TIME, "US", None)


# --- validity ------------------------------------------------------------------------------


def test_validity_seconds_near_close():
    """ValidityPeriod is the time left before the window closes, capped, 0 outside."""
    assert validity_seconds(local(NY, 2026, 6, 1, 20, 59, 30), [NY], ANY_TIME, "US", None) == 30
    assert validity_seconds(local(NY, 2026, 6, 1, 21, 0), [NY], ANY_TIME, "US", None) == 0
    assert validity_seconds(local(NY, 2026, 6, 1, 3, 0), [NY], ANY_TIME, "US", None) == 0
    assert validity_seconds(local(NY, 2026, 6, 1, 8, 0), [NY], ANY_TIME, "US", None) == 36000
    assert (
        validity_seconds(local(NY, 2026, 6, 1, 19, 0), [NY], ANY_TIME, "US", None, maximum=600)
        == 600
    )


def test_validity_seconds_uses_merchant_and_state():
    """The merchant's earlier close and a Florida 20:00 close both shorten validity."""
    at = local(NY, 2026, 6, 1, 18, 0)
    assert validity_seconds(at, [NY], Window(time(9), time(18, 30)), "US", None) == 1800
    assert validity_seconds(at, [NY], ANY_TIME, "US", "FL") == 7200


# --- caps ----------------------------------------------------------------------------------

NOW = utc(2026, 6, 1, 15, 0)


def test_legal_frequency_caps():
    """Florida, Oklahoma and Maryland allow 3 marketing texts per 24 hours."""
    for state in ("FL", "OK", "MD"):
        assert legal_frequency_caps("US", state) == [(3, timedelta(hours=24))]
    assert legal_frequency_caps("US", "CA") == []
    assert legal_frequency_caps("FR", None) == []


def test_smart_sending_boundaries():
    """A send less than N hours ago blocks; exactly N hours ago no longer does; 0 disables."""
    recent = [NOW - timedelta(hours=16) + timedelta(seconds=1)]
    assert check_subscriber_caps(NOW, recent, smart_sending_hours=16, caps=[]) == CapVerdict(
        False, "smart_sending"
    )
    old = [NOW - timedelta(hours=16)]
    assert check_subscriber_caps(NOW, old, smart_sending_hours=16, caps=[]).ok
    assert check_subscriber_caps(NOW, recent, smart_sending_hours=0, caps=[]).ok


def test_frequency_cap_boundaries():
    """A cap of 2 per 7 days blocks the third send; sends leaving the window free a slot."""
    caps = [(2, timedelta(days=7))]
    two = [NOW - timedelta(days=1), NOW - timedelta(days=6, hours=23)]
    verdict = check_subscriber_caps(NOW, two, smart_sending_hours=0, caps=caps)
    assert verdict == CapVerdict(False, "frequency_cap")
    expired = [NOW - timedelta(days=1), NOW - timedelta(days=7)]
    assert check_subscriber_caps(NOW, expired, smart_sending_hours=0, caps=caps).ok
    assert check_subscriber_caps(NOW, [], smart_sending_hours=0, caps=caps).ok


def test_legal_cap_reported_as_legal():
    """Florida's 3 per 24 h: the fourth send is refused with reason legal_cap."""
    legal = legal_frequency_caps("US", "FL")
    sends = [NOW - timedelta(hours=h) for h in (2, 10, 23)]
    verdict = check_subscriber_caps(NOW, sends, smart_sending_hours=0, caps=[], legal_caps=legal)
    assert verdict == CapVerdict(False, "legal_cap")
    sends[-1] = NOW - timedelta(hours=24)
    assert check_subscriber_caps(NOW, sends, smart_sending_hours=0, caps=[], legal_caps=legal).ok
    # Passed among the merchant caps it is enforced the same, under the generic reason.
    blocked = check_subscriber_caps(
        NOW, [NOW - timedelta(hours=h) for h in (2, 10, 23)], smart_sending_hours=0, caps=legal
    )
    assert blocked == CapVerdict(False, "frequency_cap")


def test_future_stamped_sends_count():
    """A send stamped slightly after now (clock skew) still counts."""
    verdict = check_subscriber_caps(
        NOW, [NOW + timedelta(seconds=5)], smart_sending_hours=1, caps=[]
    )
    assert verdict.reason == "smart_sending"


USAGE = dict(
    sent_today=0,
    sent_month=0,
    spend_today=Decimal("0"),
    spend_month=Decimal("0"),
    next_cost=Decimal("0.0166"),
    daily_limit=None,
    monthly_limit=None,
    daily_spend=None,
    monthly_spend=None,
)


def usage(**overrides) -> CapVerdict:
    return check_usage_caps(**{**USAGE, **overrides})


def test_usage_no_limits():
    """None means no limit."""
    assert usage(sent_today=10**6, spend_month=Decimal("99999")) == CapVerdict(True, None)


def test_usage_count_limits():
    """Counts allow while under the limit."""
    assert usage(sent_today=99, daily_limit=100).ok
    assert usage(sent_today=100, daily_limit=100) == CapVerdict(False, "daily_cap")
    assert usage(sent_month=1000, monthly_limit=1000) == CapVerdict(False, "monthly_cap")


def test_usage_spend_limits():
    """Spend allows a message that lands exactly on the limit, not one that passes it."""
    assert usage(spend_today=Decimal("0.9834"), daily_spend=Decimal("1.00")).ok
    assert usage(spend_today=Decimal("0.9835"), daily_spend=Decimal("1.00")) == CapVerdict(
        False, "daily_spend_cap"
    )
    assert usage(spend_month=Decimal("50"), monthly_spend=Decimal("50")) == CapVerdict(
        False, "monthly_spend_cap"
    )
