"""Doors into the app from Shopify: the embedded app URL (token exchange), the legacy
authorization-code grant, the session-token bounce page, and development sign-in."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, abort, current_app, jsonify, redirect, render_template_string, request
from flask.typing import ResponseReturnValue

from shopify_app.auth.dev_login import dev_login_allowed, mint_session_token
from shopify_app.auth.embedded import SHELL_TEMPLATE, render_bounce_page, render_embedded
from shopify_app.auth.guard import RETRY_HEADER
from shopify_app.auth.oauth import (
    STATE_COOKIE,
    STATE_TTL_SECONDS,
    authorize_url,
    check_signed_query,
    consume_state,
    exchange_code,
    new_state,
)
from shopify_app.auth.session_token import verify_session_token
from shopify_app.auth.shop_domain import valid_shop_domain
from shopify_app.auth.token_exchange import InvalidSubjectToken, exchange_session_token
from shopify_app.auth.tokens import has_usable_token
from shopify_app.models import Shop
from shopify_app.services.install import complete_install, ensure_dev_shop
from shopify_app.shopify.errors import TokenEndpointError

log = logging.getLogger(__name__)

bp = Blueprint("auth", __name__)

BOUNCE_PATH = "/auth/session-token"
STATE_COOKIE_PATH = "/auth"

_FAILURE_PAGE = """<!doctype html><html lang="en"><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1"><title>{{ title }}</title>
<body style="font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem">
<h1 style="font-size:1.4rem">{{ title }}</h1><p>{{ text }}</p></body></html>"""

_MESSAGES = {
    400: (
        "Request not valid",
        "This link is not valid any more. Open Tidings again from your Shopify admin.",
    ),
    401: (
        "Not signed in",
        "We could not confirm this request came from Shopify. Open Tidings "
        "again from your Shopify admin.",
    ),
    502: (
        "Shopify did not answer",
        "We could not reach Shopify to finish signing you in. Please try again in a minute.",
    ),
}


def _fail(
    status: int, reason: str, shop: str | None = None, headers: dict[str, str] | None = None
) -> ResponseReturnValue:
    """A short page for the merchant; the reason code goes to the log, never a secret."""
    log.info("auth refused: reason=%s shop=%s path=%s", reason, shop or "-", request.path)
    title, text = _MESSAGES[status]
    html = render_template_string(_FAILURE_PAGE, title=title, text=text)
    return html, status, {"Cache-Control": "no-store", **(headers or {})}


def _bounce_url() -> str:
    """Shopify's bounce page, told (`shopify-reload`) to reload this URL with a fresh id_token."""
    params = [
        (k, v) for k, v in request.args.items(multi=True) if k not in {"id_token", "shopify-reload"}
    ]
    reload_url = f"{current_app.config['APP_URL']}{request.path}?{urlencode(params)}"
    return f"{BOUNCE_PATH}?{urlencode([*params, ('shopify-reload', reload_url)])}"


# -- the embedded app URL --------------------------------------------------------------------


@bp.get("/app")
def app_home() -> ResponseReturnValue:
    """The admin opens the app: verify the signed query and session token, install if needed."""
    return app_document()


def app_document(
    template: str = SHELL_TEMPLATE, *, token_only: bool = False, **context: Any
) -> ResponseReturnValue:
    """Serve an admin document (`template` with `context`) under the rules of /app.

    `token_only` (the admin's other pages) also accepts a load that carries a valid `id_token`
    but no query `hmac`: that is what the session-token bounce gives a link followed inside the
    app, and the token itself is signed with the app secret and names the shop. Such a load
    without any `id_token` but with `embedded=1` is sent to the bounce page to get one.
    """
    args = request.args
    if "hmac" not in args and "id_token" not in args:
        if token_only and args.get("embedded") == "1" and valid_shop_domain(args.get("shop")):
            return redirect(_bounce_url())
        return _dev_sign_in(template, **context)
    if token_only and "hmac" not in args:
        shop = valid_shop_domain(args.get("shop"))
        if shop is None:
            return _fail(400, "bad_shop_domain")
    else:
        check = check_signed_query(args, current_app.config["SHOPIFY_API_SECRET"])
        if not check.ok:
            return _fail(
                401 if check.reason in {"missing_hmac", "bad_hmac"} else 400,
                check.reason or "invalid",
                check.shop,
            )
        shop = check.shop or ""
    embedded = args.get("embedded") == "1"
    id_token = args.get("id_token")
    if not id_token:
        if embedded:
            return redirect(_bounce_url())
        return redirect(f"/auth/install?{urlencode({'shop': shop})}")
    token = verify_session_token(
        id_token,
        api_key=current_app.config["SHOPIFY_API_KEY"],
        secret=current_app.config["SHOPIFY_API_SECRET"],
    )
    if not token.ok:
        if embedded and token.reason in {"expired", "not_yet_valid"}:
            return redirect(_bounce_url())  # App Bridge fetches a fresh token and reloads
        return _fail(401, f"session_token_{token.reason}", shop, RETRY_HEADER)
    if token.shop != shop:
        return _fail(401, "session_token_shop_mismatch", shop, RETRY_HEADER)

    row = Shop.by_domain(shop)
    if row is None or not row.is_installed or not has_usable_token(row):
        try:
            grant = exchange_session_token(shop, id_token)
        except InvalidSubjectToken:
            return _fail(401, "invalid_subject_token", shop, RETRY_HEADER)
        except TokenEndpointError as exc:
            log.warning(
                "token exchange for %s failed: status=%s error=%s", shop, exc.status, exc.error
            )
            return _fail(502, "token_exchange_failed", shop)
        row = complete_install(shop, grant)
    return render_embedded(row, template=template, host=args.get("host"), **context)


