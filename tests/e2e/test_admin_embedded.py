"""The admin pages inside the Shopify admin, in headless Chromium: the document loads App Bridge
from Shopify's CDN with the `shopify-api-key` meta, every /api call carries a session token from
`shopify.idToken()` (never the development one), navigation is App Bridge's (`ui-nav-menu`,
`ui-title-bar`) and links keep `host` and `embedded=1`, confirmations are App Bridge modals and
notices are App Bridge toasts.

The test machine has no CDN access, so the CDN URL is answered with a small stand-in that
implements the part of App Bridge's `window.shopify` the pages use, and records the calls.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from shopify_app.auth.embedded import APP_BRIDGE_SRC
from shopify_app.extensions import db
from shopify_app.models import Campaign
from tests.conftest import API_KEY, SHOP_DOMAIN, make_shop, session_token_for
from tests.e2e.admin_harness import admin_url, settle

pytestmark = pytest.mark.e2e

HOST = "YWRtaW4uc2hvcGlmeS5jb20vc3RvcmUvdGlkaW5ncy10ZXN0"  # base64 of the admin path

# The stand-in: a fresh token baked in per load (tokens live 60 s, the test takes seconds).
APP_BRIDGE_STUB = """
window.__bridge = { tokens: 0, toasts: [], modals: [] };
window.shopify = {
  idToken: async () => { window.__bridge.tokens++; return %(token)r; },
  toast: { show: (message, options) =>
    window.__bridge.toasts.push({ message, error: Boolean(options && options.isError) }) },
  modal: {
    show: (id) => {
      window.__bridge.modals.push(id);
      document.getElementById(id).dataset.open = "1";
    },
    hide: (id) => { const m = document.getElementById(id); if (m) delete m.dataset.open; },
  },
};
"""


def serve_app_bridge(page: Any) -> list[str]:
    """Answer the CDN script with the stand-in; returns the URLs it was asked for."""
    asked: list[str] = []

    def fulfill(route: Any) -> None:
        asked.append(route.request.url)
        route.fulfill(
            status=200,
            content_type="text/javascript",
            body=APP_BRIDGE_STUB % {"token": session_token_for(SHOP_DOMAIN)},
        )

    page.route(APP_BRIDGE_SRC, fulfill)
    return asked


def test_embedded_page_uses_app_bridge(page, live_server) -> None:
    """Campaigns inside the admin: App Bridge in <head>, tokens from it, its navigation, a
    delete confirmed in its modal and announced with its toast."""
    shop = make_shop(name="Lumen Candles")
    draft = Campaign(shop_id=shop.id, name="Draft idea", status="draft", body="Hi")
    db.session.add(draft)
    db.session.commit()
    draft_id = draft.id
    asked = serve_app_bridge(page)
    api_auth: list[str] = []
    dev_tokens: list[str] = []
    page.on(
        "request",
        lambda r: (
            api_auth.append(r.headers.get("authorization", ""))
            if "/api/" in r.url
            else dev_tokens.append(r.url)
            if "/dev/session-token" in r.url
            else None
        ),
    )
    url = admin_url(
        live_server.url,
        "/app/campaigns",
        SHOP_DOMAIN,
        host=HOST,
        embedded="1",
        id_token=session_token_for(SHOP_DOMAIN),
    )
    page.goto(url)
    settle(page)

    head = page.evaluate(
        """() => ({ meta: document.querySelector('meta[name=shopify-api-key]')?.content,
                    script: document.head.querySelector('script[src]')?.src })"""
    )
    assert head == {"meta": API_KEY, "script": APP_BRIDGE_SRC}
    assert asked == [APP_BRIDGE_SRC]
    assert page.locator("ui-title-bar").get_attribute("title") == "Campaigns"
    nav = page.locator("ui-nav-menu a").evaluate_all("els => els.map(e => e.textContent)")
    assert nav == [
        "Dashboard",
        "Campaigns",
        "Flows",
        "Subscribers",
        "Segments",
        "Settings",
        "Outbox",
    ]
    assert page.locator(".frame-nav, .dev-banner").count() == 0  # our own frame is for dev only
    create = page.get_by_role("link", name="Create campaign").first.get_attribute("href")
    assert f"host={HOST}" in create and "embedded=1" in create and "shop=" in create

    # Every API call carried App Bridge's token; the development sign-in was never used.
    assert api_auth and all(a.startswith("Bearer ey") for a in api_auth)
    assert dev_tokens == []
    assert page.evaluate("window.__bridge.tokens") >= 1

    # Delete: App Bridge's modal asks, its primary button confirms, its toast tells.
    page.get_by_role("button", name="Delete Draft idea").click()
    modal = page.locator("ui-modal[data-open]")
    modal.wait_for(state="attached")
    assert modal.locator("ui-title-bar").get_attribute("title") == "Delete “Draft idea”?"
    assert page.locator("dialog").count() == 0
    modal.locator("button[variant=primary]").click()
    page.wait_for_function("() => window.__bridge.toasts.length > 0")
    assert page.evaluate("window.__bridge.toasts") == [
        {"message": "Campaign deleted", "error": False}
    ]
    assert page.inner_text("#toasts") == ""  # our own toasts are for outside the admin
    db.session.expire_all()
    assert db.session.get(Campaign, draft_id) is None


def test_expired_token_link_goes_through_the_bounce_page(page, live_server) -> None:
    """A link followed inside the app (embedded=1, no id_token) goes to the session-token bounce
    page, which loads only App Bridge to reload the page with a fresh token."""
    make_shop(name="Lumen Candles")
    asked = serve_app_bridge(page)
    page.goto(admin_url(live_server.url, "/app/settings", SHOP_DOMAIN, host=HOST, embedded="1"))
    assert "/auth/session-token?" in page.url and "shopify-reload=" in page.url
    assert asked == [APP_BRIDGE_SRC]
    assert page.locator("meta[name=shopify-api-key]").get_attribute("content") == API_KEY
    # An expired token in the URL is bounced the same way, not refused.
    old = session_token_for(SHOP_DOMAIN, now=time.time() - 600)
    page.goto(
        admin_url(
            live_server.url, "/app/settings", SHOP_DOMAIN, host=HOST, embedded="1", id_token=old
        )
    )
    assert "/auth/session-token?" in page.url
