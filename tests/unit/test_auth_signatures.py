"""Signature algorithms pinned to PLATFORM.md's vectors, and the ways a signed query is refused."""

from __future__ import annotations

import hashlib
import hmac
import time
from urllib.parse import urlencode

from werkzeug.datastructures import MultiDict

from shopify_app.auth.app_proxy import (
    app_proxy_message,
    check_app_proxy_query,
    verify_app_proxy_query,
)
from shopify_app.auth.oauth import (
    check_signed_query,
    oauth_hmac,
    oauth_message,
    timestamp_fresh,
    verify_oauth_query,
)

OAUTH_VECTOR = {
    "code": "0907a61c0c8d55e99db179b68161bc00",
    "shop": "some-shop.myshopify.com",
    "state": "0.6784241404160823",
    "timestamp": "1337178173",
}
OAUTH_VECTOR_HMAC = "700e2dadb827fcc8609e9d5ce208b2e9cdaab9df07390d2cbca10d7c328fc4bf"
PROXY_VECTOR_SIGNATURE = "4c68c8624d737112c91818c11017d24d334b524cb5c2b8ba08daa056f7395ddb"
PROXY_VECTOR_QUERY = (
    "extra=1&extra=2&shop=shop-name.myshopify.com&logged_in_customer_id=1"
    "&path_prefix=%2Fapps%2Fawesome_reviews&timestamp=1317327555"
    f"&signature={PROXY_VECTOR_SIGNATURE}"
)


def _signed(params: dict[str, str], secret: str = "hush") -> dict[str, str]:
    return {**params, "hmac": oauth_hmac(params, secret) or ""}


def _proxy_query(params: list[tuple[str, str]], secret: str = "hush") -> str:
    grouped: dict[str, list[str]] = {}
    for key, value in params:
        grouped.setdefault(key, []).append(value)
    message = "".join(sorted(f"{k}={','.join(v)}" for k, v in grouped.items()))
    signature = hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()
    return urlencode([*params, ("signature", signature)])


def test_oauth_vector_message_and_hmac() -> None:
    """The OAuth message and digest match Shopify's documented example."""
    assert oauth_message(OAUTH_VECTOR) == (
        "code=0907a61c0c8d55e99db179b68161bc00&shop=some-shop.myshopify.com"
        "&state=0.6784241404160823&timestamp=1337178173"
    )
    assert oauth_hmac(OAUTH_VECTOR, "hush") == OAUTH_VECTOR_HMAC


def test_verify_oauth_query_accepts_vector_and_rejects_tampering() -> None:
    """A correct hmac passes; a wrong secret, an altered value or a missing hmac fail."""
    signed = {**OAUTH_VECTOR, "hmac": OAUTH_VECTOR_HMAC}
    assert verify_oauth_query(signed, "hush")
    assert verify_oauth_query(MultiDict(signed), "hush")
    assert not verify_oauth_query(signed, "not-hush")
    assert not verify_oauth_query({**signed, "shop": "other-shop.myshopify.com"}, "hush")
    assert not verify_oauth_query({**signed, "extra": "1"}, "hush")
    assert not verify_oauth_query(OAUTH_VECTOR, "hush")
    assert not verify_oauth_query({**signed, "hmac": ""}, "hush")


def test_oauth_repeated_plain_key_is_refused() -> None:
    """`shop=a&shop=b` is ambiguous (which one did Shopify sign?), so it never verifies."""
    args = MultiDict(
        [*OAUTH_VECTOR.items(), ("shop", "evil.myshopify.com"), ("hmac", OAUTH_VECTOR_HMAC)]
    )
    assert not verify_oauth_query(args, "hush")


def test_oauth_array_params_and_escaping() -> None:
    """`ids[]` become a JSON list, and `&`/`=`/`%` inside values cannot forge another pair."""
    args = MultiDict([("ids[]", "1"), ("ids[]", "2"), ("shop", "a.myshopify.com")])
    assert oauth_message(args) == 'ids=["1", "2"]&shop=a.myshopify.com'
    assert oauth_message({"a": "1&b=2"}) != oauth_message({"a": "1", "b": "2"})
    assert oauth_message({"a": "50%"}) == "a=50%25"


