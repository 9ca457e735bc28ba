"""Send-time checks: consent for the message's kind, quiet hours, caps. The rules themselves
live in sms/rules.py; this module gathers what they need from a shop and a subscriber.

Kinds: campaign and flow texts are marketing (subscribed numbers only, quiet hours, smart
sending, frequency and legal caps, the shop's usage caps); transactional texts (opt-in
confirmation, welcome) answer the shopper's own action, so no quiet hours or caps, but never to
an opted-out number; compliance texts (the one opt-out confirmation, HELP replies) always go.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import phonenumbers
from sqlalchemy import case, func, select

from shopify_app.extensions import db
from shopify_app.models import Message, Shop
from shopify_app.providers.base import Sender
from shopify_app.services.bulk import in_ids
from shopify_app.services.ratelimit import per_second
from shopify_app.sms import rules
from shopify_app.sms.encoding import DEFAULT_PRICE_TABLE, segment_price
from shopify_app.sms.legal_windows import Window
from shopify_app.sms.phones import timezones_for

MARKETING_KINDS = frozenset({"campaign", "flow"})
# A text handed over with less time than this before quiet hours waits for the next window.
MIN_VALIDITY_SECONDS = 300
LEGAL_WINDOW = timedelta(hours=24)


@dataclass(frozen=True)
class ShopRules:
    """A shop's sending settings, parsed once per batch."""

    window: Window
    smart_sending_hours: int
    caps: tuple[tuple[int, timedelta], ...]
    daily_messages: int | None
    monthly_messages: int | None
    daily_spend: Decimal | None
    monthly_spend: Decimal | None
    price_table: dict[str, Decimal | str]
    max_segments: int
    rate: float
    sender: Sender
    timezone: str
    country: str

    @property
    def has_usage_caps(self) -> bool:
        return any(
            v is not None
            for v in (
                self.daily_messages,
                self.monthly_messages,
                self.daily_spend,
                self.monthly_spend,
            )
        )

    @property
    def history_window(self) -> timedelta:
        """How far back marketing history matters for this shop's caps."""
        spans = [timedelta(hours=max(self.smart_sending_hours, 0)), LEGAL_WINDOW]
        spans += [window for _, window in self.caps]
        return max(spans)


def _clock(value: Any, default: time) -> time:
    try:
        hours, minutes = str(value).split(":")[:2]
        return time(int(hours), int(minutes))
    except (TypeError, ValueError):
        return default


def _optional_int(value: Any) -> int | None:
    if value is None or value == "":
        return None
    return int(value)


