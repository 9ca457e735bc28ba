"""Every setting, read from the environment, with development defaults.

Production is strict: a missing secret or service URL stops start-up with a message naming the
variable, rather than running on a development default by accident.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path

API_VERSION = "2026-10"

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}

PROJECT_ROOT = Path(__file__).resolve().parent.parent
INSTANCE_DIR = PROJECT_ROOT / "instance"


class ConfigError(RuntimeError):
    """A setting is missing or malformed; the message names the variable."""


def parse_bool(name: str, raw: str | None, default: bool) -> bool:
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"{name} must be a boolean (true/false/1/0), got {raw!r}")


def parse_int(name: str, raw: str | None, default: int) -> int:
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None


@dataclass
class Settings:
    """The application's settings. Field names are the Flask config keys."""

    ENV: str = "development"
    SECRET_KEY: str = "dev-secret-key-not-for-production"
    SHOPIFY_API_KEY: str = "dev-api-key"
    SHOPIFY_API_SECRET: str = "dev-api-secret"
    SHOPIFY_SCOPES: str = (
        "read_customers,write_customers,read_orders,write_discounts,write_app_proxy"
    )
    SHOPIFY_API_VERSION: str = API_VERSION
    SHOPIFY_ADMIN_BASE_URL: str = "https://{shop}"
    # Fernet key(s), comma separated, newest first; derived from SECRET_KEY in development.
    TOKEN_ENCRYPTION_KEYS: str = ""
    DATABASE_URL: str = ""
    REDIS_URL: str = ""
    PORT: int = 8000
    APP_URL: str = ""
    TWILIO_ACCOUNT_SID: str = ""
    TWILIO_AUTH_TOKEN: str = ""
    TWILIO_MESSAGING_SERVICE_SID: str = ""
    TWILIO_FROM_NUMBER: str = ""
    TWILIO_API_BASE_URL: str = "https://api.twilio.com"
    TWILIO_TIMEOUT_SECONDS: int = 10
    SMS_PROVIDER: str = ""  # "twilio" or "outbox"; chosen from the credentials when empty
    DEV_LOGIN: bool = False
    DEMO_SHOP: str = "tidings-demo.myshopify.com"
    SCHEDULER_INTERVAL_SECONDS: int = 5
    SEND_BATCH_SIZE: int = 500
    SEND_CONCURRENCY: int = 32
    # Batch loops per send job on PostgreSQL (SKIP LOCKED keeps their rows apart).
    SEND_LOOPS: int = 2
    # A claimed message not finished within this many seconds is reconciled with the provider.
    SEND_LEASE_SECONDS: int = 300
    # Tries (429, 5xx, unknown outcomes) before a message is failed for good.
    SEND_MAX_ATTEMPTS: int = 10
    LOG_LEVEL: str = "INFO"
    TESTING: bool = False
    extra: dict = field(default_factory=dict)

    @property
    def is_production(self) -> bool:
        return self.ENV == "production"

    def to_flask(self) -> dict:
        values = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"}
        values.update(self.extra)
        values["SQLALCHEMY_DATABASE_URI"] = self.DATABASE_URL
        values["SQLALCHEMY_ENGINE_OPTIONS"] = engine_options(self.DATABASE_URL)
        values["API_TITLE"] = "Tidings API"
        values["API_VERSION"] = "1"
        values["OPENAPI_VERSION"] = "3.0.3"
        values["OPENAPI_URL_PREFIX"] = "/api"
        values["OPENAPI_JSON_PATH"] = "openapi.json"
        return values


_REQUIRED_IN_PRODUCTION = (
    "SHOPIFY_API_KEY",
    "SHOPIFY_API_SECRET",
    "SECRET_KEY",
    "DATABASE_URL",
    "REDIS_URL",
    "APP_URL",
    "TOKEN_ENCRYPTION_KEYS",
)
_BOOLS = {"DEV_LOGIN", "TESTING"}
_INTS = {
    "PORT",
    "TWILIO_TIMEOUT_SECONDS",
    "SCHEDULER_INTERVAL_SECONDS",
    "SEND_BATCH_SIZE",
    "SEND_CONCURRENCY",
    "SEND_LOOPS",
    "SEND_LEASE_SECONDS",
    "SEND_MAX_ATTEMPTS",
}


