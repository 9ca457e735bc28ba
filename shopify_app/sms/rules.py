"""When a marketing text may be sent, and how many.

Every function takes aware datetimes (UTC by convention) and IANA zone names, and never reads
the clock: the caller passes ``now``/``due``/``at``, which keeps these rules testable and makes a
batch use one consistent instant.

A number can map to several zones (phonenumbers knows only the area code for some); a text is
then allowed only when it is inside the allowed window in every one of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from functools import lru_cache
from zoneinfo import ZoneInfo

from .legal_windows import Window, is_public_holiday, rule_for

__all__ = [
    "CapVerdict",
    "Window",
    "check_subscriber_caps",
    "check_usage_caps",
    "effective_window",
    "in_quiet_hours",
    "legal_frequency_caps",
    "legal_window",
    "next_allowed",
    "validity_seconds",
]

SEARCH_DAYS = 8  # a week plus a day covers a French Sunday next to a holiday
DAY = timedelta(hours=24)


@dataclass(frozen=True)
class CapVerdict:
    ok: bool
    reason: str | None  # "smart_sending", "frequency_cap", "legal_cap", "daily_cap", ...


ALLOWED = CapVerdict(ok=True, reason=None)


def _refuse(reason: str) -> CapVerdict:
    return CapVerdict(ok=False, reason=reason)


# --- windows -------------------------------------------------------------------------------


def legal_window(country: str | None, state: str | None, local_date: date) -> Window | None:
    """The legal window on ``local_date`` in the recipient's zone; None = no texts that day."""
    rule = rule_for(country, state)
    if rule.no_public_holidays and is_public_holiday(country or "", local_date):
        return None
    return rule.days[local_date.weekday()]


@lru_cache(maxsize=4096)
def effective_window(
    merchant: Window, country: str | None, state: str | None, local_date: date
) -> Window | None:
    """The merchant's window clipped to the legal one: it can narrow, never widen, the law."""
    legal = legal_window(country, state, local_date)
    if legal is None:
        return None
    start, end = max(merchant.start, legal.start), min(merchant.end, legal.end)
    return Window(start, end) if start < end else None


# --- time zone helpers ---------------------------------------------------------------------


def _zones(zones: Sequence[str]) -> tuple[ZoneInfo, ...]:
    if isinstance(zones, str):
        raise TypeError("zones must be a sequence of zone names, not a single string")
    if not zones:
        raise ValueError("zones must not be empty: pass the number's zones or a fallback zone")
    return tuple(ZoneInfo(z) for z in zones)


def _require_aware(moment: datetime) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("datetimes must be timezone-aware (UTC)")


def _wall(moment: datetime, tz: ZoneInfo) -> datetime:
    return moment.astimezone(tz).replace(tzinfo=None)


def _first_instant(day: date, moment: time, tz: ZoneInfo) -> datetime:
    """The earliest UTC instant at which the wall clock in ``tz`` reaches ``day`` ``moment``.

    An ambiguous wall time (autumn: the hour repeats) is reached on its first occurrence. A wall
    time that does not exist (spring: 02:30 is skipped) is passed at the transition itself.
    """
    wall = datetime.combine(day, moment)
    first = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    if _wall(first, tz) == wall:
        return first
    other = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)
    lo, hi = sorted((first, other))  # wall(lo) is before the gap, wall(hi) after it
    low, high = 0, int((hi - lo).total_seconds())
    while low < high:  # bisect to the second: offsets change on whole seconds
        mid = (low + high) // 2
        if _wall(lo + timedelta(seconds=mid), tz) >= wall:
            high = mid
        else:
            low = mid + 1
    return lo + timedelta(seconds=low)


def _window_at(
    at: datetime, tz: ZoneInfo, merchant: Window, country: str | None, state: str | None
) -> tuple[date, Window | None, bool]:
    local = at.astimezone(tz)
    window = effective_window(merchant, country, state, local.date())
    inside = window is not None and window.contains(local.time())
    return local.date(), window, inside


def _inside(
    at: datetime, tz: ZoneInfo, merchant: Window, country: str | None, state: str | None
) -> bool:
    return _window_at(at, tz, merchant, country, state)[2]


def _next_open(
    after: datetime,
    tz: ZoneInfo,
    merchant: Window,
    country: str | None,
    state: str | None,
    limit: datetime,
) -> datetime | None:
    """Earliest instant >= ``after`` inside the window in ``tz`` alone, or None before ``limit``."""
    day, _, inside = _window_at(after, tz, merchant, country, state)
    if inside:
        return after
    last_day = limit.astimezone(tz).date()
    while day <= last_day:
        window = effective_window(merchant, country, state, day)
        if window is not None:
            start = max(_first_instant(day, window.start, tz), after)
            end = _first_instant(day, window.end, tz)
            # The check guards against DST oddities: never return an instant outside the window.
            if start < end and start <= limit and _inside(start, tz, merchant, country, state):
                return start
        day += timedelta(days=1)
    return None


# --- public scheduling rules ---------------------------------------------------------------


