"""The legacy authorization-code grant, end to end with the Flask test client and the stand-in:
/auth/install -> Shopify's authorize page -> /auth/callback, and every way a callback is refused."""

from __future__ import annotations

import time
from collections.abc import Iterator
from http.cookies import SimpleCookie
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient

from shopify_app.auth.oauth import STATE_COOKIE
from shopify_app.crypto import decrypt
from shopify_app.models import Shop
from tests.conftest import API_KEY, API_SECRET
from tests.fakes.shopify_server import FakeShopify
from tests.fakes.signing import oauth_query

DOMAIN = "legacy-store.myshopify.com"


@pytest.fixture(scope="module")
def _fake_shopify_server() -> Iterator[FakeShopify]:
    with FakeShopify(API_KEY, API_SECRET, access_token_ttl=3600) as fake:
        yield fake


def start_install(client: FlaskClient, fake: FakeShopify, domain: str = DOMAIN) -> str:
    """GET /auth/install; returns the state Shopify would send back."""
    resp = client.get("/auth/install", query_string={"shop": domain})
    assert resp.status_code == 302
    location = urlsplit(resp.headers["Location"])
    assert f"{location.scheme}://{location.netloc}" == fake.url
    assert location.path == f"/{domain}/admin/oauth/authorize"
    params = parse_qs(location.query)
    assert params["client_id"] == [API_KEY]
    assert params["redirect_uri"] == ["http://localhost/auth/callback"]
    assert "write_discounts" in params["scope"][0]
    cookie = SimpleCookie(resp.headers["Set-Cookie"])[STATE_COOKIE]
    assert cookie["httponly"] and cookie["samesite"] == "Lax" and cookie["path"] == "/auth"
    return params["state"][0]


def callback_query(
    state: str,
    code: str = "auth-code-1",
    domain: str = DOMAIN,
    secret: str = API_SECRET,
    timestamp: int | None = None,
) -> dict[str, str]:
    return oauth_query(
        {
            "code": code,
            "host": "YWRtaW4",
            "shop": domain,
            "state": state,
            "timestamp": str(int(time.time()) if timestamp is None else timestamp),
        },
        secret,
    )


def test_authorization_code_flow_end_to_end(client: FlaskClient, fake_shopify: FakeShopify) -> None:
    """Install, approve, callback: token stored encrypted, details fetched, sent to the admin."""
    state = start_install(client, fake_shopify)
    fake_shopify.register_code(DOMAIN, "auth-code-1")

    resp = client.get("/auth/callback", query_string=callback_query(state))

    assert resp.status_code == 302, resp.get_data(as_text=True)
    assert resp.headers["Location"] == (
        f"https://admin.shopify.com/store/legacy-store/apps/{API_KEY}"
    )
    assert f"{STATE_COOKIE}=;" in resp.headers["Set-Cookie"]  # the cookie is cleared
    [exchange] = fake_shopify.token_requests
    assert exchange["params"]["code"] == "auth-code-1" and exchange["status"] == 200
    shop = Shop.by_domain(DOMAIN)
    assert shop.is_installed and shop.name == "Legacy Store"
    assert decrypt(shop.access_token_enc) == fake_shopify.token_for(DOMAIN)
    # We asked for an expiring token and Shopify gave one: its expiry and refresh token are kept.
    assert shop.access_token_expires_at is not None and shop.refresh_token_enc is not None
    assert [c.field for c in fake_shopify.graphql_calls] == ["shop"]


def test_non_expiring_grant_is_stored_without_expiry(
    client: FlaskClient, fake_shopify: FakeShopify
) -> None:
    """If Shopify answers without expires_in, the token is stored as non-expiring."""
    from shopify_app.auth.tokens import access_token_for, store_grant
    from shopify_app.extensions import db
    from shopify_app.services.install import default_shop_name
    from shopify_app.shopify.token_endpoint import TokenGrant

    shop = Shop(domain=DOMAIN, name=default_shop_name(DOMAIN))
    store_grant(shop, TokenGrant(access_token="shpat_forever", scope="read_orders"))
    db.session.add(shop)
    db.session.commit()
    assert shop.access_token_expires_at is None and shop.refresh_token_enc is None
    assert access_token_for(shop) == "shpat_forever"
    assert fake_shopify.token_requests == []


def test_development_callback_returns_to_app(
    app: Flask, client: FlaskClient, fake_shopify: FakeShopify
) -> None:
    """With development sign-in on, the callback lands on /app?shop=... instead of the admin."""
    app.config["DEV_LOGIN"] = True
    try:
        state = start_install(client, fake_shopify)
        fake_shopify.register_code(DOMAIN, "auth-code-1")
        resp = client.get("/auth/callback", query_string=callback_query(state))
    finally:
        app.config["DEV_LOGIN"] = False
    assert resp.headers["Location"] == f"/app?shop={DOMAIN}"


