"""@app_proxy_required and the /api session-token guard, with requests signed as Shopify does."""

from __future__ import annotations

import time
from urllib.parse import urlencode

import pytest
from flask import Flask, g, jsonify
from flask.testing import FlaskClient

from shopify_app.auth.app_proxy import app_proxy_required
from shopify_app.extensions import db
from shopify_app.models import Shop, utcnow
from tests.conftest import API_SECRET, SHOP_DOMAIN, session_token_for
from tests.fakes.signing import app_proxy_query


@app_proxy_required
def whoami():  # noqa: ANN201 - a stand-in /proxy view
    return jsonify(shop=g.shop.domain, customer=g.proxy_customer_id)


def proxy_params(domain: str = SHOP_DOMAIN, **extra: str | list[str]) -> dict:
    params: dict = {
        "shop": domain,
        "path_prefix": "/apps/tidings",
        "timestamp": str(int(time.time())),
        "logged_in_customer_id": "",
        **extra,
    }
    return params


def call(app: Flask, params: dict, secret: str = API_SECRET, tamper=None):  # noqa: ANN001, ANN201
    query = app_proxy_query(params, secret)
    if tamper:
        tamper(query)
    with app.test_request_context(
        f"/proxy/subscribe?{urlencode(query, doseq=True)}", method="POST"
    ):
        result = whoami()
        if isinstance(result, tuple):
            body, status = result[0], result[1]
            return status, body.get_json()
        return result.status_code, result.get_json()


def test_guest_request_accepted(app: Flask, shop: Shop) -> None:
    """A signed request from a guest: g.shop set, g.proxy_customer_id None."""
    assert call(app, proxy_params()) == (200, {"shop": SHOP_DOMAIN, "customer": None})


def test_logged_in_customer_and_repeated_params(app: Flask, shop: Shop) -> None:
    """A customer's id is passed on; repeated parameters are signed joined by commas."""
    status, body = call(app, proxy_params(logged_in_customer_id="7012", tags=["a", "b"]))
    assert (status, body) == (200, {"shop": SHOP_DOMAIN, "customer": "7012"})


@pytest.mark.parametrize("case", ["wrong_secret", "altered", "added", "missing", "stale"])
def test_bad_requests_refused(app: Flask, shop: Shop, case: str) -> None:
    """Wrong secret, altered or added parameter, no signature, stale timestamp: 401."""
    params = proxy_params()
    if case == "stale":
        params["timestamp"] = str(int(time.time()) - 301)
    tampers = {
        "altered": lambda q: q.__setitem__("logged_in_customer_id", "1"),
        "added": lambda q: q.__setitem__("extra", "1"),
        "missing": lambda q: q.pop("signature"),
    }
    status, body = call(
        app, params, "other-secret" if case == "wrong_secret" else API_SECRET, tampers.get(case)
    )
    assert status == 401
    assert body["error"]["code"] == "bad_signature"


@pytest.mark.parametrize("domain", ["evil.com", "shop.myshopify.com.evil.com"])
def test_foreign_domain_refused(app: Flask, domain: str) -> None:
    """Correctly signed but not a myshopify.com domain: 401."""
    status, body = call(app, proxy_params(domain))
    assert status == 401 and body["error"]["details"]["reason"] == "bad_shop_domain"


def test_uninstalled_or_unknown_shop_refused(app: Flask, shop: Shop) -> None:
    """A signed request for a shop that is not installed (or unknown) is refused."""
    status, body = call(app, proxy_params("unknown-shop.myshopify.com"))
    assert status == 401 and body["error"]["details"]["reason"] == "shop_not_installed"
    shop.uninstalled_at = utcnow()
    db.session.commit()
    status, body = call(app, proxy_params())
    assert status == 401 and body["error"]["details"]["reason"] == "shop_not_installed"


# -- the /api guard with session tokens ------------------------------------------------------


def _api(client: FlaskClient, token: str):  # noqa: ANN202
    # An unknown path under /api: 404 means the guard let the request through.
    return client.get("/api/no-such-thing", headers={"Authorization": f"Bearer {token}"})


def test_api_accepts_valid_session_token(client: FlaskClient, shop: Shop) -> None:
    """A current token for an installed shop passes the guard."""
    assert _api(client, session_token_for(SHOP_DOMAIN)).status_code == 404


@pytest.mark.parametrize(
    "claims, reason",
    [
        ({"aud": "another-app"}, "wrong_audience"),
        ({"exp_in": -60, "now": time.time() - 30}, "expired"),
        ({"dest": "https://other-shop.myshopify.com"}, "iss_dest_mismatch"),
    ],
)
def test_api_refuses_bad_session_tokens(
    client: FlaskClient, shop: Shop, claims: dict, reason: str
) -> None:
    """Another app's token, an expired token, iss and dest naming different shops: 401."""
    resp = _api(client, session_token_for(SHOP_DOMAIN, **claims))
    assert resp.status_code == 401
    assert resp.headers["X-Shopify-Retry-Invalid-Session-Request"] == "1"
    assert resp.get_json()["error"]["details"]["reason"] == reason


def test_api_refuses_shop_that_is_not_installed(client: FlaskClient, shop: Shop) -> None:
    """A valid token for a shop we do not have, or one that uninstalled, is refused."""
    resp = _api(client, session_token_for("stranger.myshopify.com"))
    assert resp.status_code == 401
    assert resp.get_json()["error"]["details"]["reason"] == "shop_not_installed"
    shop.uninstalled_at = utcnow()
    db.session.commit()
    assert _api(client, session_token_for(SHOP_DOMAIN)).status_code == 401
