"""Installing a shop: record its tokens and install time, then fetch its details from Shopify."""

from __future__ import annotations

import logging

from sqlalchemy.exc import IntegrityError

from shopify_app.auth.tokens import store_grant
from shopify_app.extensions import db
from shopify_app.models import Shop
from shopify_app.models.base import utcnow
from shopify_app.shopify.client import ShopifyClient
from shopify_app.shopify.errors import ShopifyError
from shopify_app.shopify.token_endpoint import TokenGrant

log = logging.getLogger(__name__)

SHOP_INFO_QUERY = """
query TidingsShopInfo {
  shop {
    name
    email
    ianaTimezone
    currencyCode
    billingAddress { countryCodeV2 }
    primaryDomain { host }
  }
}
"""


def default_shop_name(domain: str) -> str:
    """`my-store.myshopify.com` -> `My Store` (until Shopify tells us the real name)."""
    return domain.split(".", 1)[0].replace("-", " ").title()


def _record_grant(domain: str, grant: TokenGrant) -> Shop:
    now = utcnow()
    shop = Shop.by_domain(domain)
    if shop is None:
        shop = Shop(domain=domain, name=default_shop_name(domain))
        db.session.add(shop)
    if not shop.is_installed:  # first install, or back after an uninstall
        shop.installed_at = now
        shop.uninstalled_at = None
    store_grant(shop, grant)
    db.session.commit()
    return shop


def complete_install(domain: str, grant: TokenGrant) -> Shop:
    """Store the grant (encrypted) and mark the shop installed, then refresh its details.

    The tokens are committed before Shopify is asked anything else: a failed details fetch
    must not lose a grant Shopify has already issued."""
    try:
        shop = _record_grant(domain, grant)
    except IntegrityError:
        # Two first loads raced to create the row; the other one won, so update it instead.
        db.session.rollback()
        shop = _record_grant(domain, grant)
    log.info("shop %s installed or re-authorised (scopes=%s)", domain, shop.scopes)
    refresh_shop_info(shop)
    return shop


def refresh_shop_info(shop: Shop) -> bool:
    """Copy name, email, time zone, currency, country and primary domain from Shopify.

    Returns False (and keeps the old values) when Shopify could not be asked."""
    try:
        with ShopifyClient(shop) as client:
            data = client.execute(SHOP_INFO_QUERY)
    except ShopifyError as exc:
        log.warning("could not fetch shop details for %s: %s", shop.domain, type(exc).__name__)
        return False
    info = data.get("shop") or {}
    shop.name = info.get("name") or shop.name
    shop.email = info.get("email") or shop.email
    shop.timezone = info.get("ianaTimezone") or shop.timezone
    shop.currency = info.get("currencyCode") or shop.currency
    country = (info.get("billingAddress") or {}).get("countryCodeV2")
    if isinstance(country, str) and len(country) == 2:
        shop.country = country
    shop.primary_domain = (info.get("primaryDomain") or {}).get("host") or shop.primary_domain
    db.session.commit()
    return True


def ensure_dev_shop(domain: str) -> Shop:
    """Development sign-in: the shop, created as installed without a token when missing."""
    shop = Shop.by_domain(domain)
    if shop is None:
        shop = Shop(domain=domain, name=default_shop_name(domain), installed_at=utcnow())
        db.session.add(shop)
        db.session.commit()
        log.info("created development shop %s", domain)
    return shop