def test_replayed_callback_refused(client: FlaskClient, fake_shopify: FakeShopify) -> None:
    """The state is single-use: the same callback a second time is refused before any exchange."""
    state = start_install(client, fake_shopify)
    fake_shopify.register_code(DOMAIN, "auth-code-1")
    query = callback_query(state)
    assert client.get("/auth/callback", query_string=query).status_code == 302
    client.set_cookie(STATE_COOKIE, _signed_cookie_for(client, state), path="/auth")
    replay = client.get("/auth/callback", query_string=query)
    assert replay.status_code == 401
    assert len(fake_shopify.token_requests) == 1


def _signed_cookie_for(client: FlaskClient, state: str) -> str:
    from shopify_app.auth.oauth import _state_serializer

    with client.application.app_context():
        return _state_serializer().dumps(state)


def test_foreign_state_refused(app: Flask, fake_shopify: FakeShopify) -> None:
    """A state issued to another browser (no matching cookie here) is refused."""
    attacker = app.test_client()
    victim = app.test_client()
    state = start_install(attacker, fake_shopify)
    fake_shopify.register_code(DOMAIN, "auth-code-1")
    resp = victim.get("/auth/callback", query_string=callback_query(state))
    assert resp.status_code == 401
    assert fake_shopify.token_requests == [] and Shop.by_domain(DOMAIN) is None
    # A cookie for a different state does not help either.
    start_install(victim, fake_shopify)
    assert victim.get("/auth/callback", query_string=callback_query(state)).status_code == 401


def test_unknown_state_refused(client: FlaskClient, fake_shopify: FakeShopify) -> None:
    """A state we never issued (or that expired from Redis) is refused even with its cookie."""
    client.set_cookie(STATE_COOKIE, _signed_cookie_for(client, "made-up"), path="/auth")
    resp = client.get("/auth/callback", query_string=callback_query("made-up"))
    assert resp.status_code == 401
    assert fake_shopify.token_requests == []


def test_state_for_another_shop_refused(client: FlaskClient, fake_shopify: FakeShopify) -> None:
    """A state issued for one shop cannot complete another shop's install."""
    state = start_install(client, fake_shopify, "first-shop.myshopify.com")
    resp = client.get(
        "/auth/callback", query_string=callback_query(state, domain="second-shop.myshopify.com")
    )
    assert resp.status_code == 401
    assert fake_shopify.token_requests == []


@pytest.mark.parametrize(
    "tamper", ["wrong_secret", "altered_code", "missing_hmac", "stale", "evil_domain"]
)
def test_tampered_callback_refused(
    client: FlaskClient, fake_shopify: FakeShopify, tamper: str
) -> None:
    """hmac, timestamp and domain are checked before the state is even looked at."""
    state = start_install(client, fake_shopify)
    query = callback_query(
        state,
        secret="wrong" if tamper == "wrong_secret" else API_SECRET,
        timestamp=int(time.time()) - 600 if tamper == "stale" else None,
        domain="shop.myshopify.com.evil.com" if tamper == "evil_domain" else DOMAIN,
    )
    if tamper == "altered_code":
        query["code"] = "another-code"
    if tamper == "missing_hmac":
        del query["hmac"]
    resp = client.get("/auth/callback", query_string=query)
    assert resp.status_code in (400, 401)
    assert "Shopify" in resp.get_data(as_text=True)
    assert fake_shopify.token_requests == []
    # The state was not consumed by the refused attempt: the genuine callback still works.
    fake_shopify.register_code(DOMAIN, "auth-code-1")
    assert client.get("/auth/callback", query_string=callback_query(state)).status_code == 302


def test_unknown_code_refused(client: FlaskClient, fake_shopify: FakeShopify) -> None:
    """Shopify refusing the code -> 400, nothing installed."""
    state = start_install(client, fake_shopify)
    resp = client.get("/auth/callback", query_string=callback_query(state, code="never-issued"))
    assert resp.status_code == 400
    assert Shop.by_domain(DOMAIN) is None


@pytest.mark.parametrize("domain", ["evil.com", "shop.myshopify.com.evil.com", ""])
def test_install_refuses_foreign_domains(client: FlaskClient, domain: str) -> None:
    """/auth/install only redirects to *.myshopify.com."""
    resp = client.get("/auth/install", query_string={"shop": domain})
    assert resp.status_code == 400
    assert "Location" not in resp.headers
