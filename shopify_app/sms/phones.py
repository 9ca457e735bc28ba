"""Phone numbers: normalize what a shopper typed, find its zones and state, mask it for logs."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberType, ValidationResult
from phonenumbers import timezone as pn_timezone

from .legal_windows import AREA_CODE_STATE

# Types that can receive texts. US and CA numbers are nearly all FIXED_LINE_OR_MOBILE because
# their numbering plan does not tell the two apart; Twilio's 21614/30006 catch real landlines.
TEXTABLE_TYPES = frozenset(
    {
        PhoneNumberType.MOBILE,
        PhoneNumberType.FIXED_LINE_OR_MOBILE,
        PhoneNumberType.PERSONAL_NUMBER,
    }
)

TOO_SHORT = "That number looks too short."
TOO_LONG = "That number looks too long."
INVALID = "That doesn't look like a valid phone number."
NEED_COUNTRY_CODE = "Please include your country code."
EMPTY = "Please enter a phone number."
LANDLINE = "That number can't receive texts (it is a landline)."
NOT_TEXTABLE = "That number can't receive texts."

_TYPE_REASONS = {
    PhoneNumberType.FIXED_LINE: LANDLINE,
    PhoneNumberType.TOLL_FREE: "That number can't receive texts (it is a toll-free number).",
    PhoneNumberType.PREMIUM_RATE: "That number can't receive texts (it is a premium-rate number).",
    PhoneNumberType.SHARED_COST: "That number can't receive texts (it is a shared-cost number).",
    PhoneNumberType.VOIP: "That number can't receive texts (it is an internet phone number).",
    PhoneNumberType.PAGER: "That number can't receive texts (it is a pager).",
}

_PARSE_REASONS = {
    NumberParseException.INVALID_COUNTRY_CODE: NEED_COUNTRY_CODE,
    NumberParseException.NOT_A_NUMBER: INVALID,
    NumberParseException.TOO_SHORT_AFTER_IDD: TOO_SHORT,
    NumberParseException.TOO_SHORT_NSN: TOO_SHORT,
    NumberParseException.TOO_LONG: TOO_LONG,
}

_LENGTH_REASONS = {
    ValidationResult.TOO_SHORT: TOO_SHORT,
    ValidationResult.TOO_LONG: TOO_LONG,
}

_UNKNOWN_ZONE = "Etc/Unknown"
_FORMATTING_RE = re.compile(r"[\s().\-/\u00a0\u2010-\u2015]")


@dataclass(frozen=True)
class PhoneResult:
    ok: bool
    e164: str | None = None
    country: str | None = None
    timezones: tuple[str, ...] = ()
    state: str | None = None
    reason: str | None = None  # a sentence a shopper understands, when not ok


def _refuse(reason: str) -> PhoneResult:
    return PhoneResult(ok=False, reason=reason)


def _prepare(raw: str) -> str:
    compact = _FORMATTING_RE.sub("", raw.strip())
    # "0044 7400 123456" is how much of the world writes "+44"; no national number starts "00".
    if compact.startswith("00"):
        return "+" + compact[2:]
    return compact


def _zones(number: phonenumbers.PhoneNumber) -> tuple[str, ...]:
    return tuple(z for z in pn_timezone.time_zones_for_number(number) if z != _UNKNOWN_ZONE)


# A pure function of its arguments with an immutable result, and phonenumbers' parse and
# validation is the heaviest step of ingesting an order (its phone is read up to three times).
@lru_cache(maxsize=8192)
def normalize(raw: str, default_region: str | None = "US") -> PhoneResult:
    """Parse a number as typed; accept it only if it is valid and can receive texts."""
    prepared = _prepare(raw or "")
    if not prepared:
        return _refuse(EMPTY)
    try:
        number = phonenumbers.parse(prepared, default_region)
    except NumberParseException as exc:
        reason = _PARSE_REASONS.get(exc.error_type, INVALID)
        # With a "+" the shopper did give a country code, just not a real one.
        return _refuse(INVALID if reason == NEED_COUNTRY_CODE and prepared[0] == "+" else reason)
    length = phonenumbers.is_possible_number_with_reason(number)
    if length == ValidationResult.INVALID_COUNTRY_CODE:
        return _refuse(INVALID)
    if length in _LENGTH_REASONS:
        return _refuse(_LENGTH_REASONS[length])
    if not phonenumbers.is_valid_number(number):
        return _refuse(INVALID)
    kind = phonenumbers.number_type(number)
    if kind not in TEXTABLE_TYPES:
        return _refuse(_TYPE_REASONS.get(kind, NOT_TEXTABLE))
    country = phonenumbers.region_code_for_number(number)
    national = str(number.national_number)
    return PhoneResult(
        ok=True,
        e164=phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164),
        country=country if country and country.isalpha() else None,  # "001" = non-geographic
        timezones=_zones(number),
        state=AREA_CODE_STATE.get(national[:3]) if country == "US" else None,
    )


def timezones_for(e164: str, fallback: str) -> tuple[str, ...]:
    """The number's IANA zones, or ``(fallback,)`` when the number or its zones are unknown."""
    try:
        zones = _zones(phonenumbers.parse(e164, None))
    except NumberParseException:
        return (fallback,)
    return zones or (fallback,)


def mask(e164: str) -> str:
    """Keep the country code and the last four digits: "+16502534567" -> "+1******4567"."""
    digits = re.sub(r"\D", "", e164 or "")
    try:
        country_code = str(phonenumbers.parse(e164, None).country_code)
    except NumberParseException:
        country_code = ""
    if not digits.startswith(country_code):
        country_code = ""
    rest = digits[len(country_code) :]
    # Short strings would be (nearly) whole numbers after masking: hide everything then.
    visible = 4 if len(rest) >= 8 else 0
    shown = rest[len(rest) - visible :] if visible else ""
    prefix = f"+{country_code}" if country_code else ""
    return prefix + "*" * (len(rest) - visible) + shown
