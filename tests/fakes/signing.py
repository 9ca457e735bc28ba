"""Helpers that SIGN requests to the app the way Shopify and Twilio do.

Independent of the app's own verification code on purpose: a test that signs with these and
expects the app to accept (or, after tampering, reject) checks the app against the platforms'
documented algorithms, not against itself.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import jwt
from twilio.request_validator import RequestValidator


def shopify_webhook_hmac(body: bytes, secret: str) -> str:
    """Base64 HMAC-SHA256 of the raw body (X-Shopify-Hmac-Sha256)."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def shopify_webhook_headers(
    body: bytes,
    secret: str,
    *,
    topic: str,
    shop: str,
    webhook_id: str | None = None,
    api_version: str = "2026-10",
    triggered_at: str | datetime | None = None,
    event_id: str | None = None,
) -> dict[str, str]:
    """Headers of a Shopify webhook delivery of ``body`` (bytes exactly as sent)."""
    if isinstance(triggered_at, datetime):
        triggered_at = triggered_at.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return {
        "Content-Type": "application/json",
        "X-Shopify-Hmac-Sha256": shopify_webhook_hmac(body, secret),
        "X-Shopify-Topic": topic,
        "X-Shopify-Shop-Domain": shop,
        "X-Shopify-API-Version": api_version,
        "X-Shopify-Webhook-Id": webhook_id or str(uuid.uuid4()),
        "X-Shopify-Event-Id": event_id or str(uuid.uuid4()),
        "X-Shopify-Triggered-At": triggered_at
        or datetime.now(UTC).isoformat().replace("+00:00", "Z"),
    }


def session_token(
    shop: str,
    api_key: str,
    secret: str,
    *,
    now: float | None = None,
    exp_in: float = 60,
    nbf_offset: float = 0,
    sub: str = "1",
    **overrides: Any,
) -> str:
    """An App Bridge session token (HS256 JWT). ``overrides`` replace claims; a value of
    None removes the claim (``iss=None``)."""
    now = int(time.time() if now is None else now)
    claims: dict[str, Any] = {
        "iss": f"https://{shop}/admin",
        "dest": f"https://{shop}",
        "aud": api_key,
        "sub": sub,
        "exp": now + int(exp_in),
        "nbf": now + int(nbf_offset),
        "iat": now,
        "jti": str(uuid.uuid4()),
        "sid": secrets.token_hex(16),
    }
    for key, value in overrides.items():
        if value is None:
            claims.pop(key, None)
        else:
            claims[key] = value
    return jwt.encode(claims, secret, algorithm="HS256")


def oauth_hmac(params: dict[str, Any], secret: str) -> str:
    """Hex HMAC-SHA256 over the sorted ``key=value`` pairs joined by ``&`` (hmac and
    signature removed) — Shopify's OAuth / app-URL query signature."""
    message = "&".join(
        f"{key}={value}"
        for key, value in sorted(params.items())
        if key not in ("hmac", "signature")
    )
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def oauth_query(params: dict[str, Any], secret: str) -> dict[str, str]:
    """``params`` (values as strings, hmac/signature dropped) plus a valid ``hmac``."""
    query = {str(k): str(v) for k, v in params.items() if k not in ("hmac", "signature")}
    query["hmac"] = oauth_hmac(query, secret)
    return query


def app_proxy_signature(params: dict[str, str | list[str]], secret: str) -> str:
    """Hex HMAC-SHA256 over the sorted ``key=value`` strings (repeated values joined by ",")
    concatenated with no separator, ``signature`` removed — Shopify's app proxy signature."""
    pieces = []
    for key, value in params.items():
        if key == "signature":
            continue
        joined = ",".join(value) if isinstance(value, list | tuple) else str(value)
        pieces.append(f"{key}={joined}")
    message = "".join(sorted(pieces))
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def app_proxy_query(params: dict[str, str | list[str]], secret: str) -> dict[str, Any]:
    """``params`` plus a valid ``signature`` (lists stay lists: urlencode with doseq=True)."""
    query: dict[str, Any] = {k: v for k, v in params.items() if k != "signature"}
    query["signature"] = app_proxy_signature(query, secret)
    return query


def twilio_signature(url: str, params: dict[str, str], auth_token: str) -> str:
    """X-Twilio-Signature for a POST of form ``params`` to ``url`` (the public URL)."""
    return RequestValidator(auth_token).compute_signature(url, params)


__all__ = [
    "app_proxy_query",
    "app_proxy_signature",
    "oauth_hmac",
    "oauth_query",
    "session_token",
    "shopify_webhook_headers",
    "shopify_webhook_hmac",
    "twilio_signature",
]
