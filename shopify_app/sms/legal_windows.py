"""Legal sending windows for marketing texts, as data with sources.

Sources disagree in places; where they do, the table takes the strictest reading (the cost of a
text sent too late is $500-1 500 per message in a US class action). Times are the recipient's
local time; a window's end is exclusive (a window ending 21:00 allows 20:59:59 but not 21:00).
This is an engineering summary, not legal advice: have counsel review the table, and change the
data here rather than the code in ``rules.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, time, timedelta
from functools import lru_cache


@dataclass(frozen=True)
class Window:
    start: time
    end: time  # exclusive

    def __post_init__(self) -> None:
        # Windows never wrap midnight: legal ones do not, and a merchant can only narrow them.
        if not self.start < self.end:
            raise ValueError(f"window start {self.start} must be before end {self.end}")

    def contains(self, moment: time) -> bool:
        return self.start <= moment < self.end


@dataclass(frozen=True)
class LegalRule:
    jurisdiction: str
    days: tuple[Window | None, ...]  # Monday..Sunday; None = no marketing texts that day
    no_public_holidays: bool
    max_per_24h: int | None  # at most this many marketing texts per rolling 24 hours
    source: str


def _w(start_hour: int, end_hour: int) -> Window:
    return Window(time(start_hour), time(end_hour))


def _every_day(window: Window) -> tuple[Window | None, ...]:
    return (window,) * 7


FEDERAL_US = LegalRule(
    jurisdiction="US",
    days=_every_day(_w(8, 21)),
    no_public_holidays=False,
    max_per_24h=None,
    source="TCPA, 47 CFR 64.1200(c)(1): no telephone solicitation before 8 a.m. or after 9 p.m. "
    "local time at the called party's location; courts apply it to texts.",
)

# Countries without an entry get the federal US hours: a sane default for civil hours.
DEFAULT_RULE = LegalRule(
    jurisdiction="*",
    days=FEDERAL_US.days,
    no_public_holidays=False,
    max_per_24h=None,
    source="No country rule recorded; the US federal window is used as a conservative default.",
)

US_STATE_RULES: dict[str, LegalRule] = {
    "FL": LegalRule(
        "US-FL",
        _every_day(_w(8, 20)),
        False,
        3,
        "Florida Telephone Solicitation Act, Fla. Stat. 501.059 as amended in 2021 (and the "
        "Florida Telemarketing Act, 501.616(6)): not before 8 a.m. or after 8 p.m.; at most 3 "
        "calls/texts on the same subject per 24 hours; a Florida area code is presumed to be "
        "a Florida resident.",
    ),
    "OK": LegalRule(
        "US-OK",
        _every_day(_w(8, 20)),
        False,
        3,
        "Oklahoma Telephone Solicitation Act of 2022, 15 O.S. 775C.4: 8 a.m.-8 p.m., at most 3 "
        "per 24 hours on the same subject; an Oklahoma area code is presumed an Oklahoma "
        "resident.",
    ),
    "MD": LegalRule(
        "US-MD",
        _every_day(_w(8, 20)),
        False,
        3,
        "Maryland Stop the Spam Calls Act of 2023, Md. Code Com. Law 14-4501 ff.: 8 a.m.-8 p.m., "
        "at most 3 per 24 hours on the same subject (strictest reading applied to all "
        "marketing texts).",
    ),
    "CT": LegalRule(
        "US-CT",
        _every_day(_w(9, 20)),
        False,
        None,
        "Connecticut Gen. Stat. 42-288a as amended by Public Act 23-98: no telephonic sales "
        "calls (texts included) before 9 a.m. or after 8 p.m.",
    ),
    "TX": LegalRule(
        "US-TX",
        (_w(9, 21),) * 6 + (_w(12, 21),),
        False,
        None,
        "Texas Bus. & Com. Code 301.051: 9 a.m.-9 p.m. Monday-Saturday, noon-9 p.m. Sunday.",
    ),
    "WA": LegalRule(
        "US-WA",
        _every_day(_w(8, 20)),
        False,
        None,
        "Washington RCW 19.158.040(2): commercial telephone solicitors may not reach a person "
        "before 8 a.m. or after 8 p.m.; applied to texts under the strictest reading. "
        "(Washington also requires prior affirmative consent, which the consent flow handles.)",
    ),
}

COUNTRY_RULES: dict[str, LegalRule] = {
    "US": FEDERAL_US,
    "FR": LegalRule(
        "FR",
        (_w(8, 22),) * 6 + (None,),
        True,
        None,
        "AF2M Business Messaging charter (operators' rules for SMS marketing, binding through "
        "the French carriers): messages only on 'jours ouvrables' (Monday-Saturday except public "
        "holidays) between 08:00 and 22:00. Some providers quote 08:00-20:00; merchants can "
        "narrow the window.",
    ),
}


def rule_for(country: str | None, state: str | None) -> LegalRule:
    country = (country or "").upper()
    if country == "US" and state:
        return US_STATE_RULES.get(state.upper(), FEDERAL_US)
    return COUNTRY_RULES.get(country, DEFAULT_RULE)


def easter_sunday(year: int) -> date:
    """Gregorian Easter Sunday (anonymous Gregorian algorithm, Meeus/Jones/Butcher)."""
    a = year % 19
    b, c = divmod(year, 100)
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    leap = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * leap) // 451
    month, day = divmod(h + leap - 7 * m + 114, 31)
    return date(year, month, day + 1)


@lru_cache(maxsize=64)
def french_public_holidays(year: int) -> frozenset[date]:
    """The eleven national public holidays (Code du travail L3133-1), plus Good Friday and
    26 December, which are public holidays in Alsace-Moselle: a French mobile number does not
    say where its owner lives, so the strictest reading skips them everywhere."""
    easter = easter_sunday(year)
    fixed = [(1, 1), (5, 1), (5, 8), (7, 14), (8, 15), (11, 1), (11, 11), (12, 25), (12, 26)]
    movable = [
        easter - timedelta(days=2),  # Good Friday (Alsace-Moselle)
        easter + timedelta(days=1),  # Easter Monday
        easter + timedelta(days=39),  # Ascension Thursday
        easter + timedelta(days=50),  # Whit Monday
    ]
    return frozenset([date(year, m, d) for m, d in fixed] + movable)


PUBLIC_HOLIDAYS = {"FR": french_public_holidays}


def is_public_holiday(country: str, day: date) -> bool:
    holidays = PUBLIC_HOLIDAYS.get(country.upper())
    return bool(holidays and day in holidays(day.year))


# US area codes of the states with stricter rules, complete as of NANPA's 2025 assignments
# (checked against the geocoding data in phonenumbers 9.0.43; a unit test keeps them in step).
# FL, OK and others presume a number with an in-state area code belongs to a resident.
_STATE_AREA_CODES: dict[str, tuple[str, ...]] = {
    "FL": (
        "239", "305", "321", "324", "352", "386", "407", "448", "561", "645", "656", "689",
        "727", "728", "754", "772", "786", "813", "850", "863", "904", "941", "954",
    ),
    "OK": ("405", "539", "572", "580", "918"),
    "MD": ("227", "240", "301", "410", "443", "667"),
    "CT": ("203", "475", "860", "959"),
    "TX": (
        "210", "214", "254", "281", "325", "346", "361", "409", "430", "432", "469", "512",
        "682", "713", "726", "737", "806", "817", "830", "832", "903", "915", "936", "940",
        "945", "956", "972", "979",
    ),
    "WA": ("206", "253", "360", "425", "509", "564"),
}  # fmt: skip

AREA_CODE_STATE: dict[str, str] = {
    code: state for state, codes in _STATE_AREA_CODES.items() for code in codes
}
