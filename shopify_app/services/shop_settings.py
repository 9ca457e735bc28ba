"""Merchant settings: validating a change, storing it, and the document the admin reads.

`validate_changes` takes any subset of the setting keys (a dict setting may be given in part:
`{"sender": {"from_number": "+1..."}}` keeps the messaging service SID) and answers the
normalised values and the errors by field path ("quiet_hours.start" -> a sentence the page shows
under that input). `save_changes` stores only what differs from the defaults, so later changes
of a default reach the shop. `settings_document` is the effective settings with their defaults
and the limits the inputs must respect (the legal sending window, the disclosures each consent
text must keep).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from datetime import date, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

import phonenumbers

from shopify_app.models import Shop
from shopify_app.models.shop import SHOP_SETTING_DEFAULTS
from shopify_app.sms.encoding import DEFAULT_PRICE_TABLE
from shopify_app.sms.keywords import CONFIRM_WORDS, HELP_WORDS, OPT_IN_WORDS, OPT_OUT_WORDS
from shopify_app.sms.legal_windows import Window, rule_for

Errors = dict[str, str]

# Each disclosure a text must keep: (what the merchant reads, pattern that finds it).
DISCLOSURES: dict[str, tuple[str, str]] = {
    "brand": ("the brand name or {brand}", ""),
    "recurring": ('"recurring automated marketing"', r"recurring\s+automated\s+marketing"),
    "frequency": ('the message frequency ("Msg frequency varies")', r"frequency"),
    "rates": ('"Msg & data rates may apply"', r"(msg|message)s?\s*(&|and)\s*data\s+rates"),
    "help": ("how to get HELP", r"\bHELP\b"),
    "stop": ("how to STOP", r"\bSTOP\b"),
    "condition": (
        '"Consent is not a condition of purchase"',
        r"not\s+a\s+condition\s+of\s+(any\s+)?purchase",
    ),
    "confirm": ('how to confirm ("Reply Y")', r"\b(Y|YES)\b"),
}
# Which disclosures each text must keep (TCPA/CTIA practice; see PLATFORM.md "Consent").
REQUIRED_DISCLOSURES: dict[str, tuple[str, ...]] = {
    "consent_text": ("brand", "recurring", "rates", "help", "stop", "condition"),
    "confirmation_text": ("brand", "confirm", "stop"),
    "welcome_text": ("brand", "recurring", "frequency", "rates", "help", "stop"),
    "help_text": ("brand", "stop"),
    "opt_out_text": ("brand",),
}

_HHMM = re.compile(r"^([01]?\d|2[0-4]):([0-5]\d)$")
_MESSAGING_SERVICE_SID = re.compile(r"^MG[0-9a-fA-F]{32}$")
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_COUNTRY = re.compile(r"^([A-Z]{2}|\*)$")
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_KEYWORD = re.compile(r"^[A-Z0-9]{2,20}$")
_CODE = re.compile(r"^[A-Za-z0-9_-]{3,40}$")
_PREFIX = re.compile(r"^[A-Z0-9]{0,12}$")
_RESERVED_KEYWORDS = OPT_OUT_WORDS | HELP_WORDS | OPT_IN_WORDS | CONFIRM_WORDS
MAX_PRICE = Decimal("5")  # per segment; anything above is a typo (cents typed as dollars)


# --------------------------------------------------------------------------- small checks
class _Invalid(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _text(value: Any, limit: int, *, required: bool = False) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise _Invalid("Enter text.")
    value = value.strip()
    if required and not value:
        raise _Invalid("This can't be empty.")
    if len(value) > limit:
        raise _Invalid(f"Use at most {limit} characters.")
    return value


def _int(value: Any, low: int, high: int) -> int:
    if isinstance(value, bool):
        raise _Invalid("Enter a whole number.")
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        raise _Invalid("Enter a whole number.") from None
    if not low <= number <= high:
        raise _Invalid(f"Enter a number from {low} to {high}.")
    return number


def _optional_int(value: Any, high: int) -> int | None:
    if value is None or value == "":
        return None
    return _int(value, 0, high)


def _decimal(value: Any, *, places: int, maximum: Decimal | None = None) -> str:
    if isinstance(value, bool | float):
        # Floats lose cents on the way in; the page sends strings.
        raise _Invalid('Enter an amount as text, like "0.0083".')
    try:
        number = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise _Invalid("Enter an amount, like 0.0083.") from None
    if not number.is_finite() or number < 0:
        raise _Invalid("Enter an amount of 0 or more.")
    if maximum is not None and number > maximum:
        raise _Invalid(f"That is more than {maximum}; check the decimal point.")
    if -number.as_tuple().exponent > places:  # type: ignore[operator]
        raise _Invalid(f"Use at most {places} decimal places.")
    return str(number)


def _optional_money(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return _decimal(value, places=2)


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _Invalid("Choose on or off.")
    return value


def _clock(value: Any) -> time:
    match = _HHMM.match(str(value or "").strip())
    if not match or (match.group(1) == "24" and match.group(2) != "00"):
        raise _Invalid("Enter a time as HH:MM, like 09:00.")
    hour, minute = int(match.group(1)), int(match.group(2))
    return time(23, 59, 59) if hour == 24 else time(hour, minute)


def _hhmm(moment: time) -> str:
    return "24:00" if moment == time(23, 59, 59) else moment.strftime("%H:%M")


def legal_window_for(country: str | None) -> Window:
    """The widest window the law allows in the shop's country on any day (state rules are the
    recipient's, applied at send time; this is only the outer bound a merchant may choose)."""
    windows = [w for w in rule_for(country, None).days if w is not None]
    return Window(min(w.start for w in windows), max(w.end for w in windows))