@bp.get(BOUNCE_PATH)
def session_token_bounce() -> ResponseReturnValue:
    shop = valid_shop_domain(request.args.get("shop"))
    if shop is None:
        return _fail(400, "bad_shop_domain")
    return render_bounce_page(shop)


# -- development sign-in ---------------------------------------------------------------------


def _dev_sign_in(template: str = SHELL_TEMPLATE, **context: Any) -> ResponseReturnValue:
    if not dev_login_allowed():
        abort(404)
    raw = request.args.get("shop") or current_app.config["DEMO_SHOP"]
    shop = valid_shop_domain(raw)
    if shop is None:
        return _fail(400, "bad_shop_domain")
    row = ensure_dev_shop(shop)
    return render_embedded(
        row, template=template, dev_session_token=mint_session_token(shop), **context
    )


@bp.get("/dev/session-token")
def dev_session_token() -> ResponseReturnValue:
    if not dev_login_allowed():
        abort(404)
    shop = valid_shop_domain(request.args.get("shop"))
    if shop is None or Shop.by_domain(shop) is None:
        abort(404)
    return jsonify(token=mint_session_token(shop)), 200, {"Cache-Control": "no-store"}


# -- legacy authorization-code grant ---------------------------------------------------------


@bp.get("/auth/install")
def install() -> ResponseReturnValue:
    shop = valid_shop_domain(request.args.get("shop"))
    if shop is None:
        return _fail(400, "bad_shop_domain")
    state, cookie = new_state(shop)
    response = redirect(authorize_url(shop, state))
    response.set_cookie(
        STATE_COOKIE,
        cookie,
        max_age=STATE_TTL_SECONDS,
        path=STATE_COOKIE_PATH,
        httponly=True,
        samesite="Lax",
        secure=current_app.config["APP_URL"].startswith("https://"),
    )
    return response


@bp.get("/auth/callback")
def callback() -> ResponseReturnValue:
    args = request.args
    check = check_signed_query(args, current_app.config["SHOPIFY_API_SECRET"])
    if not check.ok:
        return _fail(
            401 if check.reason in {"missing_hmac", "bad_hmac"} else 400,
            check.reason or "invalid",
            check.shop,
        )
    shop = check.shop or ""
    reason = consume_state(args.get("state"), request.cookies.get(STATE_COOKIE), shop)
    if reason is not None:
        return _fail(401, reason, shop)
    code = args.get("code")
    if not code:
        return _fail(400, "missing_code", shop)
    try:
        grant = exchange_code(shop, code)
    except TokenEndpointError as exc:
        log.warning("code exchange for %s failed: status=%s error=%s", shop, exc.status, exc.error)
        return _fail(502 if exc.transient else 400, "code_exchange_failed", shop)
    complete_install(shop, grant)
    response = redirect(_after_install_url(shop))
    response.delete_cookie(STATE_COOKIE, path=STATE_COOKIE_PATH)
    return response


def _after_install_url(shop: str) -> str:
    if current_app.config.get("DEV_LOGIN"):
        return f"/app?{urlencode({'shop': shop})}"
    store = shop.removesuffix(".myshopify.com")
    return f"https://admin.shopify.com/store/{store}/apps/{current_app.config['SHOPIFY_API_KEY']}"
