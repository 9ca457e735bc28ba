"""Offline access tokens: store them encrypted, hand out a usable one, refresh under a lock.

Shopify's expiring offline tokens live an hour; the refresh token lives 90 days, rotates on
every use and only the newest one works. Two workers refreshing at once would invalidate each
other, so refreshes are serialised per shop with a Redis lock and the row is re-read after the
lock is taken. A refresh is committed in its own transaction: the old refresh token is dead the
moment Shopify answers, so the new one must not depend on the caller's transaction committing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from redis.exceptions import LockError
from sqlalchemy import select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from shopify_app.crypto import decrypt, encrypt
from shopify_app.extensions import db, get_redis
from shopify_app.models import Shop
from shopify_app.models.base import utcnow
from shopify_app.shopify.errors import ShopifyAuthError, ShopifyError, TokenEndpointError
from shopify_app.shopify.token_endpoint import TokenGrant, request_token

log = logging.getLogger(__name__)

REFRESH_AHEAD = timedelta(seconds=60)  # refresh an access token with less than this left
REFRESH_TOKEN_RENEW_WINDOW = timedelta(days=14)  # the periodic job renews refresh tokens this early
LOCK_TIMEOUT_SECONDS = 30  # a worker that dies holding the lock frees it after this
LOCK_WAIT_SECONDS = 40  # longer than one refresh (HTTP timeout included) by the lock holder

_TOKEN_COLUMNS = (
    "access_token_enc",
    "access_token_expires_at",
    "refresh_token_enc",
    "refresh_token_expires_at",
    "scopes",
)


class ReauthorizationRequired(ShopifyAuthError):
    """The shop has no usable token: it must open the app again (token exchange) or reinstall."""


class TokenUnavailable(ShopifyError):
    """A refresh could not be done now (Shopify unreachable, lock busy); retry later."""


def store_grant(shop: Shop, grant: TokenGrant) -> None:
    """Put a grant on the shop row, encrypted. The caller commits."""
    shop.access_token_enc = encrypt(grant.access_token)
    shop.access_token_expires_at = grant.access_expires_at()
    shop.refresh_token_enc = encrypt(grant.refresh_token)
    shop.refresh_token_expires_at = grant.refresh_expires_at()
    if grant.scope:
        shop.scopes = grant.scope


def clear_tokens(shop: Shop) -> None:
    """Forget the shop's tokens: its next admin load goes through token exchange again."""
    shop.access_token_enc = None
    shop.access_token_expires_at = None
    shop.refresh_token_enc = None
    shop.refresh_token_expires_at = None


def _expiring(expires_at: datetime | None, now: datetime, ahead: timedelta) -> bool:
    return expires_at is not None and expires_at - now < ahead


def _refresh_token_alive(shop: Shop, now: datetime) -> bool:
    if decrypt(shop.refresh_token_enc) is None:
        return False
    return shop.refresh_token_expires_at is None or shop.refresh_token_expires_at > now


def has_usable_token(shop: Shop, now: datetime | None = None) -> bool:
    """A readable access token that is fresh, or that a live refresh token can renew."""
    now = now or utcnow()
    if decrypt(shop.access_token_enc) is None:
        return _refresh_token_alive(shop, now)
    if not _expiring(shop.access_token_expires_at, now, REFRESH_AHEAD):
        return True
    return _refresh_token_alive(shop, now)


def needs_reauthorization(shop: Shop) -> bool:
    """Installed, but nothing we hold can call the Admin API any more."""
    return shop.is_installed and not has_usable_token(shop)


def access_token_for(shop: Shop) -> str:
    """A usable access token for `shop`, refreshed first when less than a minute is left.

    A refresh commits in its own transaction. Do not hold uncommitted writes to this shop's
    row when calling it (the refresh would wait on your row lock).
    Raises ReauthorizationRequired (no usable token) or TokenUnavailable (try again later).
    """
    now = utcnow()
    token = decrypt(shop.access_token_enc)
    if token is not None and not _expiring(shop.access_token_expires_at, now, REFRESH_AHEAD):
        return token

    def access_expiring(row: Shop, at: datetime) -> bool:
        return decrypt(row.access_token_enc) is None or _expiring(
            row.access_token_expires_at, at, REFRESH_AHEAD
        )

    fresh, _ = _refresh_under_lock(shop.id, shop.domain, access_expiring)
    for column in _TOKEN_COLUMNS:  # keep the caller's object current without dirtying it
        set_committed_value(shop, column, fresh[column])
    token = decrypt(fresh["access_token_enc"])
    if token is None:
        raise ReauthorizationRequired(f"no access token for {shop.domain}")
    return token