def _missing_disclosures(key: str, text: str, brand: str) -> list[str]:
    missing = []
    for name in REQUIRED_DISCLOSURES.get(key, ()):
        label, pattern = DISCLOSURES[name]
        if name == "brand":
            found = "{brand}" in text.replace(" ", "").lower() or (
                bool(brand) and brand.lower() in text.lower()
            )
        else:
            found = re.search(pattern, text, re.IGNORECASE) is not None
        if not found:
            missing.append(label)
    return missing


# --------------------------------------------------------------------------- per setting
def _sub(errors: Errors, path: str, check: Callable[[], Any]) -> Any:
    """Run one check, filing its message under `path` instead of raising."""
    try:
        return check()
    except _Invalid as exc:
        errors[path] = exc.message
        return None


def _sender(value: dict[str, Any], errors: Errors, shop: Shop) -> dict[str, Any]:
    sid = _sub(
        errors,
        "sender.messaging_service_sid",
        lambda: _text(value.get("messaging_service_sid"), 34),
    )
    number = _sub(errors, "sender.from_number", lambda: _text(value.get("from_number"), 16))
    if sid and not _MESSAGING_SERVICE_SID.match(sid):
        errors["sender.messaging_service_sid"] = (
            "A Messaging Service SID starts with MG followed by 32 letters and digits."
        )
    if number:
        number = number.replace(" ", "").replace("-", "")
        if not _E164.match(number) or not _valid_number(number):
            errors["sender.from_number"] = "Enter the number in E.164 form, like +14155550123."
    return {"messaging_service_sid": sid or "", "from_number": number or ""}


def _valid_number(e164: str) -> bool:
    try:
        return phonenumbers.is_valid_number(phonenumbers.parse(e164, None))
    except phonenumbers.NumberParseException:
        return False


def _quiet_hours(value: dict[str, Any], errors: Errors, shop: Shop) -> dict[str, Any]:
    start = _sub(errors, "quiet_hours.start", lambda: _clock(value.get("start")))
    end = _sub(errors, "quiet_hours.end", lambda: _clock(value.get("end")))
    if start is None or end is None:
        return {}
    legal = legal_window_for(shop.country)
    span = f"{_hhmm(legal.start)}–{_hhmm(legal.end)}"
    if start < legal.start:
        errors["quiet_hours.start"] = (
            f"The law allows marketing texts from {_hhmm(legal.start)} "
            f"({span}); you can only narrow that window."
        )
    if end > legal.end:
        errors["quiet_hours.end"] = (
            f"The law allows marketing texts until {_hhmm(legal.end)} "
            f"({span}); you can only narrow that window."
        )
    if start >= end:
        errors["quiet_hours.end"] = "The end must be after the start."
    elif not _opens_some_day(Window(start, end), shop.country):
        errors["quiet_hours.end"] = "This window never overlaps the legal sending hours."
    return {"start": _hhmm(start), "end": _hhmm(end)}


def _opens_some_day(window: Window, country: str | None) -> bool:
    from shopify_app.sms.rules import effective_window

    monday = date(2024, 1, 1)  # any week: only the weekday matters for the country rule
    return any(
        effective_window(window, country, None, monday + timedelta(days=d)) for d in range(7)
    )


def _frequency_caps(value: Any, errors: Errors, shop: Shop) -> list[dict[str, Any]]:
    if not isinstance(value, list) or len(value) > 5:
        errors["frequency_caps"] = "Give at most 5 caps."
        return []
    caps = []
    for i, cap in enumerate(value):
        cap = cap if isinstance(cap, dict) else {}
        count = _sub(
            errors, f"frequency_caps.{i}.count", lambda c=cap: _int(c.get("count"), 1, 1000)
        )
        hours = _sub(
            errors, f"frequency_caps.{i}.hours", lambda c=cap: _int(c.get("hours"), 1, 24 * 366)
        )
        caps.append({"count": count, "hours": hours})
    return caps


