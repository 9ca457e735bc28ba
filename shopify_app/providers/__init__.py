"""SMS providers behind one small interface; `get_provider()` picks one from SMS_PROVIDER."""

from __future__ import annotations

from flask import Flask, current_app

from shopify_app.providers.base import (
    ACCEPTED,
    PERMANENT,
    RETRY,
    UNKNOWN,
    ProviderMessage,
    ProviderUnavailable,
    Sender,
    SendResult,
    SmsProvider,
    classify,
)

_KEY = "tidings_sms_provider"


def get_provider(app: Flask | None = None) -> SmsProvider:
    """The app's provider, made once per app (and process) from its config."""
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    provider = app.extensions.get(_KEY)
    if provider is None:
        provider = _build(app)
        app.extensions[_KEY] = provider
    return provider


def set_provider(app: Flask, provider: SmsProvider | None) -> None:
    """Replace the app's provider (tests and benchmarks); None goes back to the configured one."""
    if provider is None:
        app.extensions.pop(_KEY, None)
    else:
        app.extensions[_KEY] = provider


def _build(app: Flask) -> SmsProvider:
    config = app.config
    if config["SMS_PROVIDER"] == "twilio":
        from shopify_app.providers.twilio import TwilioProvider

        return TwilioProvider(
            config["TWILIO_ACCOUNT_SID"],
            config["TWILIO_AUTH_TOKEN"],
            base_url=config["TWILIO_API_BASE_URL"],
            timeout=float(config["TWILIO_TIMEOUT_SECONDS"]),
            pool_size=max(8, int(config["SEND_CONCURRENCY"]) * 2),
            messaging_service_sid=config["TWILIO_MESSAGING_SERVICE_SID"],
            from_number=config["TWILIO_FROM_NUMBER"],
        )
    from shopify_app.extensions import db
    from shopify_app.providers.outbox import OutboxProvider

    with app.app_context():
        return OutboxProvider(db.engine)


__all__ = [
    "ACCEPTED",
    "PERMANENT",
    "RETRY",
    "UNKNOWN",
    "ProviderMessage",
    "ProviderUnavailable",
    "SendResult",
    "Sender",
    "SmsProvider",
    "classify",
    "get_provider",
    "set_provider",
]
