"""Development sign-in: open the admin page at /app?shop=... without Shopify.

Allowed only when DEV_LOGIN is on (config refuses it in production) and the request comes from
this machine; otherwise the routes answer 404 as if they did not exist.
"""

from __future__ import annotations

import ipaddress
import secrets
import time

import jwt
from flask import current_app, request

SESSION_TOKEN_LIFETIME_SECONDS = 60  # as App Bridge's own tokens


def dev_login_allowed() -> bool:
    if not current_app.config.get("DEV_LOGIN") or current_app.config.get("ENV") == "production":
        return False
    try:
        return ipaddress.ip_address(request.remote_addr or "").is_loopback
    except ValueError:
        return False


def mint_session_token(shop_domain: str, now: float | None = None) -> str:
    """A session token in App Bridge's format (HS256 with the app secret) for `shop_domain`."""
    now = int(time.time() if now is None else now)
    claims = {
        "iss": f"https://{shop_domain}/admin",
        "dest": f"https://{shop_domain}",
        "aud": current_app.config["SHOPIFY_API_KEY"],
        "sub": "dev-login",
        "exp": now + SESSION_TOKEN_LIFETIME_SECONDS,
        "nbf": now,
        "iat": now,
        "jti": secrets.token_hex(16),
        "sid": "dev-login",
    }
    return jwt.encode(claims, current_app.config["SHOPIFY_API_SECRET"], algorithm="HS256")
