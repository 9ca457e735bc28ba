"""ShopifyClient against the stand-in: throttling waits, retries, and typed errors."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from aiohttp import web

from shopify_app.auth.token_exchange import exchange_session_token
from shopify_app.auth.tokens import needs_reauthorization, store_grant
from shopify_app.crypto import decrypt
from shopify_app.extensions import db
from shopify_app.models import Shop, utcnow
from shopify_app.services.install import complete_install
from shopify_app.shopify.client import ShopifyClient, raise_user_errors
from shopify_app.shopify.errors import (
    ShopifyAuthError,
    ShopifyGraphQLError,
    ShopifyThrottled,
    ShopifyUnavailable,
    ShopifyUserError,
)
from shopify_app.shopify.token_endpoint import TokenGrant
from tests.conftest import SHOP_DOMAIN, session_token_for
from tests.fakes.shopify_server import FakeShopify, GraphQLError

SHOP_QUERY = "query { shop { name currencyCode } }"


@pytest.fixture
def fake_shopify(fake_shopify: FakeShopify) -> Iterator[FakeShopify]:
    """The shared stand-in; these tests also override answers, which reset() keeps."""
    yield fake_shopify
    for field in ("shop", "discountCodeBasicCreate"):
        fake_shopify.on(field, None)


@pytest.fixture
def installed(fake_shopify: FakeShopify) -> Shop:
    shop = complete_install(
        SHOP_DOMAIN, exchange_session_token(SHOP_DOMAIN, session_token_for(SHOP_DOMAIN))
    )
    fake_shopify.graphql_calls.clear()  # the install's own shop-info query
    return shop


class Sleeps(list):
    """Records the waits instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def test_execute_returns_data_with_token_header(fake_shopify: FakeShopify, installed: Shop) -> None:
    """A query goes to the pinned version's endpoint with the shop's token; `data` comes back."""
    client = ShopifyClient(installed)
    data = client.execute(SHOP_QUERY)
    assert data["shop"]["currencyCode"] == "USD"
    [call] = fake_shopify.graphql_calls
    assert call.version == "2026-10" and call.token == fake_shopify.token_for(SHOP_DOMAIN)
    assert client.throttle_status["maximumAvailable"] == 2000.0


def test_throttled_then_succeeds(fake_shopify: FakeShopify, installed: Shop) -> None:
    """THROTTLED (HTTP 200): wait the time the bucket needs for the query's cost, then retry."""
    # A slow refill (1 point/s): the fake's bucket also refills in real time, and a fast one
    # could refill before a loaded machine gets the request there.
    fake_shopify.set_bucket(SHOP_DOMAIN, available=0, restore_rate=1)
    sleeps = Sleeps()

    def sleep_and_refill(seconds: float) -> None:
        sleeps(seconds)
        fake_shopify.advance(seconds)

    data = ShopifyClient(installed, sleep=sleep_and_refill).execute(SHOP_QUERY)

    assert data["shop"]["name"]
    assert [c.throttled for c in fake_shopify.graphql_calls] == [True, False]
    assert len(sleeps) == 1
    # cost 1, (almost) nothing available, 1 point/s restored -> at most about 1 s
    assert 0 < sleeps[0] <= 1.1


def test_throttled_429_uses_retry_after(fake_shopify: FakeShopify, installed: Shop) -> None:
    """HTTP 429 is throttling too; Retry-After says how long."""
    fake_shopify.throttle_next(1, http_status=429)
    sleeps = Sleeps()
    assert ShopifyClient(installed, sleep=sleeps).execute(SHOP_QUERY)["shop"]
    assert sleeps == [1.0]
    assert [c.http_status for c in fake_shopify.graphql_calls] == [429, 200]


def test_throttled_until_retries_exhausted(fake_shopify: FakeShopify, installed: Shop) -> None:
    """Still throttled after every allowed wait -> ShopifyThrottled."""
    fake_shopify.throttle_next(10)
    sleeps = Sleeps()
    with pytest.raises(ShopifyThrottled):
        ShopifyClient(installed, sleep=sleeps, max_throttle_waits=3).execute(SHOP_QUERY)
    assert len(sleeps) == 3
    assert len(fake_shopify.graphql_calls) == 4


def test_unauthorized_raises_auth_error(fake_shopify: FakeShopify, installed: Shop) -> None:
    """401 with every token revoked (uninstalled): one refresh attempt, then ShopifyAuthError,
    and the shop is left needing re-authentication."""
    fake_shopify.revoke_tokens(SHOP_DOMAIN)
    sleeps = Sleeps()
    with pytest.raises(ShopifyAuthError):
        ShopifyClient(installed, sleep=sleeps).execute(SHOP_QUERY)
    assert sleeps == []
    assert fake_shopify.graphql_calls == []  # the stand-in records only accepted calls
    assert [r["error"] for r in fake_shopify.token_requests][-1] == "invalid_grant"
    db.session.expire_all()
    assert needs_reauthorization(Shop.by_domain(SHOP_DOMAIN))