def test_timestamp_freshness_window() -> None:
    """Older than five minutes or more than a minute ahead is refused."""
    now = 1_700_000_000
    assert timestamp_fresh(str(now), now)
    assert timestamp_fresh(str(now - 299), now)
    assert not timestamp_fresh(str(now - 301), now)
    assert timestamp_fresh(str(now + 59), now)
    assert not timestamp_fresh(str(now + 61), now)
    assert not timestamp_fresh("", now)
    assert not timestamp_fresh("yesterday", now)
    assert not timestamp_fresh(None, now)


def test_check_signed_query_reasons() -> None:
    """Each refusal of a signed app-URL query names its reason."""
    fresh = {
        "shop": "good-shop.myshopify.com",
        "timestamp": str(int(time.time())),
        "host": "YWRtaW4",
        "embedded": "1",
    }
    assert check_signed_query(_signed(fresh), "hush").ok
    assert check_signed_query(_signed(fresh), "hush").shop == "good-shop.myshopify.com"
    assert check_signed_query(fresh, "hush").reason == "missing_hmac"
    assert check_signed_query(_signed(fresh, "other"), "hush").reason == "bad_hmac"
    stale = {**fresh, "timestamp": str(int(time.time()) - 600)}
    assert check_signed_query(_signed(stale), "hush").reason == "stale_timestamp"
    for domain in ("evil.com", "shop.myshopify.com.evil.com", "-x.myshopify.com", ""):
        bad = {**fresh, "shop": domain}
        assert check_signed_query(_signed(bad), "hush").reason == "bad_shop_domain", domain


def test_app_proxy_vector() -> None:
    """The app proxy message and signature match Shopify's documented example."""
    from urllib.parse import parse_qs

    params = parse_qs(PROXY_VECTOR_QUERY, keep_blank_values=True)
    assert app_proxy_message(params) == (
        "extra=1,2logged_in_customer_id=1path_prefix=/apps/awesome_reviews"
        "shop=shop-name.myshopify.comtimestamp=1317327555"
    )
    assert verify_app_proxy_query(PROXY_VECTOR_QUERY, "hush")


def test_app_proxy_rejects_tampering() -> None:
    """Wrong secret, altered or added parameter, missing signature: all refused."""
    assert not verify_app_proxy_query(PROXY_VECTOR_QUERY, "not-hush")
    assert not verify_app_proxy_query(
        PROXY_VECTOR_QUERY.replace("customer_id=1", "customer_id=2"), "hush"
    )
    assert not verify_app_proxy_query(PROXY_VECTOR_QUERY + "&extra=3", "hush")
    unsigned = PROXY_VECTOR_QUERY.split("&signature=")[0]
    assert not verify_app_proxy_query(unsigned, "hush")
    assert not verify_app_proxy_query(unsigned + "&signature=", "hush")


def test_app_proxy_check_guest_and_customer() -> None:
    """A guest's empty logged_in_customer_id becomes None; a customer's id is kept."""
    base = [
        ("shop", "good-shop.myshopify.com"),
        ("path_prefix", "/apps/tidings"),
        ("timestamp", str(int(time.time()))),
    ]
    guest = check_app_proxy_query(_proxy_query([*base, ("logged_in_customer_id", "")]), "hush")
    assert guest.ok and guest.customer_id is None and guest.shop == "good-shop.myshopify.com"
    customer = check_app_proxy_query(_proxy_query([*base, ("logged_in_customer_id", "42")]), "hush")
    assert customer.ok and customer.customer_id == "42"


def test_app_proxy_check_stale_and_foreign_domain() -> None:
    """A correctly signed but stale or non-myshopify request is still refused."""
    old = [
        ("shop", "good-shop.myshopify.com"),
        ("timestamp", str(int(time.time()) - 301)),
        ("logged_in_customer_id", ""),
    ]
    assert check_app_proxy_query(_proxy_query(old), "hush").reason == "stale_timestamp"
    evil = [
        ("shop", "shop.myshopify.com.evil.com"),
        ("timestamp", str(int(time.time()))),
        ("logged_in_customer_id", ""),
    ]
    assert check_app_proxy_query(_proxy_query(evil), "hush").reason == "bad_shop_domain"
    assert check_app_proxy_query("shop=a.myshopify.com", "hush").reason == "missing_signature"
