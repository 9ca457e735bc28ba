"""The app factory, configuration validation and the health endpoint."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from shopify_app.config import ConfigError, load_settings
from shopify_app.extensions import db
from shopify_app.models import Shop


def test_healthz_reports_database_and_redis(client) -> None:
    """/healthz answers 200 when the database and Redis both answer."""
    resp = client.get("/healthz")
    assert resp.status_code == 200
    assert resp.get_json() == {"status": "ok", "checks": {"database": "ok", "redis": "ok"}}


@pytest.mark.parametrize(
    "missing", ["SHOPIFY_API_SECRET", "SECRET_KEY", "DATABASE_URL", "REDIS_URL", "APP_URL"]
)
def test_production_refuses_to_start_without_a_required_variable(missing: str) -> None:
    """A production start without a required variable fails with a message naming it."""
    env = {
        "TIDINGS_ENV": "production",
        "SHOPIFY_API_KEY": "k",
        "SHOPIFY_API_SECRET": "s",
        "SECRET_KEY": "x" * 32,
        "DATABASE_URL": "postgresql://db/x",
        "REDIS_URL": "redis://r",
        "APP_URL": "https://app.example.com",
        "TOKEN_ENCRYPTION_KEYS": "k" * 44,
        "TWILIO_ACCOUNT_SID": "AC1",
        "TWILIO_AUTH_TOKEN": "t",
        "TWILIO_FROM_NUMBER": "+15005550006",
    }
    load_settings(env)  # complete: starts
    del env[missing]
    with pytest.raises(ConfigError, match=missing):
        load_settings(env)


def test_production_cannot_enable_dev_login() -> None:
    """DEV_LOGIN (the loopback sign-in without Shopify) is refused in production."""
    env = {
        "TIDINGS_ENV": "production",
        "SHOPIFY_API_KEY": "k",
        "SHOPIFY_API_SECRET": "s",
        "SECRET_KEY": "x",
        "DATABASE_URL": "postgresql://db/x",
        "REDIS_URL": "redis://r",
        "APP_URL": "https://a",
        "TOKEN_ENCRYPTION_KEYS": "k",
        "DEV_LOGIN": "true",
        "TWILIO_ACCOUNT_SID": "AC1",
        "TWILIO_AUTH_TOKEN": "t",
        "TWILIO_FROM_NUMBER": "+1500",
    }
    with pytest.raises(ConfigError, match="DEV_LOGIN"):
        load_settings(env)


def test_booleans_are_parsed_strictly() -> None:
    """A boolean setting that is not a boolean word stops start-up."""
    with pytest.raises(ConfigError, match="DEV_LOGIN"):
        load_settings({"DEV_LOGIN": "maybe"})


def test_development_defaults_need_nothing_installed() -> None:
    """Without any environment the app runs on SQLite, embedded Redis and the dev outbox."""
    s = load_settings({})
    assert s.DATABASE_URL.startswith("sqlite:///")
    assert s.REDIS_URL == ""
    assert s.SMS_PROVIDER == "outbox"
    assert s.APP_URL == "http://localhost:8000"
    assert load_settings({"PORT": "9001"}).APP_URL == "http://localhost:9001"


def test_shop_settings_merge_defaults(shop: Shop) -> None:
    """A shop stores only what it changed; everything else comes from the defaults."""
    shop.settings["quiet_hours"] = {"start": "09:00"}
    db.session.commit()
    reloaded = db.session.scalars(select(Shop).where(Shop.id == shop.id)).one()
    assert reloaded.setting("quiet_hours") == {"start": "09:00", "end": "21:00"}
    assert reloaded.setting("smart_sending_hours") == 12
