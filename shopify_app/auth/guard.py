"""The session-token guard in front of every /api route."""

from __future__ import annotations

import logging

from flask import Flask, current_app, g, request
from flask.typing import ResponseReturnValue

from shopify_app.api._common import error_response
from shopify_app.auth.session_token import verify_session_token
from shopify_app.logs import set_shop
from shopify_app.models import Shop

log = logging.getLogger(__name__)

RETRY_HEADER = {"X-Shopify-Retry-Invalid-Session-Request": "1"}
# The OpenAPI document is public; everything else under /api needs a token.
_PUBLIC_API_PATHS = {"/api/openapi.json"}


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip() or None
    return None


def _reject(reason: str) -> ResponseReturnValue:
    log.info("api request refused: %s", reason)
    return error_response(
        401,
        "invalid_session",
        "Your session is not valid. Reload the app.",
        {"reason": reason},
        headers=RETRY_HEADER,
    )


def guard_api_request() -> ResponseReturnValue | None:
    if not request.path.startswith("/api/") or request.path in _PUBLIC_API_PATHS:
        return None
    if request.method == "OPTIONS":
        return None
    check = verify_session_token(
        bearer_token(),
        api_key=current_app.config["SHOPIFY_API_KEY"],
        secret=current_app.config["SHOPIFY_API_SECRET"],
    )
    if not check.ok:
        return _reject(check.reason or "invalid")
    shop = Shop.by_domain(check.shop or "")
    if shop is None or not shop.is_installed:
        return _reject("shop_not_installed")
    g.shop = shop
    g.session_claims = check.claims
    set_shop(shop.domain)
    return None


def install_api_guard(app: Flask) -> None:
    app.before_request(guard_api_request)