def _usage_caps(value: dict[str, Any], errors: Errors, shop: Shop) -> dict[str, Any]:
    return {
        "daily_messages": _sub(
            errors,
            "usage_caps.daily_messages",
            lambda: _optional_int(value.get("daily_messages"), 10**9),
        ),
        "monthly_messages": _sub(
            errors,
            "usage_caps.monthly_messages",
            lambda: _optional_int(value.get("monthly_messages"), 10**10),
        ),
        "daily_spend": _sub(
            errors, "usage_caps.daily_spend", lambda: _optional_money(value.get("daily_spend"))
        ),
        "monthly_spend": _sub(
            errors, "usage_caps.monthly_spend", lambda: _optional_money(value.get("monthly_spend"))
        ),
    }


def _attribution(value: dict[str, Any], errors: Errors, shop: Shop) -> dict[str, Any]:
    return {
        "click_window_days": _sub(
            errors,
            "attribution.click_window_days",
            lambda: _int(value.get("click_window_days"), 1, 30),
        ),
        "view_through": _sub(
            errors, "attribution.view_through", lambda: _bool(value.get("view_through"))
        ),
        "view_through_hours": _sub(
            errors,
            "attribution.view_through_hours",
            lambda: _int(value.get("view_through_hours"), 1, 168),
        ),
    }


def _price_table(value: Any, errors: Errors, shop: Shop) -> dict[str, str]:
    if not isinstance(value, dict):
        errors["price_table"] = "Give prices per country code."
        return {}
    table = {}
    for raw_country, price in value.items():
        country = str(raw_country).strip().upper()
        if not _COUNTRY.match(country):
            errors[f"price_table.{raw_country}"] = "Use a two-letter country code, or * for others."
            continue
        table[country] = _sub(
            errors,
            f"price_table.{raw_country}",
            lambda p=price: _decimal(p, places=5, maximum=MAX_PRICE),
        )
    return table


def _widget(value: dict[str, Any], errors: Errors, shop: Shop) -> dict[str, Any]:
    widget = dict(value)
    widget["enabled"] = _sub(errors, "widget.enabled", lambda: _bool(value.get("enabled")))
    widget["headline"] = _sub(
        errors, "widget.headline", lambda: _text(value.get("headline"), 80, required=True)
    )
    widget["body"] = _sub(errors, "widget.body", lambda: _text(value.get("body"), 240))
    widget["offer_text"] = (
        _sub(errors, "widget.offer_text", lambda: _text(value.get("offer_text"), 80)) or None
    )
    widget["button_label"] = _sub(
        errors, "widget.button_label", lambda: _text(value.get("button_label"), 30, required=True)
    )
    code = (
        _sub(errors, "widget.welcome_discount", lambda: _text(value.get("welcome_discount"), 40))
        or None
    )
    if code and not _CODE.match(code):
        errors["widget.welcome_discount"] = "A discount code has 3–40 letters, digits, - or _."
    widget["welcome_discount"] = code
    if "allowed_countries" in value:
        countries = value.get("allowed_countries") or []
        if not isinstance(countries, list) or not all(
            isinstance(c, str) and re.match(r"^[A-Za-z]{2}$", c) for c in countries
        ):
            errors["widget.allowed_countries"] = "List two-letter country codes."
        else:
            widget["allowed_countries"] = sorted({c.upper() for c in countries})
    return widget


def _join_keywords(value: Any, errors: Errors, shop: Shop) -> list[str]:
    if not isinstance(value, list) or len(value) > 10:
        errors["join_keywords"] = "List at most 10 keywords."
        return []
    words = []
    for word in value:
        word = str(word).strip().upper()
        if not _KEYWORD.match(word):
            errors["join_keywords"] = "A keyword is 2–20 letters or digits, no spaces."
        elif word in _RESERVED_KEYWORDS:
            errors["join_keywords"] = f"{word} is reserved for opt-out, help or confirmation."
        elif word not in words:
            words.append(word)
    return words


def _domains(value: Any, errors: Errors, shop: Shop) -> list[str]:
    if not isinstance(value, list) or len(value) > 20:
        errors["allowed_link_domains"] = "List at most 20 domains."
        return []
    domains = []
    for raw in value:
        domain = str(raw).strip().lower().removeprefix("https://").removeprefix("http://")
        domain = domain.rstrip("/")
        if not _DOMAIN.match(domain):
            errors["allowed_link_domains"] = f"{raw!s} is not a domain name like example.com."
        elif domain not in domains:
            domains.append(domain)
    return domains


