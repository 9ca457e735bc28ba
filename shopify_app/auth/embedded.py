"""Rendering documents that live inside the Shopify admin iframe.

Every embedded document gets the frame-ancestors CSP Shopify requires (only this shop's admin
may frame it) and, when it is really embedded, App Bridge from Shopify's CDN in its <head>.
In development sign-in the page is opened directly, so App Bridge is not loaded and the page
gets its session tokens from /dev/session-token instead.
"""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, make_response, render_template, render_template_string

from shopify_app.models import Shop

APP_BRIDGE_SRC = "https://cdn.shopify.com/shopifycloud/app-bridge.js"
SHELL_TEMPLATE = "admin/shell.html"
_BOUNCE_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="shopify-api-key" content="{{ api_key }}">
<script src="{{ app_bridge_src }}"></script>
</head><body></body></html>"""


def frame_ancestors_csp(shop_domain: str) -> str:
    return f"frame-ancestors https://{shop_domain} https://admin.shopify.com;"


def render_embedded(
    shop: Shop,
    *,
    template: str = SHELL_TEMPLATE,
    host: str | None = None,
    dev_session_token: str | None = None,
    status: int = 200,
    **context: Any,
) -> Response:
    """Render `template` for `shop` as an embedded document.

    `dev_session_token` switches to development sign-in: no App Bridge, a server-minted token.
    Templates get `shop`, `api_key`, `host`, `embedded`, `app_bridge_src`, `dev_session_token`.
    """
    embedded = dev_session_token is None
    html = render_template(
        template,
        shop=shop,
        api_key=current_app.config["SHOPIFY_API_KEY"],
        host=host or "",
        embedded=embedded,
        app_bridge_src=APP_BRIDGE_SRC,
        dev_session_token=dev_session_token,
        **context,
    )
    response = make_response(html, status)
    response.headers["Content-Security-Policy"] = frame_ancestors_csp(shop.domain)
    return response


def render_bounce_page(shop_domain: str) -> Response:
    """A page with nothing but App Bridge: it reads `shopify-reload` from its own URL and
    reloads that URL with a fresh `id_token` (Shopify's session-token bounce)."""
    html = render_template_string(
        _BOUNCE_PAGE, api_key=current_app.config["SHOPIFY_API_KEY"], app_bridge_src=APP_BRIDGE_SRC
    )
    response = make_response(html, 200)
    response.headers["Content-Security-Policy"] = frame_ancestors_csp(shop_domain)
    return response
