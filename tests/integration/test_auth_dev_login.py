"""Development sign-in: /app?shop=... and /dev/session-token, only with DEV_LOGIN on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient

from shopify_app.auth.session_token import verify_session_token
from shopify_app.models import Shop
from tests.conftest import API_KEY, API_SECRET, SHOP_DOMAIN

NEW_DOMAIN = "brand-new-dev.myshopify.com"


@pytest.fixture
def dev_login(app: Flask) -> Iterator[None]:
    app.config["DEV_LOGIN"] = True
    try:
        yield
    finally:
        app.config["DEV_LOGIN"] = False


def test_dev_sign_in_renders_shell_without_app_bridge(
    client: FlaskClient, dev_login: None, shop: Shop
) -> None:
    """On loopback with DEV_LOGIN, /app?shop= renders the shell with a minted session token."""
    resp = client.get("/app", query_string={"shop": SHOP_DOMAIN})
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert "cdn.shopify.com" not in html and "shopify-api-key" not in html
    assert resp.headers["Content-Security-Policy"].startswith(
        f"frame-ancestors https://{SHOP_DOMAIN}"
    )
    assert '"devSessionToken": "ey' in html


def test_dev_session_token_passes_the_api_guard(
    client: FlaskClient, dev_login: None, shop: Shop
) -> None:
    """The minted token has App Bridge's format and opens /api for that shop."""
    resp = client.get("/dev/session-token", query_string={"shop": SHOP_DOMAIN})
    assert resp.status_code == 200 and resp.headers["Cache-Control"] == "no-store"
    token = resp.get_json()["token"]
    check = verify_session_token(token, api_key=API_KEY, secret=API_SECRET)
    assert check.ok and check.shop == SHOP_DOMAIN
    assert check.claims["exp"] - check.claims["iat"] == 60
    # The guard accepts it: an unknown /api path gets past it to a 404, not a 401.
    api = client.get("/api/no-such-resource", headers={"Authorization": f"Bearer {token}"})
    assert api.status_code == 404


def test_dev_sign_in_creates_missing_shop(client: FlaskClient, dev_login: None) -> None:
    """A missing shop is created installed, without a token, named from its domain."""
    assert client.get("/app", query_string={"shop": NEW_DOMAIN}).status_code == 200
    shop = Shop.by_domain(NEW_DOMAIN)
    assert shop is not None and shop.is_installed
    assert shop.access_token_enc is None and shop.name == "Brand New Dev"
    token = client.get("/dev/session-token", query_string={"shop": NEW_DOMAIN}).get_json()["token"]
    assert (
        client.get("/api/nothing", headers={"Authorization": f"Bearer {token}"}).status_code == 404
    )


def test_dev_sign_in_404_when_off(client: FlaskClient, shop: Shop) -> None:
    """DEV_LOGIN off: both routes behave as if they did not exist."""
    assert client.get("/app", query_string={"shop": SHOP_DOMAIN}).status_code == 404
    assert client.get("/dev/session-token", query_string={"shop": SHOP_DOMAIN}).status_code == 404


def test_dev_sign_in_404_from_another_machine(
    client: FlaskClient, dev_login: None, shop: Shop
) -> None:
    """DEV_LOGIN on but the request is not from loopback: 404."""
    remote = {"REMOTE_ADDR": "203.0.113.7"}
    assert (
        client.get("/app", query_string={"shop": SHOP_DOMAIN}, environ_base=remote).status_code
        == 404
    )
    assert (
        client.get(
            "/dev/session-token", query_string={"shop": SHOP_DOMAIN}, environ_base=remote
        ).status_code
        == 404
    )
    assert Shop.by_domain(SHOP_DOMAIN) is not None
    ipv6 = {"REMOTE_ADDR": "::1"}
    assert (
        client.get("/app", query_string={"shop": SHOP_DOMAIN}, environ_base=ipv6).status_code == 200
    )


def test_dev_session_token_refuses_unknown_or_foreign_shops(
    client: FlaskClient, dev_login: None
) -> None:
    """No token for a shop that does not exist, and no shop for a non-myshopify domain."""
    assert client.get("/dev/session-token", query_string={"shop": NEW_DOMAIN}).status_code == 404
    assert client.get("/app", query_string={"shop": "evil.com"}).status_code == 400
    assert Shop.by_domain("evil.com") is None


def test_dev_login_refused_in_production_config() -> None:
    """Config refuses DEV_LOGIN in production, so these routes can never be on there."""
    from shopify_app.config import ConfigError, load_settings

    env = {
        "TIDINGS_ENV": "production",
        "DEV_LOGIN": "true",
        "SHOPIFY_API_KEY": "k",
        "SHOPIFY_API_SECRET": "s",
        "SECRET_KEY": "x",
        "DATABASE_URL": "postgresql://h/db",
        "REDIS_URL": "redis://h",
        "APP_URL": "https://a",
        "TOKEN_ENCRYPTION_KEYS": "k",
        "TWILIO_ACCOUNT_SID": "AC1",
        "TWILIO_AUTH_TOKEN": "t",
        "TWILIO_FROM_NUMBER": "+1",
    }
    with pytest.raises(ConfigError, match="DEV_LOGIN"):
        load_settings(env)
