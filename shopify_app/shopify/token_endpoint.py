"""Shopify's `/admin/oauth/access_token`: the one endpoint behind token exchange, the
authorization-code grant and refresh. Its URL comes from config at call time so tests can point
it at the local stand-in."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import requests
from flask import current_app

from shopify_app.models.base import utcnow
from shopify_app.shopify.errors import TokenEndpointError

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_SECONDS = 15


@dataclass(frozen=True)
class TokenGrant:
    """What Shopify gave us; the expiry fields are None for non-expiring tokens."""

    access_token: str
    scope: str
    expires_in: int | None = None
    refresh_token: str | None = None
    refresh_token_expires_in: int | None = None
    received_at: datetime | None = None

    def access_expires_at(self) -> datetime | None:
        if self.expires_in is None:
            return None
        return (self.received_at or utcnow()) + timedelta(seconds=self.expires_in)

    def refresh_expires_at(self) -> datetime | None:
        if self.refresh_token is None or self.refresh_token_expires_in is None:
            return None
        return (self.received_at or utcnow()) + timedelta(seconds=self.refresh_token_expires_in)

    def __repr__(self) -> str:  # never let a token reach a log through repr()
        return f"<TokenGrant scope={self.scope!r} expires_in={self.expires_in}>"


def admin_base_url(shop_domain: str) -> str:
    return current_app.config["SHOPIFY_ADMIN_BASE_URL"].format(shop=shop_domain).rstrip("/")


def timeout_seconds() -> float:
    return float(current_app.config.get("SHOPIFY_TIMEOUT_SECONDS", DEFAULT_TIMEOUT_SECONDS))


def _optional_int(value: Any) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def request_token(shop_domain: str, payload: dict[str, str]) -> TokenGrant:
    """POST `payload` (client credentials are added here) and parse the grant.

    Raises TokenEndpointError with Shopify's `error` code, or status None when unreachable.
    """
    body = {
        "client_id": current_app.config["SHOPIFY_API_KEY"],
        "client_secret": current_app.config["SHOPIFY_API_SECRET"],
        **payload,
    }
    url = f"{admin_base_url(shop_domain)}/admin/oauth/access_token"
    sent_at = utcnow()
    try:
        resp = requests.post(
            url, json=body, headers={"Accept": "application/json"}, timeout=timeout_seconds()
        )
    except requests.RequestException as exc:
        raise TokenEndpointError(None, "unreachable", type(exc).__name__) from None
    try:
        data = resp.json()
    except ValueError:
        data = {}
    if not isinstance(data, dict):
        data = {}
    if resp.status_code != 200:
        error = str(data.get("error") or data.get("errors") or f"http_{resp.status_code}")
        raise TokenEndpointError(resp.status_code, error, str(data.get("error_description") or ""))
    access_token = data.get("access_token")
    if not isinstance(access_token, str) or not access_token:
        raise TokenEndpointError(resp.status_code, "malformed_response")
    refresh_token = data.get("refresh_token")
    return TokenGrant(
        access_token=access_token,
        scope=str(data.get("scope") or ""),
        expires_in=_optional_int(data.get("expires_in")),
        refresh_token=refresh_token if isinstance(refresh_token, str) and refresh_token else None,
        refresh_token_expires_in=_optional_int(data.get("refresh_token_expires_in")),
        received_at=sent_at,  # measured from the request, so expiry errs early
    )
