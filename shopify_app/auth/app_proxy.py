"""App proxy requests (/proxy/*): Shopify signs the query with `signature`, not `hmac`, and by
different rules than OAuth — values of a repeated key are joined with `,` and the sorted pairs
are concatenated with no separator."""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import parse_qs

from flask import current_app, g, request

from shopify_app.api._common import error_response
from shopify_app.auth.oauth import timestamp_fresh
from shopify_app.auth.shop_domain import valid_shop_domain
from shopify_app.logs import set_shop
from shopify_app.models import Shop

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class ProxyCheck:
    ok: bool
    reason: str | None = None
    shop: str | None = None
    customer_id: str | None = None


def app_proxy_message(params: dict[str, list[str]]) -> str:
    return "".join(
        sorted(f"{key}={','.join(values)}" for key, values in params.items() if key != "signature")
    )


def _signature_matches(params: dict[str, list[str]], secret: str) -> bool:
    given = params.get("signature") or []
    if len(given) != 1 or not given[0]:
        return False
    expected = hmac.new(
        secret.encode(), app_proxy_message(params).encode(), hashlib.sha256
    ).hexdigest()
    return hmac.compare_digest(expected, given[0].lower())


def verify_app_proxy_query(query_string: str, secret: str) -> bool:
    """The raw query string's `signature` is Shopify's (constant-time compare)."""
    return _signature_matches(parse_qs(query_string, keep_blank_values=True), secret)


def check_app_proxy_query(query_string: str, secret: str) -> ProxyCheck:
    """Signature, then timestamp freshness and shop domain. Installation is checked by callers."""
    params = parse_qs(query_string, keep_blank_values=True)
    if not params.get("signature"):
        return ProxyCheck(False, "missing_signature")
    if not _signature_matches(params, secret):
        return ProxyCheck(False, "bad_signature")
    if not timestamp_fresh((params.get("timestamp") or [""])[0]):
        return ProxyCheck(False, "stale_timestamp")
    shops = params.get("shop") or []
    shop = valid_shop_domain(shops[0]) if len(shops) == 1 else None
    if shop is None:
        return ProxyCheck(False, "bad_shop_domain")
    customer = (params.get("logged_in_customer_id") or [""])[0]
    return ProxyCheck(True, shop=shop, customer_id=customer or None)


def _refuse(reason: str) -> Any:
    log.info("app proxy request refused: reason=%s path=%s", reason, request.path)
    return error_response(
        401, "bad_signature", "This request was not signed by Shopify.", {"reason": reason}
    )


def app_proxy_required(view: F) -> F:
    """Verify the Shopify app proxy signature; set g.shop and g.proxy_customer_id (None: guest)."""

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        check = check_app_proxy_query(
            request.query_string.decode("utf-8", "replace"),
            current_app.config["SHOPIFY_API_SECRET"],
        )
        if not check.ok:
            return _refuse(check.reason or "invalid")
        shop = Shop.by_domain(check.shop or "")
        if shop is None or not shop.is_installed:
            return _refuse("shop_not_installed")
        g.shop = shop
        g.proxy_customer_id = check.customer_id
        set_shop(shop.domain)
        return view(*args, **kwargs)

    return wrapped  # type: ignore[return-value]