def engine_options(url: str) -> dict:
    if url.startswith("sqlite"):
        # Web, worker and scheduler share one file in development: wait for locks, not fail.
        return {"connect_args": {"timeout": 30, "check_same_thread": False}}
    # JIT compiling costs more than our queries run (a segment count over 100k subscribers: 1.8 s
    # compiling, 0.1 s running); short analytical queries are all this app issues.
    return {
        "pool_pre_ping": True,
        "pool_size": 10,
        "max_overflow": 20,
        "connect_args": {"options": "-c jit=off"},
    }


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Build settings from an environment mapping (os.environ by default) and validate them."""
    env = os.environ if env is None else env
    settings = Settings()
    settings.ENV = env.get("TIDINGS_ENV", env.get("FLASK_ENV", "development")).strip().lower()
    if settings.ENV not in {"development", "production", "test"}:
        raise ConfigError(
            f"TIDINGS_ENV must be development, production or test, got {settings.ENV!r}"
        )
    for f in fields(Settings):
        name = f.name
        if name in {"ENV", "extra"} or name not in env:
            continue
        raw = env[name]
        if name in _BOOLS:
            setattr(settings, name, parse_bool(name, raw, getattr(settings, name)))
        elif name in _INTS:
            setattr(settings, name, parse_int(name, raw, getattr(settings, name)))
        else:
            setattr(settings, name, raw.strip())
    if "DEV_LOGIN" not in env:
        settings.DEV_LOGIN = settings.ENV == "development"
    _fill_development_defaults(settings)
    validate(settings, env)
    return settings


def _fill_development_defaults(settings: Settings) -> None:
    if not settings.APP_URL:
        settings.APP_URL = f"http://localhost:{settings.PORT}"
    settings.APP_URL = settings.APP_URL.rstrip("/")
    if not settings.DATABASE_URL and not settings.is_production:
        settings.DATABASE_URL = f"sqlite:///{INSTANCE_DIR / 'tidings.sqlite3'}"
    if settings.DATABASE_URL.startswith("postgres://"):
        settings.DATABASE_URL = "postgresql://" + settings.DATABASE_URL[len("postgres://") :]
    if settings.DATABASE_URL.startswith("postgresql://"):
        settings.DATABASE_URL = (
            "postgresql+psycopg://" + settings.DATABASE_URL[len("postgresql://") :]
        )
    if not settings.SMS_PROVIDER:
        settings.SMS_PROVIDER = "twilio" if settings.TWILIO_ACCOUNT_SID else "outbox"


def validate(settings: Settings, env: Mapping[str, str]) -> None:
    if settings.is_production:
        for name in _REQUIRED_IN_PRODUCTION:
            if not env.get(name, "").strip():
                raise ConfigError(f"{name} must be set in production (TIDINGS_ENV=production)")
        if settings.DEV_LOGIN:
            raise ConfigError("DEV_LOGIN cannot be enabled in production")
        if settings.SMS_PROVIDER == "outbox":
            raise ConfigError(
                "TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN must be set in production "
                "(the dev outbox sends nothing)"
            )
    if settings.SMS_PROVIDER not in {"twilio", "outbox"}:
        raise ConfigError(f"SMS_PROVIDER must be twilio or outbox, got {settings.SMS_PROVIDER!r}")
    if settings.SMS_PROVIDER == "twilio":
        for name in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN"):
            if not getattr(settings, name):
                raise ConfigError(f"{name} must be set when SMS_PROVIDER is twilio")
        if not (settings.TWILIO_MESSAGING_SERVICE_SID or settings.TWILIO_FROM_NUMBER):
            raise ConfigError(
                "TWILIO_MESSAGING_SERVICE_SID or TWILIO_FROM_NUMBER must be set for Twilio"
            )
    if "{shop}" not in settings.SHOPIFY_ADMIN_BASE_URL:
        raise ConfigError("SHOPIFY_ADMIN_BASE_URL must contain {shop}")