def _disclosure_text(key: str, limit: int) -> Callable[[Any, Errors, Shop], str]:
    def check(value: Any, errors: Errors, shop: Shop) -> str:
        text = _sub(errors, key, lambda: _text(value, limit, required=True))
        if text is None:
            return ""
        missing = _missing_disclosures(key, text, shop.brand)
        if missing:
            errors[key] = "Keep the required disclosures: missing " + ", ".join(missing) + "."
        return text

    return check


def _prefix(value: Any) -> str:
    prefix = _text(value, 12).upper()
    if not _PREFIX.match(prefix):
        raise _Invalid("Use up to 12 letters and digits.")
    return prefix


def _rate(value: Any) -> str | int:
    text = _decimal(value, places=2, maximum=Decimal("1000"))
    if Decimal(text) <= 0:
        raise _Invalid("Enter a rate above 0.")
    number = Decimal(text)
    return int(number) if number == number.to_integral_value() else text


_SCALARS: dict[str, Callable[[Any], Any]] = {
    "brand_name": lambda v: _text(v, 40),
    "support_contact": lambda v: _text(v, 120),
    "smart_sending_hours": lambda v: _int(v, 0, 168),
    "max_segments": lambda v: _int(v, 1, 10),
    "footer_every_n": lambda v: _int(v, 0, 100),
    "footer_text": lambda v: _text(v, 60),
    "holdout_percent": lambda v: _int(v, 0, 50),
    "discount_prefix": _prefix,
    "messages_per_second": _rate,
}
_DICTS: dict[str, Callable[[dict[str, Any], Errors, Shop], Any]] = {
    "sender": _sender,
    "quiet_hours": _quiet_hours,
    "usage_caps": _usage_caps,
    "attribution": _attribution,
    "widget": _widget,
}
_LISTS: dict[str, Callable[[Any, Errors, Shop], Any]] = {
    "frequency_caps": _frequency_caps,
    "price_table": _price_table,
    "join_keywords": _join_keywords,
    "allowed_link_domains": _domains,
    **{key: _disclosure_text(key, 480) for key in REQUIRED_DISCLOSURES},
}


def validate_changes(shop: Shop, changes: dict[str, Any]) -> tuple[dict[str, Any], Errors]:
    """The normalised new values of `changes` (partial dicts merged with the current ones) and
    the errors by field path; empty errors means everything may be saved."""
    errors: Errors = {}
    current = shop.config
    values: dict[str, Any] = {}
    for key, value in changes.items():
        if key not in SHOP_SETTING_DEFAULTS:
            errors[key] = "There is no such setting."
        elif key in _SCALARS:
            values[key] = _sub(errors, key, lambda k=key, v=value: _SCALARS[k](v))
        elif key in _DICTS:
            if not isinstance(value, dict):
                errors[key] = "Give an object of settings."
                continue
            values[key] = _DICTS[key]({**current[key], **value}, errors, shop)
        else:
            values[key] = _LISTS[key](value, errors, shop)
    if "footer_every_n" in values or "footer_text" in values:
        every = values.get("footer_every_n", current["footer_every_n"])
        footer = values.get("footer_text", current["footer_text"])
        if every and not re.search(r"\bSTOP\b", footer or "", re.IGNORECASE):
            errors["footer_text"] = "The footer must say how to STOP."
    return values, errors


def save_changes(shop: Shop, values: dict[str, Any]) -> None:
    stored = dict(shop.settings or {})
    for key, value in values.items():
        if value == SHOP_SETTING_DEFAULTS[key]:
            stored.pop(key, None)
        else:
            stored[key] = copy.deepcopy(value)
    shop.settings = stored


def settings_document(shop: Shop) -> dict[str, Any]:
    legal = legal_window_for(shop.country)
    return {
        "shop": {
            "domain": shop.domain,
            "name": shop.name,
            "brand": shop.brand,
            "timezone": shop.timezone,
            "currency": shop.currency,
            "country": shop.country,
        },
        "settings": shop.config,
        "defaults": copy.deepcopy(SHOP_SETTING_DEFAULTS),
        "limits": {
            "legal_window": {"start": _hhmm(legal.start), "end": _hhmm(legal.end)},
            "required_disclosures": {
                key: [DISCLOSURES[name][0] for name in names]
                for key, names in REQUIRED_DISCLOSURES.items()
            },
        },
        "default_price_table": {k: str(v) for k, v in DEFAULT_PRICE_TABLE.items()},
    }