def next_allowed(
    due: datetime,
    zones: Sequence[str],
    merchant: Window,
    country: str | None,
    state: str | None,
) -> datetime:
    """Earliest UTC instant >= ``due`` that is inside the effective window in every zone.

    ``due`` itself is returned when already allowed; otherwise the result is the start of a
    window, on a whole minute. Raises ValueError when nothing is allowed within 8 days.
    """
    _require_aware(due)
    tzs = _zones(zones)
    limit = due + timedelta(days=SEARCH_DAYS)
    candidate = due
    while candidate <= limit:
        closed = [tz for tz in tzs if not _inside(candidate, tz, merchant, country, state)]
        if not closed:
            return candidate.astimezone(UTC)
        # Every closed zone must open first, so the answer is at least the latest of their next
        # openings; jumping there never skips an allowed instant. Repeat until all agree.
        openings = [_next_open(candidate, tz, merchant, country, state, limit) for tz in closed]
        if any(o is None for o in openings):
            break
        candidate = max(o for o in openings if o is not None)
    raise ValueError(
        f"no allowed sending time within {SEARCH_DAYS} days of {due.isoformat()} "
        f"for zones {list(zones)}"
    )


def in_quiet_hours(
    at: datetime,
    zones: Sequence[str],
    merchant: Window,
    country: str | None,
    state: str | None,
) -> bool:
    _require_aware(at)
    return not all(_inside(at, tz, merchant, country, state) for tz in _zones(zones))


def validity_seconds(
    at: datetime,
    zones: Sequence[str],
    merchant: Window,
    country: str | None,
    state: str | None,
    *,
    maximum: int = 36000,
) -> int:
    """Seconds from ``at`` until the window closes in the first zone to close, capped.

    Used as Twilio's ``ValidityPeriod`` so a message Twilio queues cannot be delivered in quiet
    hours. 0 when ``at`` is already outside the window (do not send).
    """
    _require_aware(at)
    closes: list[datetime] = []
    for tz in _zones(zones):
        day, window, inside = _window_at(at, tz, merchant, country, state)
        if not inside or window is None:
            return 0
        closes.append(_first_instant(day, window.end, tz))
    seconds = int((min(closes) - at).total_seconds())
    return max(0, min(seconds, maximum))


# --- frequency and usage caps --------------------------------------------------------------


def legal_frequency_caps(country: str | None, state: str | None) -> list[tuple[int, timedelta]]:
    """Caps the law sets, as (max messages, rolling window); e.g. Florida -> [(3, 24 h)]."""
    rule = rule_for(country, state)
    return [(rule.max_per_24h, DAY)] if rule.max_per_24h is not None else []


def _count_since(sends: Sequence[datetime], since: datetime) -> int:
    # Sends stamped after ``now`` (clock skew between workers) still count: stricter is safer.
    return sum(1 for sent in sends if sent > since)


def _caps_hold(
    now: datetime, sends: Sequence[datetime], caps: Sequence[tuple[int, timedelta]]
) -> bool:
    return all(_count_since(sends, now - window) < limit for limit, window in caps)


def check_subscriber_caps(
    now: datetime,
    recent_marketing_sends: Sequence[datetime],
    *,
    smart_sending_hours: int,
    caps: Sequence[tuple[int, timedelta]],
    legal_caps: Sequence[tuple[int, timedelta]] = (),
) -> CapVerdict:
    """May this subscriber get one more marketing text at ``now``?

    Smart sending skips anyone texted in the last ``smart_sending_hours`` (0 disables; a send
    exactly that long ago no longer blocks). Each cap (limit, window) allows the send while fewer
    than ``limit`` sends fall in the ``window`` before ``now``. Pass the merchant's caps in
    ``caps`` (reason "frequency_cap") and the law's, from :func:`legal_frequency_caps`, in
    ``legal_caps`` (reason "legal_cap"); legal caps passed in ``caps`` are enforced all the same.
    """
    _require_aware(now)
    if smart_sending_hours > 0 and _count_since(
        recent_marketing_sends, now - timedelta(hours=smart_sending_hours)
    ):
        return _refuse("smart_sending")
    if not _caps_hold(now, recent_marketing_sends, legal_caps):
        return _refuse("legal_cap")
    if not _caps_hold(now, recent_marketing_sends, caps):
        return _refuse("frequency_cap")
    return ALLOWED


def check_usage_caps(
    *,
    sent_today: int,
    sent_month: int,
    spend_today: Decimal,
    spend_month: Decimal,
    next_cost: Decimal,
    daily_limit: int | None,
    monthly_limit: int | None,
    daily_spend: Decimal | None,
    monthly_spend: Decimal | None,
) -> CapVerdict:
    """The shop's own volume and budget limits; None means no limit.

    Count limits allow the send while fewer than the limit were sent; spend limits allow it when
    the spend after this message stays at or under the limit.
    """
    if daily_limit is not None and sent_today >= daily_limit:
        return _refuse("daily_cap")
    if monthly_limit is not None and sent_month >= monthly_limit:
        return _refuse("monthly_cap")
    if daily_spend is not None and spend_today + next_cost > daily_spend:
        return _refuse("daily_spend_cap")
    if monthly_spend is not None and spend_month + next_cost > monthly_spend:
        return _refuse("monthly_spend_cap")
    return ALLOWED
