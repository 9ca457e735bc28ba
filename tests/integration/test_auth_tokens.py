"""Expiring offline tokens: refresh ahead of expiry, one refresh per shop under concurrency,
a refused refresh token, and the periodic renewal job — all against the Shopify stand-in."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from flask import Flask

from jobs.tokens import refresh_expiring_tokens
from shopify_app.auth.token_exchange import exchange_session_token
from shopify_app.auth.tokens import (
    ReauthorizationRequired,
    TokenUnavailable,
    access_token_for,
    has_usable_token,
    needs_reauthorization,
)
from shopify_app.crypto import decrypt
from shopify_app.extensions import db, get_redis
from shopify_app.models import Shop, utcnow
from shopify_app.services.install import complete_install
from shopify_app.shopify.errors import ShopifyAuthError
from tests.conftest import SHOP_DOMAIN, session_token_for
from tests.fakes.shopify_server import FakeShopify


def install(domain: str = SHOP_DOMAIN) -> Shop:
    """Install through token exchange, as the first admin load does."""
    return complete_install(domain, exchange_session_token(domain, session_token_for(domain)))


def expire_access_token_in(shop: Shop, seconds: float) -> None:
    shop.access_token_expires_at = utcnow() + timedelta(seconds=seconds)
    db.session.commit()


def test_fresh_token_is_used_without_refresh(fake_shopify: FakeShopify) -> None:
    """More than a minute left: the stored token is returned, Shopify is not asked."""
    shop = install()
    assert access_token_for(shop) == fake_shopify.token_for(SHOP_DOMAIN)
    assert fake_shopify.refresh_count.get(SHOP_DOMAIN, 0) == 0


def test_refresh_ahead_of_expiry_rotates_and_stores(fake_shopify: FakeShopify) -> None:
    """Under 60 s left: refresh with the refresh token, store the new (rotated) pair."""
    shop = install()
    old_access = decrypt(shop.access_token_enc)
    old_refresh = decrypt(shop.refresh_token_enc)
    expire_access_token_in(shop, 30)

    token = access_token_for(shop)

    assert fake_shopify.refresh_count[SHOP_DOMAIN] == 1
    [refresh] = [
        r for r in fake_shopify.token_requests if r["params"].get("grant_type") == "refresh_token"
    ]
    assert refresh["params"]["refresh_token"] == old_refresh
    assert token != old_access and token == fake_shopify.token_for(SHOP_DOMAIN)
    db.session.expire_all()
    stored = Shop.by_domain(SHOP_DOMAIN)
    assert decrypt(stored.access_token_enc) == token
    assert decrypt(stored.refresh_token_enc) not in (None, old_refresh)
    assert (stored.access_token_expires_at - utcnow()).total_seconds() > 3500
    # The caller's object was brought up to date as well.
    assert decrypt(shop.access_token_enc) == token


def test_concurrent_refresh_happens_once(app: Flask, fake_shopify: FakeShopify) -> None:
    """Two workers needing a refresh at once: one refresh at Shopify, both get the new token."""
    shop = install()
    expire_access_token_in(shop, 10)
    shop_id = shop.id
    barrier = threading.Barrier(2)
    results: list[str] = []
    errors: list[BaseException] = []

    def worker() -> None:
        with app.app_context():
            try:
                row = db.session.get(Shop, shop_id)
                barrier.wait(10)
                results.append(access_token_for(row))
            except BaseException as exc:  # handed to the test thread
                errors.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert fake_shopify.refresh_count[SHOP_DOMAIN] == 1
    assert len(results) == 2 and results[0] == results[1]
    assert results[0] == fake_shopify.token_for(SHOP_DOMAIN)


def test_refresh_waits_for_another_workers_lock(app: Flask, fake_shopify: FakeShopify) -> None:
    """While another worker holds the shop's lock, a refresh waits and then re-reads the row."""
    shop = install()
    expire_access_token_in(shop, 10)
    lock = get_redis().lock(f"tidings:lock:shop-token:{shop.id}", timeout=30)
    assert lock.acquire()
    result: list[str] = []
    waiter = threading.Thread(target=lambda: _token_in_thread(app, shop.id, result))
    waiter.start()
    waiter.join(0.5)
    assert waiter.is_alive() and fake_shopify.refresh_count.get(SHOP_DOMAIN, 0) == 0
    # "Another worker" finishes its refresh: stores a fresh token, releases the lock.
    shop.access_token_expires_at = utcnow() + timedelta(hours=1)
    db.session.commit()
    lock.release()
    waiter.join(30)
    assert result == [decrypt(shop.access_token_enc)]
    assert fake_shopify.refresh_count.get(SHOP_DOMAIN, 0) == 0


