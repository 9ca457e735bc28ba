"""GET /app: the signed embedded load, token exchange against the Shopify stand-in, the
embedded shell with its CSP, and every way a load is refused."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import pytest
from flask.testing import FlaskClient
from sqlalchemy import text

from shopify_app.crypto import decrypt
from shopify_app.extensions import db
from shopify_app.models import Shop, utcnow
from tests.conftest import API_KEY, API_SECRET, make_shop, session_token_for
from tests.fakes.shopify_server import FakeShopify
from tests.fakes.signing import oauth_query

DOMAIN = "fresh-install.myshopify.com"


def app_query(
    domain: str = DOMAIN,
    *,
    id_token: str | None = "auto",
    secret: str = API_SECRET,
    timestamp: int | None = None,
    **extra: str,
) -> dict[str, str]:
    params = {
        "shop": domain,
        "host": "YWRtaW4uc2hvcGlmeS5jb20vc3RvcmUvZnJlc2g",
        "embedded": "1",
        "locale": "en",
        "session": "abc123",
        "timestamp": str(int(time.time()) if timestamp is None else timestamp),
        **extra,
    }
    if id_token == "auto":
        params["id_token"] = session_token_for(domain)
    elif id_token is not None:
        params["id_token"] = id_token
    return oauth_query(params, secret)


def test_first_load_installs_with_encrypted_tokens(
    client: FlaskClient, fake_shopify: FakeShopify
) -> None:
    """A new shop's first load trades the session token, stores both tokens encrypted, and
    copies the shop's details from Shopify."""
    fake_shopify.add_shop(
        DOMAIN,
        name="Fresh Goods",
        iana_timezone="Europe/Paris",
        currency_code="EUR",
        country_code="FR",
        email="owner@fresh.example",
    )
    resp = client.get("/app", query_string=app_query())
    assert resp.status_code == 200, resp.get_data(as_text=True)

    [exchange] = fake_shopify.token_requests
    assert exchange["status"] == 200
    assert exchange["params"]["grant_type"] == "urn:ietf:params:oauth:grant-type:token-exchange"
    assert exchange["params"]["requested_token_type"] == (
        "urn:shopify:params:oauth:token-type:offline-access-token"
    )
    assert exchange["params"]["expiring"] == "1"

    shop = Shop.by_domain(DOMAIN)
    assert shop is not None and shop.is_installed
    issued = fake_shopify.token_for(DOMAIN)
    assert issued and decrypt(shop.access_token_enc) == issued
    assert decrypt(shop.refresh_token_enc).startswith("shprt_")
    raw = db.session.execute(
        text("SELECT access_token_enc, refresh_token_enc FROM shop WHERE domain = :d"),
        {"d": DOMAIN},
    ).one()
    assert issued not in raw[0] and "shprt_" not in raw[1]
    assert shop.access_token_expires_at is not None
    assert 3500 < (shop.access_token_expires_at - utcnow()).total_seconds() <= 3600
    assert (shop.refresh_token_expires_at - utcnow()).days in (89, 90)
    assert "write_discounts" in shop.scopes
    assert (shop.name, shop.email, shop.timezone, shop.currency, shop.country) == (
        "Fresh Goods",
        "owner@fresh.example",
        "Europe/Paris",
        "EUR",
        "FR",
    )
    assert shop.primary_domain == DOMAIN
    assert [c.field for c in fake_shopify.graphql_calls] == ["shop"]


def test_shell_has_csp_and_app_bridge(client: FlaskClient, fake_shopify: FakeShopify) -> None:
    """The embedded document may only be framed by this shop's admin and loads App Bridge."""
    resp = client.get("/app", query_string=app_query())
    assert resp.status_code == 200
    assert resp.headers["Content-Security-Policy"] == (
        f"frame-ancestors https://{DOMAIN} https://admin.shopify.com;"
    )
    html = resp.get_data(as_text=True)
    head = html.split("</head>")[0]
    assert '<script src="https://cdn.shopify.com/shopifycloud/app-bridge.js"></script>' in head
    assert f'<meta name="shopify-api-key" content="{API_KEY}">' in head


def test_installed_shop_loads_without_token_exchange(
    client: FlaskClient, fake_shopify: FakeShopify
) -> None:
    """A shop with a usable token is not exchanged again on every load."""
    make_shop(DOMAIN)
    resp = client.get("/app", query_string=app_query())
    assert resp.status_code == 200
    assert fake_shopify.token_requests == []
    assert decrypt(Shop.by_domain(DOMAIN).access_token_enc) == "shpat_test_token"


def test_unreadable_token_is_exchanged_again(
    client: FlaskClient, fake_shopify: FakeShopify
) -> None:
    """A token no configured key can decrypt counts as no token: exchange a new one."""
    shop = make_shop(DOMAIN)
    shop.access_token_enc = "not-a-fernet-token"
    shop.refresh_token_enc = "not-a-fernet-token"
    db.session.commit()
    assert client.get("/app", query_string=app_query()).status_code == 200
    assert len(fake_shopify.token_requests) == 1
    db.session.expire_all()
    assert decrypt(Shop.by_domain(DOMAIN).access_token_enc) == fake_shopify.token_for(DOMAIN)


def test_reinstall_after_uninstall(client: FlaskClient, fake_shopify: FakeShopify) -> None:
    """An uninstalled shop that opens the app again gets new tokens and is installed again."""
    fake_shopify.add_shop(DOMAIN, name="Back Again")
    shop = make_shop(DOMAIN, access_token="shpat_revoked", name="Old Name")
    shop.uninstalled_at = utcnow()
    first_install = shop.installed_at
    db.session.commit()

    assert client.get("/app", query_string=app_query()).status_code == 200
    db.session.expire_all()
    shop = Shop.by_domain(DOMAIN)
    assert shop.is_installed and shop.uninstalled_at is None
    assert shop.installed_at > first_install
    assert decrypt(shop.access_token_enc) == fake_shopify.token_for(DOMAIN)
    assert shop.name == "Back Again"  # refreshed from Shopify's answer


