"""Rendering a message for sending — one function for the send path and for estimates.

`render_for_send(message, subscriber, shop)` decides the final text: the template (the
message's own, or its campaign's / variant's body), the subscriber's merge fields, the discount
code, the brand prefix, the opt-out footer when due, and every URL rewritten to a short link.
Estimates call the same function with `preview=True` (links become placeholders exactly as long
as real ones), so "the estimate and the real send agree".

The footer goes on a subscriber's first marketing message and then on every Nth
(`footer_every_n`, 0 = first only); the confirmation and welcome texts carry their own
STOP/HELP wording, so transactional and compliance texts never get one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from flask import current_app
from sqlalchemy import and_, func, or_, select

from shopify_app.extensions import db
from shopify_app.models import Campaign, DiscountCode, Flow, FlowRun, Message, Shop, Variant
from shopify_app.services import links
from shopify_app.services.bulk import in_ids
from shopify_app.sms.compose import (
    RenderContext,
    Rendered,
    check_limit,
    footer_due,
    placeholder_shortener,
    render,
)

MARKETING_KINDS = frozenset({"campaign", "flow"})
# A template that inserts the code without a fallback must not go out without one.
_BARE_CODE_TAG = re.compile(r"(?<!\{)\{\s*discount_code\s*\}(?!\})", re.IGNORECASE)


@dataclass(frozen=True)
class RenderOutcome:
    rendered: Rendered | None
    skip_reason: str | None = None  # too_long, link_not_allowed, no_template, no_discount_code
    detail: str | None = None
    segments: int | None = None  # set for too_long: how long it came out
    # Link rows for the short links in the body; the send path inserts them with the body.
    link_rows: tuple[dict[str, Any], ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return self.rendered is not None


def is_marketing(kind: str) -> bool:
    return kind in MARKETING_KINDS


@dataclass(frozen=True)
class ShopText:
    """What rendering reads from a shop's settings, read once per batch (settings are merged
    with their defaults on every `Shop.setting` call)."""

    brand: str
    shop_name: str
    footer_every_n: int
    footer_text: str | None
    max_segments: int
    domains: tuple[str, ...]

    @classmethod
    def of(cls, shop: Shop) -> ShopText:
        settings = shop.config
        return cls(
            brand=settings.get("brand_name") or shop.brand,
            shop_name=shop.name or "",
            footer_every_n=int(settings.get("footer_every_n") or 0),
            footer_text=str(settings.get("footer_text") or "") or None,
            max_segments=int(settings.get("max_segments") or 4),
            domains=links.shop_domains(shop),
        )


class _Unset:
    pass


UNSET: Any = _Unset()


def render_for_send(
    message: Any,
    subscriber: Any,
    shop: Shop,
    *,
    template: Any = UNSET,
    discount_code: Any = UNSET,
    prior_marketing: int | None = None,
    utm_campaign: Any = UNSET,
    flow_id: Any = UNSET,
    preview: bool = False,
    shop_text: ShopText | None = None,
) -> RenderOutcome:
    """Render `message` for `subscriber` as it will be sent.

    `message` and `subscriber` may be ORM objects or rows with the same attributes. The keyword
    arguments let a batch pass what it loaded for many messages at once (None is a value:
    "there is none"); anything not given is looked up here. `preview=True` makes no link rows
    (estimates, the editor).
    """
    text = shop_text or ShopText.of(shop)
    if template is UNSET:
        template = message_template(message)
    if not template or not template.strip():
        return RenderOutcome(None, "no_template")
    context = getattr(message, "context", None) or {}
    code = context.get("discount_code")
    if not code and not preview:
        code = discount_code_for(shop.id, message) if discount_code is UNSET else discount_code
    if not code and _BARE_CODE_TAG.search(template) and not preview:
        return RenderOutcome(None, "no_discount_code")
    footer = None
    if is_marketing(message.kind):
        if prior_marketing is None:
            prior_marketing = 0 if preview else prior_marketing_count(subscriber.id)
        if footer_due(
            is_first_message=prior_marketing == 0,
            campaign_index=prior_marketing,
            every_n=text.footer_every_n,
        ):
            footer = text.footer_text
    ctx = RenderContext(
        first_name=getattr(subscriber, "first_name", None),
        last_name=getattr(subscriber, "last_name", None),
        shop_name=text.shop_name,
        brand=text.brand,
        discount_code=code or (placeholder_code() if preview else None),
    )
    rows: list[dict[str, Any]] = []
    app_url = current_app.config["APP_URL"]
    shorten: Callable[[str], str]
    if preview:
        shorten = placeholder_shortener(app_url)
    else:
        if utm_campaign is UNSET or flow_id is UNSET:
            run = getattr(message, "flow_run_id", None)
            info = flow_info([run]).get(run, (None, None)) if run else (None, None)
            if flow_id is UNSET:
                flow_id = info[0]
            if utm_campaign is UNSET:
                utm_campaign = str(message.campaign_id) if message.campaign_id else info[1]

        def shorten(url: str) -> str:
            row = links.link_row(
                shop,
                url,
                message_id=message.id,
                subscriber_id=subscriber.id,
                campaign_id=message.campaign_id,
                flow_id=flow_id,
                utm_campaign=utm_campaign,
                domains=text.domains,
            )
            rows.append(row)
            return links.short_url(row["token"], app_url)

    try:
        rendered = render(template, ctx, shorten=shorten, brand_prefix=True, footer=footer)
    except links.LinkNotAllowed as exc:
        return RenderOutcome(None, "link_not_allowed", f"not an allowed domain: {exc}")
    too_long = check_limit(rendered, text.max_segments)
    if too_long is not None:
        return RenderOutcome(None, "too_long", too_long.message, segments=too_long.segments)
    return RenderOutcome(rendered, link_rows=tuple(rows))


def placeholder_code() -> str:
    """A stand-in as long as a generated code (prefix, dash, 8 characters) for estimates."""
    return "SMS-XXXXXXXX"


# --- what a message is made of (single-message lookups) -----------------------------------


def message_template(message: Any) -> str | None:
    if getattr(message, "template", None):
        return message.template
    if getattr(message, "variant_id", None):
        body = db.session.scalar(select(Variant.body).where(Variant.id == message.variant_id))
        if body:
            return body
    if getattr(message, "campaign_id", None):
        return db.session.scalar(select(Campaign.body).where(Campaign.id == message.campaign_id))
    return None


def discount_code_for(shop_id: int, message: Any) -> str | None:
    codes = discount_codes_for(shop_id, [message])
    return codes.get(message.id)


def prior_marketing_count(subscriber_id: int) -> int:
    return prior_marketing_counts([subscriber_id]).get(subscriber_id, 0)


# --- the same, for a batch (one query each) -----------------------------------------------


def templates_for(messages: Sequence[Any]) -> dict[int, str | None]:
    """Message id -> its template (own text, else variant body, else campaign body)."""
    campaign_ids = {m.campaign_id for m in messages if not m.template and m.campaign_id}
    variant_ids = {m.variant_id for m in messages if not m.template and m.variant_id}
    campaigns: dict[int, str] = {}
    variants: dict[int, str] = {}
    if campaign_ids:
        campaigns = dict(
            db.session.execute(
                select(Campaign.id, Campaign.body).where(Campaign.id.in_(campaign_ids))
            ).all()
        )
    if variant_ids:
        variants = dict(
            db.session.execute(
                select(Variant.id, Variant.body).where(Variant.id.in_(variant_ids))
            ).all()
        )
    result: dict[int, str | None] = {}
    for m in messages:
        result[m.id] = (
            m.template
            or (variants.get(m.variant_id) if m.variant_id else None)
            or (campaigns.get(m.campaign_id) if m.campaign_id else None)
        )
    return result


def discount_codes_for(shop_id: int, messages: Sequence[Any]) -> dict[int, str]:
    """Message id -> discount code: the message's own code, else its campaign's shared code."""
    ids = [m.id for m in messages]
    campaign_ids = {m.campaign_id for m in messages if m.campaign_id}
    if not ids:
        return {}
    own = in_ids(db.session, DiscountCode.message_id, ids)
    shared = (
        and_(
            DiscountCode.campaign_id.in_(campaign_ids),
            DiscountCode.message_id.is_(None),
            DiscountCode.subscriber_id.is_(None),
        )
        if campaign_ids
        else None
    )
    rows = db.session.execute(
        select(DiscountCode.message_id, DiscountCode.campaign_id, DiscountCode.code)
        .where(
            DiscountCode.shop_id == shop_id,
            DiscountCode.status != "failed",
            or_(own, shared) if shared is not None else own,
        )
        .order_by(DiscountCode.id)
    ).all()
    by_message = {r.message_id: r.code for r in rows if r.message_id is not None}
    by_campaign: dict[int, str] = {}
    for r in rows:
        if r.message_id is None and r.campaign_id is not None:
            by_campaign.setdefault(r.campaign_id, r.code)
    result = {}
    for m in messages:
        code = by_message.get(m.id) or (by_campaign.get(m.campaign_id) if m.campaign_id else None)
        if code:
            result[m.id] = code
    return result


def prior_marketing_counts(subscriber_ids: Iterable[int]) -> dict[int, int]:
    """Subscriber id -> how many marketing texts were handed to the provider for them."""
    ids = list(set(subscriber_ids))
    if not ids:
        return {}
    rows = db.session.execute(
        select(Message.subscriber_id, func.count())
        .where(
            in_ids(db.session, Message.subscriber_id, ids),
            Message.sent_at.is_not(None),
            Message.kind.in_(MARKETING_KINDS),
        )
        .group_by(Message.subscriber_id)
    ).all()
    return {sid: int(n) for sid, n in rows}


def flow_info(flow_run_ids: Iterable[int | None]) -> dict[int, tuple[int, str]]:
    """FlowRun id -> (flow id, flow kind); the kind is the utm_campaign of flow messages."""
    ids = list({i for i in flow_run_ids if i is not None})
    if not ids:
        return {}
    rows = db.session.execute(
        select(FlowRun.id, Flow.id, Flow.kind)
        .join(Flow, Flow.id == FlowRun.flow_id)
        .where(FlowRun.id.in_(ids))
    ).all()
    return {run_id: (flow_id, kind) for run_id, flow_id, kind in rows}


@dataclass(frozen=True)
class _Draft:
    kind: str
    template: str
    id: int | None = None
    campaign_id: int | None = None
    variant_id: int | None = None
    flow_run_id: int | None = None
    context: dict[str, Any] | None = None


@dataclass(frozen=True)
class _Nobody:
    id: int | None = None
    first_name: str | None = None
    last_name: str | None = None


def render_preview(
    shop: Shop,
    template: str,
    *,
    kind: str = "campaign",
    subscriber: Any = None,
    with_footer: bool = True,
    discount_code: str | None = None,
) -> RenderOutcome:
    """How `template` will be sent (for the editor and cost estimates): the same rendering as
    the send path, links as placeholders of the real length. `with_footer` assumes the
    opt-out footer is added (a first message), the dearest case."""
    context = {"discount_code": discount_code} if discount_code else None
    return render_for_send(
        _Draft(kind=kind, template=template, context=context),
        subscriber or _Nobody(),
        shop,
        template=template,
        prior_marketing=0 if with_footer else 1,
        preview=True,
    )
