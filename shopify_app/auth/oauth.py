"""Query-string HMAC (app URL loads and the OAuth callback), timestamp freshness, and the
legacy authorization-code grant: single-use `state`, the authorize URL, the code exchange."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from flask import current_app
from itsdangerous import BadSignature, URLSafeTimedSerializer
from werkzeug.datastructures import MultiDict

from shopify_app.auth.shop_domain import valid_shop_domain
from shopify_app.extensions import get_redis
from shopify_app.shopify.token_endpoint import TokenGrant, admin_base_url, request_token

MAX_AGE_SECONDS = 300  # a signed query older than this is refused (replay window)
MAX_FUTURE_SECONDS = 60  # clock skew allowed the other way
STATE_TTL_SECONDS = 600
STATE_COOKIE = "tidings_oauth_state"
_STATE_KEY = "tidings:oauth-state:{}"


@dataclass(frozen=True)
class QueryCheck:
    """The outcome of verifying a signed query; `reason` is a short code for logs."""

    ok: bool
    shop: str | None = None
    reason: str | None = None


def _pairs(args: Mapping[str, Any]) -> list[tuple[str, list[str]]] | None:
    """Each key with all its values; None when a plain key repeats (ambiguous, so refused)."""
    out = []
    for key in args:
        if isinstance(args, MultiDict):
            values = args.getlist(key)
        else:
            raw = args[key]
            values = [str(v) for v in raw] if isinstance(raw, list | tuple) else [str(raw)]
        if len(values) != 1 and not key.endswith("[]"):
            return None
        out.append((key, values))
    return out


def oauth_message(args: Mapping[str, Any]) -> str | None:
    """The string Shopify signs: every pair but `hmac`, sorted, joined with `&`.

    Array parameters (`ids[]=1&ids[]=2`) become `ids=["1", "2"]`, and `%`, `&`, `=` are escaped
    inside keys and values so a value cannot forge a pair (as ShopifyAPI's Session does)."""
    pairs = _pairs(args)
    if pairs is None:
        return None
    rendered = []
    for key, values in pairs:
        if key == "hmac":
            continue
        if key.endswith("[]"):
            key, value = key[:-2], json.dumps(values)
        else:
            value = values[0]
        key = key.replace("%", "%25").replace("=", "%3D")
        value = value.replace("%", "%25")
        rendered.append(f"{key}={value}".replace("&", "%26"))
    return "&".join(sorted(rendered))


def oauth_hmac(args: Mapping[str, Any], secret: str) -> str | None:
    message = oauth_message(args)
    if message is None:
        return None
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def verify_oauth_query(args: Mapping[str, Any], secret: str) -> bool:
    """The query's `hmac` matches (constant-time compare). Timestamp is checked separately."""
    given = args.get("hmac")
    if not isinstance(given, str) or not given:
        return False
    expected = oauth_hmac(args, secret)
    return expected is not None and hmac.compare_digest(expected, given.lower())


def timestamp_fresh(
    raw: Any,
    now: float | None = None,
    *,
    max_age: int = MAX_AGE_SECONDS,
    max_future: int = MAX_FUTURE_SECONDS,
) -> bool:
    try:
        ts = int(str(raw))
    except (TypeError, ValueError):
        return False
    now = time.time() if now is None else now
    return now - max_age <= ts <= now + max_future


def check_signed_query(args: Mapping[str, Any], secret: str) -> QueryCheck:
    """hmac, shop domain and timestamp of an app-URL load or OAuth callback, in that order."""
    if not args.get("hmac"):
        return QueryCheck(False, reason="missing_hmac")
    if not verify_oauth_query(args, secret):
        return QueryCheck(False, reason="bad_hmac")
    shop = valid_shop_domain(args.get("shop"))
    if shop is None:
        return QueryCheck(False, reason="bad_shop_domain")
    if not timestamp_fresh(args.get("timestamp")):
        return QueryCheck(False, shop=shop, reason="stale_timestamp")
    return QueryCheck(True, shop=shop)


# -- the authorization-code grant ------------------------------------------------------------


def _state_serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="tidings-oauth-state")


def new_state(shop: str) -> tuple[str, str]:
    """A fresh single-use state remembered in Redis for `shop`, and the signed cookie value."""
    state = secrets.token_urlsafe(32)
    get_redis().set(_STATE_KEY.format(state), shop, ex=STATE_TTL_SECONDS)
    return state, _state_serializer().dumps(state)


def consume_state(state: str | None, cookie: str | None, shop: str) -> str | None:
    """None when `state` is ours, bound to this browser and shop, and unused; else a reason.

    The Redis key is deleted atomically (GETDEL), so a replayed callback finds nothing."""
    if not state:
        return "missing_state"
    if not cookie:
        return "missing_state_cookie"
    try:
        cookie_state = _state_serializer().loads(cookie, max_age=STATE_TTL_SECONDS)
    except BadSignature:
        return "bad_state_cookie"
    if not isinstance(cookie_state, str) or not hmac.compare_digest(cookie_state, state):
        return "state_cookie_mismatch"
    stored = get_redis().getdel(_STATE_KEY.format(state))
    if stored is None:
        return "state_unknown_or_used"
    if not hmac.compare_digest(stored.decode(), shop):
        return "state_shop_mismatch"
    return None


def redirect_uri() -> str:
    return f"{current_app.config['APP_URL']}/auth/callback"


def authorize_url(shop: str, state: str) -> str:
    query = urlencode(
        {
            "client_id": current_app.config["SHOPIFY_API_KEY"],
            "scope": current_app.config["SHOPIFY_SCOPES"],
            "redirect_uri": redirect_uri(),
            "state": state,
        }
    )
    return f"{admin_base_url(shop)}/admin/oauth/authorize?{query}"


def exchange_code(shop: str, code: str) -> TokenGrant:
    """Trade the callback's code for an offline token (asking for an expiring one)."""
    return request_token(shop, {"code": code, "expiring": "1"})
