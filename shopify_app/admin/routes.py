"""The embedded admin's pages: server-rendered shells that fetch their data from /api.

Every page is loaded under the same rules as /app (shopify_app/auth/routes.py `app_document`):
inside the Shopify admin a signed load or a session token from App Bridge, outside it the
development sign-in. The Dashboard is also what /app itself renders (templates/admin/shell.html).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, abort, current_app
from flask.typing import ResponseReturnValue
from jinja2 import pass_context

from shopify_app.api.outbox import outbox_enabled
from shopify_app.auth.routes import app_document
from shopify_app.models.subscriber import CONSENT_SOURCES
from shopify_app.sms.compose import MERGE_TAGS, SHORT_LINK_PLACEHOLDER_LEN
from shopify_app.sms.encoding import GSM_REPLACEMENTS

bp = Blueprint("admin", __name__)

NAV = (
    ("dashboard", "Dashboard", "/app/dashboard"),
    ("campaigns", "Campaigns", "/app/campaigns"),
    ("flows", "Flows", "/app/flows"),
    ("subscribers", "Subscribers", "/app/subscribers"),
    ("segments", "Segments", "/app/segments"),
    ("settings", "Settings", "/app/settings"),
)
OUTBOX_NAV = ("outbox", "Outbox", "/app/outbox")


@pass_context
def app_url(context: Any, path: str, **params: Any) -> str:
    """A link to another admin page that keeps `shop` (and inside the admin `host` and
    `embedded=1`, so the load gets a fresh session token from the bounce page)."""
    query: dict[str, Any] = {"shop": context["shop"].domain}
    if context.get("embedded"):
        query.update(host=context.get("host") or "", embedded="1")
    query.update({k: v for k, v in params.items() if v is not None})
    return f"{path}?{urlencode(query)}"


@bp.app_context_processor
def _admin_context() -> dict[str, Any]:
    items = [*NAV, OUTBOX_NAV] if outbox_enabled() else list(NAV)
    return {
        "admin_nav": [{"name": n, "label": label, "path": path} for n, label, path in items],
        "app_url": app_url,
    }


def _page(
    template: str, context: dict[str, Any] | None = None, **page_data: Any
) -> ResponseReturnValue:
    """Render admin/<template>.html; `page_data` reaches the page's JS as config.page."""
    return app_document(
        f"admin/{template}.html", token_only=True, page_data=page_data, **(context or {})
    )


def _editor_data() -> dict[str, Any]:
    """What the message editor needs from the server: the GSM-7 look-alike table (so "replace
    with GSM" uses exactly the server's replacements) and the merge tags it knows."""
    return {
        "gsmReplacements": GSM_REPLACEMENTS,
        "mergeTags": list(MERGE_TAGS),
        "appUrl": current_app.config["APP_URL"],
        "shortLinkLen": SHORT_LINK_PLACEHOLDER_LEN,
    }


@bp.get("/app/dashboard")
def dashboard() -> ResponseReturnValue:
    return _page("dashboard")


@bp.get("/app/campaigns")
def campaigns() -> ResponseReturnValue:
    return _page("campaigns")


@bp.get("/app/campaigns/new")
def campaign_new() -> ResponseReturnValue:
    return _page("campaign_edit", campaignId=None, **_editor_data())


@bp.get("/app/campaigns/<int:campaign_id>/edit")
def campaign_edit(campaign_id: int) -> ResponseReturnValue:
    return _page("campaign_edit", campaignId=campaign_id, **_editor_data())


@bp.get("/app/campaigns/<int:campaign_id>/review")
def campaign_review(campaign_id: int) -> ResponseReturnValue:
    return _page("campaign_review", campaignId=campaign_id)


@bp.get("/app/campaigns/<int:campaign_id>")
def campaign_detail(campaign_id: int) -> ResponseReturnValue:
    return _page("campaign_detail", campaignId=campaign_id)


@bp.get("/app/flows")
def flows() -> ResponseReturnValue:
    return _page("flows")


@bp.get("/app/flows/<int:flow_id>")
def flow_edit(flow_id: int) -> ResponseReturnValue:
    return _page("flow_edit", flowId=flow_id, **_editor_data())


@bp.get("/app/subscribers")
def subscribers() -> ResponseReturnValue:
    return _page("subscribers", {"sources": CONSENT_SOURCES})


@bp.get("/app/subscribers/import")
def subscriber_import() -> ResponseReturnValue:
    return _page("subscriber_import")


@bp.get("/app/subscribers/<int:subscriber_id>")
def subscriber_detail(subscriber_id: int) -> ResponseReturnValue:
    return _page("subscriber_detail", subscriberId=subscriber_id)


@bp.get("/app/segments")
def segments() -> ResponseReturnValue:
    return _page("segments")


@bp.get("/app/segments/new")
def segment_new() -> ResponseReturnValue:
    return _page("segment_edit", segmentId=None)


@bp.get("/app/segments/<int:segment_id>")
def segment_edit(segment_id: int) -> ResponseReturnValue:
    return _page("segment_edit", segmentId=segment_id)


# The storefront pop-up's app embed block (extensions/sms-optin/blocks/optin-embed.liquid): the
# theme editor deep link turns it on, and holds its look (colour, display mode, delay).
OPTIN_EMBED_BLOCK = "optin-embed"


@bp.get("/app/settings")
def settings() -> ResponseReturnValue:
    return _page(
        "settings",
        apiKey=current_app.config["SHOPIFY_API_KEY"],
        embedBlock=OPTIN_EMBED_BLOCK,
    )


@bp.get("/app/outbox")
def outbox() -> ResponseReturnValue:
    if not outbox_enabled():
        abort(404)
    return _page("outbox")