def test_invalid_subject_token_asks_app_bridge_to_retry(
    client: FlaskClient, fake_shopify: FakeShopify
) -> None:
    """Shopify refusing the session token (400 invalid_subject_token) -> 401 + retry header."""
    # Valid for our checks, but Shopify's clock says it expired long ago.
    fake_shopify.advance(3600)
    resp = client.get("/app", query_string=app_query())
    assert resp.status_code == 401
    assert resp.headers["X-Shopify-Retry-Invalid-Session-Request"] == "1"
    assert fake_shopify.token_requests[0]["error"] == "invalid_subject_token"
    assert Shop.by_domain(DOMAIN) is None


@pytest.mark.parametrize("tamper", ["wrong_secret", "altered_param", "missing_hmac"])
def test_bad_hmac_refused(client: FlaskClient, fake_shopify: FakeShopify, tamper: str) -> None:
    """The query hmac must be Shopify's, over exactly these parameters."""
    query = app_query(secret="some-other-secret" if tamper == "wrong_secret" else API_SECRET)
    if tamper == "altered_param":
        query["host"] = "ZXZpbA"
    if tamper == "missing_hmac":
        del query["hmac"]
    resp = client.get("/app", query_string=query)
    assert resp.status_code == 401
    assert "Open Tidings again" in resp.get_data(as_text=True)
    assert fake_shopify.token_requests == [] and Shop.by_domain(DOMAIN) is None


def test_stale_or_future_timestamp_refused(client: FlaskClient, fake_shopify: FakeShopify) -> None:
    """A signed query older than five minutes (or from the future) is not accepted."""
    for ts in (int(time.time()) - 301, int(time.time()) + 120):
        resp = client.get("/app", query_string=app_query(timestamp=ts))
        assert resp.status_code == 400
    assert fake_shopify.token_requests == []


@pytest.mark.parametrize(
    "domain",
    ["evil.com", "shop.myshopify.com.evil.com", "shop.myshopify.com/evil", "xn--.myshopify.co"],
)
def test_foreign_domain_refused(
    client: FlaskClient, fake_shopify: FakeShopify, domain: str
) -> None:
    """Only anchored *.myshopify.com domains, even when correctly signed."""
    resp = client.get("/app", query_string=app_query(domain, id_token=None))
    assert resp.status_code == 400
    assert fake_shopify.token_requests == []


@pytest.mark.parametrize(
    "claims",
    [
        {"aud": "another-apps-key"},
        {"exp_in": -120, "now": time.time() - 60},
        {"dest": "https://other-shop.myshopify.com"},
        {
            "iss": "https://other-shop.myshopify.com/admin",
            "dest": "https://other-shop.myshopify.com",
        },
    ],
)
def test_bad_session_token_refused(
    client: FlaskClient, fake_shopify: FakeShopify, claims: dict
) -> None:
    """Another app's token, an expired one, iss/dest disagreeing, or another shop's token."""
    token = session_token_for(DOMAIN, **claims)
    resp = client.get("/app", query_string=app_query(id_token=token, embedded="0"))
    assert resp.status_code == 401
    assert resp.headers["X-Shopify-Retry-Invalid-Session-Request"] == "1"
    assert fake_shopify.token_requests == []


def test_expired_session_token_embedded_bounces(
    client: FlaskClient, fake_shopify: FakeShopify
) -> None:
    """Embedded, an expired id_token sends the page to the bounce page for a fresh one."""
    token = session_token_for(DOMAIN, exp_in=-120, now=time.time() - 60)
    resp = client.get("/app", query_string=app_query(id_token=token))
    assert resp.status_code == 302
    assert urlsplit(resp.headers["Location"]).path == "/auth/session-token"


def test_missing_id_token_embedded_goes_to_bounce_page(client: FlaskClient) -> None:
    """Without id_token the bounce page loads App Bridge, which reloads /app with one."""
    query = app_query(id_token=None)
    resp = client.get("/app", query_string=query)
    assert resp.status_code == 302
    location = urlsplit(resp.headers["Location"])
    assert location.path == "/auth/session-token"
    params = parse_qs(location.query)
    assert params["shop"] == [DOMAIN]
    reload_url = urlsplit(params["shopify-reload"][0])
    assert f"{reload_url.scheme}://{reload_url.netloc}" == "http://localhost"
    assert reload_url.path == "/app"
    assert parse_qs(reload_url.query)["hmac"] == [query["hmac"]]
    assert "id_token" not in parse_qs(reload_url.query)

    bounce = client.get(resp.headers["Location"])
    assert bounce.status_code == 200
    assert "app-bridge.js" in bounce.get_data(as_text=True)
    assert bounce.headers["Content-Security-Policy"].startswith(f"frame-ancestors https://{DOMAIN}")


def test_missing_id_token_not_embedded_goes_to_install(client: FlaskClient) -> None:
    """Outside the admin iframe the legacy OAuth install takes over."""
    resp = client.get("/app", query_string=app_query(id_token=None, embedded="0"))
    assert resp.status_code == 302
    assert resp.headers["Location"] == f"/auth/install?shop={DOMAIN}"


def test_unsigned_app_load_is_404_without_dev_login(client: FlaskClient) -> None:
    """With DEV_LOGIN off, /app without hmac or id_token does not exist."""
    assert client.get("/app", query_string={"shop": DOMAIN}).status_code == 404
