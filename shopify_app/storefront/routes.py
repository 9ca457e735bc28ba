"""App proxy endpoints for the storefront opt-in widget (/apps/sms/* -> /proxy/*).

`GET /proxy/widget` gives the widget its texts; `POST /proxy/subscribe` starts a double opt-in.
Every answer is JSON; every refusal carries a sentence a shopper can read.
"""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, Response, g, jsonify, request
from flask.typing import ResponseReturnValue

from shopify_app.api._common import error_response
from shopify_app.auth.app_proxy import app_proxy_required
from shopify_app.extensions import db
from shopify_app.models import Shop
from shopify_app.services.consent import shop_text
from shopify_app.services.subscribers import phone_lock, request_opt_in
from shopify_app.sms.phones import normalize
from shopify_app.storefront import limits

bp = Blueprint("storefront", __name__, url_prefix="/proxy")

PENDING_MESSAGE = "Almost done! Reply Y to the text we just sent you to confirm."
ALREADY_MESSAGE = "You're already subscribed. Thanks for being with us!"
OUTDATED_MESSAGE = "This form is out of date, please reload the page and try again."
TOO_MANY_MESSAGE = "Too many sign-up attempts. Please try again later."
CLOSED_MESSAGE = "Text sign-up is not available right now."
_SPACES = re.compile(r"\s+")


def _no_store(resp: Response) -> Response:
    resp.headers["Cache-Control"] = "no-store"
    return resp


def _refuse(status: int, code: str, message: str) -> ResponseReturnValue:
    return error_response(status, code, message, headers={"Cache-Control": "no-store"})


def _client_ip() -> str | None:
    """The shopper's address: Shopify's proxy puts it first in X-Forwarded-For."""
    forwarded = request.headers.get("X-Forwarded-For", "")
    return forwarded.split(",")[0].strip() or request.remote_addr


def _squash(text: str) -> str:
    return _SPACES.sub(" ", text).strip()


def _widget(shop: Shop) -> dict[str, Any]:
    return shop.setting("widget") or {}


def _allowed_countries(shop: Shop) -> list[str]:
    # Sign-ups from far-off (often premium-rate) ranges are how SMS pumping makes money:
    # only the shop's own country unless the merchant lists more.
    listed = _widget(shop).get("allowed_countries") or []
    return [str(c).upper() for c in listed] or [shop.country]


@bp.get("/widget")
@app_proxy_required
def widget() -> ResponseReturnValue:
    shop: Shop = g.shop
    settings = _widget(shop)
    return _no_store(
        jsonify(
            {
                "enabled": bool(settings.get("enabled", True)),
                "headline": settings.get("headline") or "",
                "body": settings.get("body") or "",
                "consent_text": shop_text(shop, "consent_text"),
                "offer_text": settings.get("offer_text") or "",
                "button_label": settings.get("button_label") or "",
                "country": shop.country,
            }
        )
    )


@bp.post("/subscribe")
@app_proxy_required
def subscribe() -> ResponseReturnValue:
    shop: Shop = g.shop
    form = request.form
    if form.get("company"):
        # The honeypot: people never see the field, bots fill it. Look successful, do nothing.
        return _no_store(jsonify({"ok": True, "status": "pending", "message": PENDING_MESSAGE}))
    if not _widget(shop).get("enabled", True):
        return _refuse(403, "signup_closed", CLOSED_MESSAGE)
    ip = _client_ip()
    if not limits.hit(limits.PER_IP, shop.id, ip or "unknown"):
        return _refuse(429, "rate_limited", TOO_MANY_MESSAGE)

    shown = form.get("consent_text") or ""
    if not shown or _squash(shown) != _squash(shop_text(shop, "consent_text")):
        # The page was rendered with an older disclosure: consent must be to the current text.
        return _refuse(400, "form_outdated", OUTDATED_MESSAGE)
    phone = normalize(form.get("phone") or "", shop.country)
    if not phone.ok or not phone.e164:
        return _refuse(400, "invalid_phone", phone.reason or "Please check your phone number.")
    if phone.country not in _allowed_countries(shop):
        return _refuse(
            400, "country_not_supported", "Sorry, we can't send texts to numbers in that country."
        )
    if not limits.hit(limits.PER_NUMBER, shop.id, phone.e164):
        return _refuse(429, "rate_limited", TOO_MANY_MESSAGE)

    customer = getattr(g, "proxy_customer_id", None)
    with phone_lock(shop.id, phone.e164):
        result = request_opt_in(
            shop,
            phone,
            source="widget",
            consent_text=shown,
            ip=ip,
            user_agent=(request.headers.get("User-Agent") or "")[:1000] or None,
            page_url=(form.get("page_url") or "")[:2000] or None,
            customer_id=int(customer) if customer and str(customer).isdigit() else None,
        )
        db.session.commit()
    message = ALREADY_MESSAGE if result.status == "already_subscribed" else PENDING_MESSAGE
    return _no_store(jsonify({"ok": True, "status": result.status, "message": message}))
