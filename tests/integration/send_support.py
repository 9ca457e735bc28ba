"""Helpers for the send-pipeline tests: the Twilio stand-in wired in as the provider, rows to
send, and time zones where it is day or night right now (quiet hours depend on the clock)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from sqlalchemy import inspect, select

from shopify_app.extensions import db
from shopify_app.models import Campaign, Message, Shop, Subscriber, utcnow
from shopify_app.providers import set_provider
from shopify_app.providers.twilio import TwilioProvider
from tests.fakes.twilio_server import DEFAULT_ACCOUNT_SID, FakeTwilio

FROM_NUMBER = "+15005550006"


@pytest.fixture(scope="module")
def _fake_server() -> Iterator[FakeTwilio]:
    fake = FakeTwilio(auth_token="test-twilio-token", seed=7)
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def fake_twilio(app: Flask, _fake_server: FakeTwilio) -> Iterator[FakeTwilio]:
    """The stand-in, reset, installed as the app's provider for this test."""
    _fake_server.reset()
    _fake_server.configure(
        latency_ms=0,
        error_rate=0,
        fail_numbers={},
        drop_rate=0,
        drop_after_accept_numbers=(),
        drop_mode="hang",
        drop_hang_s=30,
        auto_callbacks=(),
        delivery_failures={},
    )
    set_provider(app, make_provider(_fake_server))
    yield _fake_server
    set_provider(app, None)


def make_provider(fake: FakeTwilio, **overrides: Any) -> TwilioProvider:
    options: dict[str, Any] = {"base_url": fake.url, "timeout": 5.0, "from_number": FROM_NUMBER}
    options.update(overrides)
    return TwilioProvider(DEFAULT_ACCOUNT_SID, "test-twilio-token", **options)


def zone_with_local_hour(lo: int, hi: int) -> str:
    """A fixed-offset zone where the local hour is now within [lo, hi)."""
    now = utcnow()
    for offset in range(-12, 15):
        name = "Etc/GMT" if offset == 0 else f"Etc/GMT{'-' if offset > 0 else '+'}{abs(offset)}"
        local = now.astimezone(ZoneInfo(name))
        if lo <= local.hour < hi:
            return name
    raise AssertionError(f"no zone has a local hour in [{lo}, {hi})")


def day_zone() -> str:
    return zone_with_local_hour(11, 16)  # hours before 20:00/21:00 quiet hours


def night_zone() -> str:
    return zone_with_local_hour(1, 5)


def id_of(row: Any) -> int:
    """A row's id, even after a job run detached it from the session."""
    return row if isinstance(row, int) else inspect(row).identity[0]


def fast_shop(shop: Shop, **settings: Any) -> Shop:
    """Lift the default 10 messages/s so tests do not wait on the rate limiter."""
    shop = db.session.get(Shop, id_of(shop))
    merged = {"messages_per_second": 10_000, **settings}
    for key, value in merged.items():
        shop.settings[key] = value
    db.session.commit()
    return shop


def add_subscribers(
    shop: Shop, n: int, *, zone: str | None = None, start: int = 0, **fields: Any
) -> list[Subscriber]:
    zone = zone or day_zone()
    subs = []
    for i in range(start, start + n):
        sub = Subscriber(
            shop_id=id_of(shop),
            phone=f"+1202555{i:04d}",
            status=fields.get("status", "subscribed"),
            source="widget",
            country=fields.get("country", "US"),
            region=fields.get("region"),
            timezone=zone,
            first_name=fields.get("first_name", f"Ann{i}"),
            subscribed_at=utcnow(),
        )
        db.session.add(sub)
        subs.append(sub)
    db.session.commit()
    return subs


def add_campaign(shop: Shop, body: str = "Hi {first_name}! Sale today.", **fields: Any) -> Campaign:
    campaign = Campaign(
        shop_id=id_of(shop),
        name=fields.pop("name", "Sale"),
        body=body,
        status=fields.pop("status", "sending"),
        **fields,
    )
    db.session.add(campaign)
    db.session.commit()
    return campaign


def add_campaign_messages(
    shop: Shop, campaign: Campaign, subs: list[Subscriber], *, due_in: timedelta = timedelta(0)
) -> list[Message]:
    now = utcnow()
    rows = [
        Message(
            shop_id=id_of(shop),
            subscriber_id=id_of(s),
            kind="campaign",
            campaign_id=id_of(campaign),
            status="pending",
            due_at=now + due_in,
        )
        for s in subs
    ]
    db.session.add_all(rows)
    db.session.commit()
    return rows


def messages(**where: Any) -> list[Message]:
    db.session.expire_all()
    query = select(Message).order_by(Message.id)
    for key, value in where.items():
        query = query.where(getattr(Message, key) == value)
    return list(db.session.scalars(query))


def reload(row: Any) -> Any:
    db.session.expire_all()
    return db.session.get(type(row), row.id)