def _optional_money(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    return Decimal(str(value))


def shop_rules(shop: Shop, config: dict[str, Any]) -> ShopRules:
    settings = shop.config
    quiet = settings.get("quiet_hours") or {}
    start = _clock(quiet.get("start"), time(8))
    end = _clock(quiet.get("end"), time(21))
    window = Window(start, end) if start < end else Window(time(8), time(21))
    caps = tuple(
        (int(c["count"]), timedelta(hours=float(c["hours"])))
        for c in settings.get("frequency_caps") or []
        if int(c.get("count") or 0) > 0 and float(c.get("hours") or 0) > 0
    )
    usage = settings.get("usage_caps") or {}
    table: dict[str, Decimal | str] = dict(DEFAULT_PRICE_TABLE)
    table.update({str(k).upper(): str(v) for k, v in (settings.get("price_table") or {}).items()})
    sender = settings.get("sender") or {}
    return ShopRules(
        window=window,
        smart_sending_hours=int(settings.get("smart_sending_hours") or 0),
        caps=caps,
        daily_messages=_optional_int(usage.get("daily_messages")),
        monthly_messages=_optional_int(usage.get("monthly_messages")),
        daily_spend=_optional_money(usage.get("daily_spend")),
        monthly_spend=_optional_money(usage.get("monthly_spend")),
        price_table=table,
        max_segments=int(settings.get("max_segments") or 4),
        rate=per_second(settings.get("messages_per_second")),
        sender=Sender(
            messaging_service_sid=sender.get("messaging_service_sid")
            or (config.get("TWILIO_MESSAGING_SERVICE_SID") if not sender.get("from_number") else "")
            or "",
            from_number=sender.get("from_number") or config.get("TWILIO_FROM_NUMBER") or "",
            shop_id=shop.id,
        ),
        timezone=shop.timezone or "UTC",
        country=shop.country or "US",
    )


# --- consent ------------------------------------------------------------------------------


def consent_refusal(kind: str, subscriber: Any) -> str | None:
    """Why this subscriber may not get a text of `kind` now, or None."""
    if subscriber is None:
        return "subscriber_missing"
    if not subscriber.phone:
        return "redacted"
    if kind == "compliance":
        return None
    if subscriber.status == "unsubscribed":
        return "unsubscribed"
    if subscriber.phone_invalid:
        return "phone_invalid"
    if kind in MARKETING_KINDS and subscriber.status != "subscribed":
        return "not_subscribed"
    return None


# --- where the subscriber is --------------------------------------------------------------


@dataclass(frozen=True)
class Place:
    zones: tuple[str, ...]
    country: str | None
    state: str | None


@lru_cache(maxsize=65536)
def _country_of(e164: str) -> str | None:
    try:
        region = phonenumbers.region_code_for_number(phonenumbers.parse(e164, None))
    except phonenumbers.NumberParseException:
        return None
    return region if region and region.isalpha() else None


@lru_cache(maxsize=65536)
def _zones_of(e164: str, fallback: str) -> tuple[str, ...]:
    return tuple(timezones_for(e164, fallback))


def place_of(subscriber: Any, shop: ShopRules) -> Place:
    zones = tuple(z for z in (subscriber.timezone or "").split(",") if z)
    if not zones:
        zones = _zones_of(subscriber.phone, shop.timezone)
    country = subscriber.country or _country_of(subscriber.phone) or shop.country
    return Place(zones=zones, country=country, state=subscriber.region)


# --- quiet hours --------------------------------------------------------------------------


@dataclass(frozen=True)
class Timing:
    defer_until: datetime | None  # not now: back to pending until then
    validity: int  # ValidityPeriod when sending now
    impossible: bool = False  # no allowed minute within rules' search horizon


def marketing_timing(now: datetime, place: Place, shop: ShopRules) -> Timing:
    """Send now (with how long Twilio may hold it), or the next allowed minute."""
    validity = rules.validity_seconds(now, place.zones, shop.window, place.country, place.state)
    if validity >= MIN_VALIDITY_SECONDS:
        return Timing(None, validity)
    # Inside quiet hours (validity 0) or too close to them: wait for the next window.
    after = now + timedelta(seconds=validity + 1) if validity else now
    try:
        until = rules.next_allowed(after, place.zones, shop.window, place.country, place.state)
    except ValueError:
        return Timing(None, 0, impossible=True)
    return Timing(until, 0)


# --- caps ---------------------------------------------------------------------------------


def subscriber_verdict(
    now: datetime, history: Sequence[datetime], place: Place, shop: ShopRules
) -> rules.CapVerdict:
    return rules.check_subscriber_caps(
        now,
        history,
        smart_sending_hours=shop.smart_sending_hours,
        caps=shop.caps,
        legal_caps=rules.legal_frequency_caps(place.country, place.state),
    )


def marketing_history(
    subscriber_ids: Sequence[int], since: datetime, exclude: Sequence[int] = ()
) -> dict[int, list[datetime]]:
    """Subscriber id -> when each marketing text since `since` was handed to the provider
    (texts being sent right now included: their sent_at is set before the hand-over)."""
    if not subscriber_ids:
        return {}
    query = select(Message.subscriber_id, Message.sent_at).where(
        in_ids(db.session, Message.subscriber_id, subscriber_ids),
        Message.sent_at > since,
        Message.kind.in_(MARKETING_KINDS),
    )
    if exclude:
        query = query.where(Message.id.not_in(exclude))
    history: dict[int, list[datetime]] = {}
    for sub_id, sent_at in db.session.execute(query):
        history.setdefault(sub_id, []).append(sent_at)
    return history


@dataclass
class Usage:
    sent_today: int
    sent_month: int
    spend_today: Decimal
    spend_month: Decimal
    next_day: datetime


def usage_of(shop_id: int, now: datetime, timezone: str) -> Usage:
    """The shop's sends and spend so far today and this month, in the shop's time zone."""
    tz = ZoneInfo(timezone)
    local = now.astimezone(tz)
    day_start = local.replace(hour=0, minute=0, second=0, microsecond=0)
    month_start = day_start.replace(day=1)
    next_day = day_start + timedelta(days=1)  # wall-clock arithmetic: local midnight
    today = Message.sent_at >= day_start
    row = db.session.execute(
        select(
            func.count(),
            func.coalesce(func.sum(Message.price), 0),
            func.coalesce(func.sum(case((today, 1), else_=0)), 0),
            func.coalesce(func.sum(case((today, Message.price), else_=0)), 0),
        ).where(Message.shop_id == shop_id, Message.sent_at >= month_start)
    ).one()
    return Usage(
        sent_today=int(row[2]),
        sent_month=int(row[0]),
        spend_today=Decimal(str(row[3] or 0)),
        spend_month=Decimal(str(row[1] or 0)),
        next_day=next_day.astimezone(now.tzinfo),
    )


def usage_verdict(usage: Usage, cost: Decimal, shop: ShopRules) -> rules.CapVerdict:
    return rules.check_usage_caps(
        sent_today=usage.sent_today,
        sent_month=usage.sent_month,
        spend_today=usage.spend_today,
        spend_month=usage.spend_month,
        next_cost=cost,
        daily_limit=shop.daily_messages,
        monthly_limit=shop.monthly_messages,
        daily_spend=shop.daily_spend,
        monthly_spend=shop.monthly_spend,
    )


def price_of(segments: int, place: Place, shop: ShopRules) -> Decimal:
    return segments * segment_price(place.country, shop.price_table)