def test_unauthorized_without_refresh_token(fake_shopify: FakeShopify) -> None:
    """A non-expiring (legacy) token that Shopify refuses: ShopifyAuthError, token dropped."""
    token = fake_shopify.add_token(SHOP_DOMAIN)
    shop = Shop(domain=SHOP_DOMAIN, name="Legacy", installed_at=utcnow())
    store_grant(shop, TokenGrant(access_token=token, scope="read_orders"))
    db.session.add(shop)
    db.session.commit()
    assert ShopifyClient(shop).execute(SHOP_QUERY)["shop"]
    fake_shopify.revoke_tokens(SHOP_DOMAIN)
    with pytest.raises(ShopifyAuthError):
        ShopifyClient(shop).execute(SHOP_QUERY)
    db.session.expire_all()
    assert Shop.by_domain(SHOP_DOMAIN).access_token_enc is None
    assert fake_shopify.token_requests == []


def test_token_shopify_considers_expired_is_refreshed(
    fake_shopify: FakeShopify, installed: Shop
) -> None:
    """Clocks disagree: Shopify says 401 while we thought the token fresh -> refresh, retry."""
    old = fake_shopify.token_for(SHOP_DOMAIN)
    fake_shopify.advance(3700)
    assert ShopifyClient(installed).execute(SHOP_QUERY)["shop"]
    assert fake_shopify.refresh_count[SHOP_DOMAIN] == 1
    new = fake_shopify.token_for(SHOP_DOMAIN)
    assert new != old
    assert [c.token for c in fake_shopify.graphql_calls] == [new]
    assert decrypt(installed.access_token_enc) == fake_shopify.token_for(SHOP_DOMAIN)


def test_server_errors_are_retried_with_backoff(fake_shopify: FakeShopify, installed: Shop) -> None:
    """A 503 then success: retried after a backoff; repeated 5xx -> ShopifyUnavailable."""
    answers = [web.Response(status=503, text="busy")]

    def flaky(ctx):  # noqa: ANN001, ANN202 - the stand-in's handler signature
        return answers.pop() if answers else {"name": "Recovered", "currencyCode": "USD"}

    fake_shopify.on("shop", flaky)
    sleeps = Sleeps()
    assert ShopifyClient(installed, sleep=sleeps).execute(SHOP_QUERY)["shop"]["name"] == (
        "Recovered"
    )
    assert sleeps == [0.5]

    fake_shopify.on("shop", lambda ctx: web.Response(status=502, text="bad gateway"))
    sleeps.clear()
    with pytest.raises(ShopifyUnavailable) as raised:
        ShopifyClient(installed, sleep=sleeps, max_server_retries=2).execute(SHOP_QUERY)
    assert raised.value.status == 502
    assert sleeps == [0.5, 1.0]


def test_graphql_errors_are_typed(fake_shopify: FakeShopify, installed: Shop) -> None:
    """Top-level errors other than THROTTLED -> ShopifyGraphQLError with Shopify's messages."""
    with pytest.raises(ShopifyGraphQLError) as raised:
        ShopifyClient(installed).execute("query { noSuchField { id } }")
    assert "noSuchField" in raised.value.messages[0]

    def denied(ctx):  # noqa: ANN001, ANN202
        raise GraphQLError("Access denied for shop field.", "ACCESS_DENIED")

    fake_shopify.on("shop", denied)
    with pytest.raises(ShopifyGraphQLError) as raised:
        ShopifyClient(installed).execute(SHOP_QUERY)
    assert raised.value.errors[0]["extensions"]["code"] == "ACCESS_DENIED"


def test_user_errors_raise(fake_shopify: FakeShopify, installed: Shop) -> None:
    """A mutation's userErrors surface as ShopifyUserError carrying them."""
    mutation = """
    mutation Create($d: DiscountCodeBasicInput!) {
      discountCodeBasicCreate(basicCodeDiscount: $d) {
        codeDiscountNode { id }
        userErrors { field code message }
      }
    }"""
    variables = {
        "d": {
            "title": "Welcome",
            "code": "WELCOME10",
            "startsAt": "2026-01-01T00:00:00Z",
            "context": {"all": "ALL"},
            "customerGets": {"value": {"percentage": 0.1}, "items": {"all": True}},
        }
    }
    client = ShopifyClient(installed)
    created = raise_user_errors(client.execute(mutation, variables), "discountCodeBasicCreate")
    assert created["codeDiscountNode"]["id"].startswith("gid://shopify/DiscountCodeNode/")
    with pytest.raises(ShopifyUserError) as raised:
        raise_user_errors(client.execute(mutation, variables), "discountCodeBasicCreate")
    assert raised.value.user_errors[0]["code"] == "TAKEN"
    assert "unique" in raised.value.messages[0]


def test_token_is_never_logged(
    fake_shopify: FakeShopify, installed: Shop, caplog: pytest.LogCaptureFixture
) -> None:
    """Even on failures, no log line carries the access token."""
    caplog.set_level("DEBUG")
    token = fake_shopify.token_for(SHOP_DOMAIN)
    fake_shopify.throttle_next(1)
    ShopifyClient(installed, sleep=lambda s: None).execute(SHOP_QUERY)
    fake_shopify.revoke_tokens(SHOP_DOMAIN)
    with pytest.raises(ShopifyAuthError):
        ShopifyClient(installed).execute(SHOP_QUERY)
    assert caplog.records and all(token not in r.getMessage() for r in caplog.records)