def refresh_if_expiring(shop_id: int, window: timedelta = REFRESH_TOKEN_RENEW_WINDOW) -> bool:
    """Refresh when the refresh token ends within `window`. Returns whether a refresh happened."""
    shop = db.session.get(Shop, shop_id)
    if shop is None:
        return False

    def refresh_expiring(row: Shop, at: datetime) -> bool:
        return _expiring(row.refresh_token_expires_at, at, window)

    _, refreshed = _refresh_under_lock(shop.id, shop.domain, refresh_expiring)
    return refreshed


def _refresh_under_lock(
    shop_id: int, domain: str, should_refresh: Callable[[Shop, datetime], bool]
) -> tuple[dict, bool]:
    """Take the shop's lock, re-read the row, refresh if still needed.

    Returns the row's token columns and whether this call refreshed them."""
    lock = get_redis().lock(
        f"tidings:lock:shop-token:{shop_id}",
        timeout=LOCK_TIMEOUT_SECONDS,
        blocking_timeout=LOCK_WAIT_SECONDS,
    )
    if not lock.acquire():
        raise TokenUnavailable(f"token refresh lock for {domain} is busy")
    try:
        with Session(db.engine, expire_on_commit=False) as session:
            row = session.scalars(select(Shop).where(Shop.id == shop_id)).first()
            if row is None:
                raise ReauthorizationRequired(f"shop {domain} no longer exists")
            refreshed = should_refresh(row, utcnow())
            if refreshed:
                _refresh_row(session, row)
            return {column: getattr(row, column) for column in _TOKEN_COLUMNS}, refreshed
    finally:
        try:
            lock.release()
        except LockError:  # it outlived its timeout; another worker may hold it now
            log.warning("token refresh lock for %s expired before release", domain)


def _refresh_row(session: Session, row: Shop) -> None:
    refresh_token = decrypt(row.refresh_token_enc)
    if refresh_token is None or not _refresh_token_alive(row, utcnow()):
        log.warning("shop %s needs re-authentication: reason=no_refresh_token", row.domain)
        raise ReauthorizationRequired(f"no usable refresh token for {row.domain}")
    try:
        grant = request_token(
            row.domain, {"grant_type": "refresh_token", "refresh_token": refresh_token}
        )
    except TokenEndpointError as exc:
        if exc.error == "invalid_grant":
            # Shopify no longer knows this refresh token: only a new token exchange helps.
            log.warning("shop %s needs re-authentication: reason=invalid_grant", row.domain)
            clear_tokens(row)
            session.commit()
            raise ReauthorizationRequired(
                f"refresh token for {row.domain} was refused", status=exc.status
            ) from None
        log.error(
            "token refresh for %s failed: status=%s error=%s", row.domain, exc.status, exc.error
        )
        raise TokenUnavailable(f"token refresh for {row.domain} failed ({exc.error})") from None
    store_grant(row, grant)
    session.commit()
    log.info("refreshed the access token of %s", row.domain)


def reload_tokens(shop: Shop) -> bool:
    """Re-read the shop's token columns from the database (another worker may have refreshed).

    Returns whether the access token changed. The caller's object is updated without being
    marked dirty."""
    with Session(db.engine) as session:
        row = session.scalars(select(Shop).where(Shop.id == shop.id)).first()
        values = {column: getattr(row, column) for column in _TOKEN_COLUMNS} if row else None
    if values is None:
        return False
    changed = values["access_token_enc"] != shop.access_token_enc
    for column in _TOKEN_COLUMNS:
        set_committed_value(shop, column, values[column])
    return changed


def discard_access_token(shop: Shop) -> None:
    """Forget an access token Shopify refused (401), unless another worker replaced it already.

    The next access_token_for() then refreshes it, or raises ReauthorizationRequired when no
    refresh token is left — so a revoked token heals on the merchant's next admin visit."""
    refused = shop.access_token_enc
    with Session(db.engine) as session:
        session.execute(
            update(Shop)
            .where(Shop.id == shop.id, Shop.access_token_enc == refused)
            .values(access_token_enc=None, access_token_expires_at=None)
        )
        session.commit()
    reload_tokens(shop)