def _token_in_thread(app: Flask, shop_id: int, out: list[str]) -> None:
    with app.app_context():
        try:
            out.append(access_token_for(db.session.get(Shop, shop_id)))
        finally:
            db.session.remove()


def test_refused_refresh_token_needs_reauthorization(fake_shopify: FakeShopify) -> None:
    """invalid_grant: the tokens are dropped, the shop needs re-auth, callers get an auth error."""
    shop = install()
    fake_shopify.revoke_tokens(SHOP_DOMAIN)
    expire_access_token_in(shop, 5)

    with pytest.raises(ReauthorizationRequired) as raised:
        access_token_for(shop)
    assert isinstance(raised.value, ShopifyAuthError)
    db.session.expire_all()
    stored = Shop.by_domain(SHOP_DOMAIN)
    assert stored.access_token_enc is None and stored.refresh_token_enc is None
    assert stored.is_installed and needs_reauthorization(stored)
    assert not has_usable_token(stored)
    # No refresh token left: the next call fails at once without asking Shopify again.
    requests_before = len(fake_shopify.token_requests)
    with pytest.raises(ReauthorizationRequired):
        access_token_for(stored)
    assert len(fake_shopify.token_requests) == requests_before


def test_unreachable_shopify_keeps_tokens(app: Flask, fake_shopify: FakeShopify) -> None:
    """A transient failure raises TokenUnavailable and leaves the stored tokens alone."""
    shop = install()
    expire_access_token_in(shop, 5)
    refresh_before = shop.refresh_token_enc
    app.config["SHOPIFY_ADMIN_BASE_URL"] = "http://127.0.0.1:9/{shop}"  # nothing listens there
    with pytest.raises(TokenUnavailable):
        access_token_for(shop)
    db.session.expire_all()
    assert Shop.by_domain(SHOP_DOMAIN).refresh_token_enc == refresh_before


def test_periodic_job_renews_only_refresh_tokens_near_expiry(fake_shopify: FakeShopify) -> None:
    """Refresh tokens within 14 days of expiry are renewed; others and uninstalled are left."""
    due = install("due-shop.myshopify.com")
    fresh = install("fresh-shop.myshopify.com")
    gone = install("gone-shop.myshopify.com")
    due.refresh_token_expires_at = utcnow() + timedelta(days=10)
    gone.refresh_token_expires_at = utcnow() + timedelta(days=3)
    gone.uninstalled_at = utcnow()
    db.session.commit()
    old_refresh = decrypt(due.refresh_token_enc)

    counts = refresh_expiring_tokens()

    assert counts == {"due": 1, "refreshed": 1, "failed": 0}
    assert fake_shopify.refresh_count == {"due-shop.myshopify.com": 1}
    db.session.expire_all()
    renewed = db.session.get(Shop, due.id)
    assert decrypt(renewed.refresh_token_enc) != old_refresh
    assert (renewed.refresh_token_expires_at - utcnow()).days >= 89
    assert db.session.get(Shop, fresh.id).refresh_token_expires_at > utcnow() + timedelta(days=80)
    # Run again: nothing is due any more (idempotent).
    assert refresh_expiring_tokens() == {"due": 0, "refreshed": 0, "failed": 0}


def test_periodic_job_survives_a_refused_shop(fake_shopify: FakeShopify) -> None:
    """One shop's refused refresh token does not stop the others; it is marked for re-auth."""
    bad = install("bad-shop.myshopify.com")
    good = install("good-shop.myshopify.com")
    for shop in (bad, good):
        shop.refresh_token_expires_at = utcnow() + timedelta(days=1)
    db.session.commit()
    fake_shopify.revoke_tokens("bad-shop.myshopify.com")

    counts = refresh_expiring_tokens()

    assert counts == {"due": 2, "refreshed": 1, "failed": 1}
    db.session.expire_all()
    assert needs_reauthorization(db.session.get(Shop, bad.id))
    assert not needs_reauthorization(db.session.get(Shop, good.id))
    assert fake_shopify.refresh_count == {"good-shop.myshopify.com": 1}


def test_refresh_job_is_scheduled() -> None:
    """The scheduler's periodic list names the renewal job."""
    from jobs.scheduler import PERIODIC

    assert any(p.func == "jobs.tokens.refresh_expiring_tokens" for p in PERIODIC)
