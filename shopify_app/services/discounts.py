"""Discount codes for campaigns and flows, created in Shopify before the first text leaves.

`prepare_campaign_discount` makes a campaign's codes — one shared code, or one unique code per
recipient message — and answers with a result the campaign engine acts on: ready (send), retry
(Shopify is busy; try again later) or failed (stop the send: texting dead codes is worse than
not texting). It commits as it goes because every Shopify call changes state outside our
transaction; a second call resumes where the first stopped and never issues a second code for
a message.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from redis.exceptions import LockError
from sqlalchemy import func, select, update

from shopify_app.extensions import db, get_redis
from shopify_app.models import Campaign, Discount, DiscountCode, Flow, Message, Shop, utcnow
from shopify_app.services.discount_bulk import (
    add_codes_in_bulk,
    fresh_codes,
    issue_recipient_codes,
)
from shopify_app.services.discount_calls import DiscountError, ShopifyCalls, create_or_adopt
from shopify_app.services.discount_config import (
    DiscountSettings,
    InvalidDiscountConfig,
    parse_discount_config,
)
from shopify_app.shopify.discounts import deactivate_discount, delete_discount

log = logging.getLogger(__name__)

# A message in these states may be in the provider's hands even before `sent_at` is written.
REACHED_PROVIDER = ("sending", "sent", "delivered", "undelivered")
LOCK_SECONDS = 1800  # longer than the slowest preparation (DISCOUNT_DEADLINE_SECONDS)
MAX_CODE_ATTEMPTS = 3  # a generated code taken by someone else's discount is replaced
CLEANUP_BATCH = 200

__all__ = [
    "DiscountError",
    "DiscountResult",
    "InvalidDiscountConfig",
    "cleanup_expired",
    "code_for",
    "codes_for_messages",
    "create_flow_discount",
    "prepare_campaign_discount",
]


@dataclass(frozen=True)
class DiscountResult:
    """status: none (no discount configured), ready, retry (transient), failed (final)."""

    status: str
    reason: str | None = None
    discount_id: int | None = None
    mode: str | None = None
    shared_code: str | None = None
    codes_ready: int = 0
    codes_failed: int = 0

    @property
    def ok(self) -> bool:
        """True when the send may go ahead."""
        return self.status in ("none", "ready")

    @property
    def retryable(self) -> bool:
        return self.status == "retry"


def campaign_discount_title(campaign: Campaign) -> str:
    # The id makes the title ours alone, which is how a TAKEN code is recognised as our own.
    return f"Tidings: {campaign.name} (campaign #{campaign.id})"


def _shop(shop_id: int) -> Shop:
    shop = db.session.get(Shop, shop_id)
    if shop is None:
        raise LookupError(f"shop {shop_id} does not exist")
    return shop


def _get_or_create_discount(campaign: Campaign, settings: DiscountSettings) -> Discount:
    discount = db.session.scalars(
        Discount.for_shop(campaign.shop_id).where(Discount.campaign_id == campaign.id)
    ).first()
    terms = settings.terms
    if discount is None:
        discount = Discount(shop_id=campaign.shop_id, campaign_id=campaign.id)
        db.session.add(discount)
    if discount.shopify_id is None:
        # Until Shopify holds it, the merchant's latest settings win.
        discount.mode = campaign.discount_mode
        discount.title = terms.title
        discount.value_type = terms.value_type
        discount.value = terms.value
        discount.minimum_subtotal = terms.minimum_subtotal
        discount.once_per_customer = terms.once_per_customer
        discount.combines_with = dict(terms.combines_with or {})
        discount.prefix = settings.prefix
        discount.usage_limit = terms.usage_limit
        discount.starts_at = terms.starts_at
        discount.ends_at = terms.ends_at
    db.session.commit()
    return discount


def _create_in_shopify(
    calls: ShopifyCalls,
    discount: Discount,
    row: DiscountCode,
    settings: DiscountSettings,
    *,
    chosen: bool,
) -> None:
    """Create the Shopify discount holding `row`'s code; a generated code that someone else's
    discount already holds is replaced, a merchant-chosen one is a final failure."""
    for _ in range(MAX_CODE_ATTEMPTS):
        gid = create_or_adopt(calls, settings.terms, row.code)
        if gid is not None:
            discount.shopify_id = gid
            row.status = "ready"
            db.session.commit()
            return
        if chosen:
            raise DiscountError(
                f"The code {row.code} already exists in Shopify; choose another", retryable=False
            )
        row.code = fresh_codes(discount.shop_id, 1, discount.prefix)[0]
        db.session.commit()
    raise DiscountError("Could not find a free discount code", retryable=False)


def _shared_code_row(discount: Discount, settings: DiscountSettings) -> DiscountCode:
    row = db.session.scalars(
        DiscountCode.for_shop(discount.shop_id).where(
            DiscountCode.discount_id == discount.id, DiscountCode.message_id.is_(None)
        )
    ).first()
    if row is None:
        code = settings.code or fresh_codes(discount.shop_id, 1, discount.prefix)[0]
        clash = db.session.scalars(
            DiscountCode.for_shop(discount.shop_id).where(DiscountCode.code == code)
        ).first()
        if clash is not None:
            raise DiscountError(
                f"The code {code} is already used by another Tidings discount", retryable=False
            )
        row = DiscountCode(
            shop_id=discount.shop_id,
            discount_id=discount.id,
            code=code,
            campaign_id=discount.campaign_id,
            status="pending",
        )
        db.session.add(row)
        db.session.commit()
    return row


def _counts(discount: Discount) -> dict[str, int]:
    rows = db.session.execute(
        select(DiscountCode.status, func.count())
        .where(DiscountCode.shop_id == discount.shop_id, DiscountCode.discount_id == discount.id)
        .group_by(DiscountCode.status)
    ).all()
    return {status: count for status, count in rows}


def _prepare(
    calls: ShopifyCalls, campaign: Campaign, discount: Discount, settings: DiscountSettings
) -> None:
    if discount.mode == "shared":
        row = _shared_code_row(discount, settings)
        if discount.shopify_id is None or row.status != "ready":
            _create_in_shopify(calls, discount, row, settings, chosen=settings.code is not None)
        return
    issue_recipient_codes(discount, campaign.id)
    if discount.shopify_id is None:
        first = db.session.scalars(
            DiscountCode.for_shop(discount.shop_id)
            .where(DiscountCode.discount_id == discount.id, DiscountCode.status == "pending")
            .order_by(DiscountCode.id)
        ).first()
        if first is None:
            return  # nobody to text: nothing to create in Shopify
        _create_in_shopify(calls, discount, first, settings, chosen=False)
    add_codes_in_bulk(calls, discount)


def _result(discount: Discount, status: str, reason: str | None = None) -> DiscountResult:
    counts = _counts(discount)
    shared = None
    if discount.mode == "shared":
        shared = db.session.scalar(
            select(DiscountCode.code).where(
                DiscountCode.shop_id == discount.shop_id,
                DiscountCode.discount_id == discount.id,
                DiscountCode.status == "ready",
            )
        )
    return DiscountResult(
        status=status,
        reason=reason,
        discount_id=discount.id,
        mode=discount.mode,
        shared_code=shared,
        codes_ready=counts.get("ready", 0),
        codes_failed=counts.get("failed", 0),
    )


def prepare_campaign_discount(campaign_id: int) -> DiscountResult:
    """Make sure every recipient's code exists in Shopify before the campaign sends."""
    campaign = db.session.get(Campaign, campaign_id)
    if campaign is None:
        return DiscountResult(status="failed", reason="campaign not found")
    if campaign.discount_mode not in ("shared", "unique"):
        return DiscountResult(status="none")
    shop = _shop(campaign.shop_id)
    try:
        settings = parse_discount_config(
            campaign.discount_config,
            title=campaign_discount_title(campaign),
            default_prefix=shop.setting("discount_prefix"),
        )
    except InvalidDiscountConfig as exc:
        return DiscountResult(
            status="failed", reason=f"Discount settings: {exc}", mode=campaign.discount_mode
        )
    lock = get_redis().lock(
        f"tidings:lock:discount:campaign:{campaign.id}", timeout=LOCK_SECONDS, blocking_timeout=5
    )
    if not lock.acquire():
        return DiscountResult(
            status="retry",
            reason="another worker is preparing these codes",
            mode=campaign.discount_mode,
        )
    try:
        return _prepare_locked(shop, campaign, settings)
    finally:
        try:
            lock.release()
        except LockError:  # expired while we worked; the work is idempotent anyway
            log.warning("discount lock for campaign %s expired before release", campaign.id)


def _prepare_locked(shop: Shop, campaign: Campaign, settings: DiscountSettings) -> DiscountResult:
    discount = _get_or_create_discount(campaign, settings)
    try:
        with ShopifyCalls(shop) as calls:
            _prepare(calls, campaign, discount, settings)
    except DiscountError as exc:
        db.session.rollback()
        discount = db.session.get(Discount, discount.id)
        assert discount is not None
        if exc.retryable:
            log.info("discount for campaign %s not ready yet: %s", campaign.id, exc.reason)
            return _result(discount, "retry", exc.reason)
        discount.status, discount.error = "failed", exc.reason
        db.session.commit()
        log.warning("discount for campaign %s failed: %s", campaign.id, exc.reason)
        return _result(discount, "failed", exc.reason)
    discount.status, discount.error = "ready", None
    db.session.commit()
    return _result(discount, "ready")


def codes_for_messages(shop_id: int, message_ids: Iterable[int]) -> dict[int, str]:
    """The code each message should carry (its own unique code, or its campaign's shared one).
    Messages without a usable code are left out."""
    ids = list(message_ids)
    if not ids:
        return {}
    found: dict[int, str] = {
        message_id: code
        for message_id, code in db.session.execute(
            select(DiscountCode.message_id, DiscountCode.code).where(
                DiscountCode.shop_id == shop_id,
                DiscountCode.message_id.in_(ids),
                DiscountCode.status == "ready",
            )
        )
    }
    rest = [i for i in ids if i not in found]
    if rest:
        shared = db.session.execute(
            select(Message.id, DiscountCode.code)
            .join(Discount, Discount.campaign_id == Message.campaign_id)
            .join(DiscountCode, DiscountCode.discount_id == Discount.id)
            .where(
                Message.shop_id == shop_id,
                Message.id.in_(rest),
                Discount.shop_id == shop_id,
                Discount.mode == "shared",
                Discount.status == "ready",
                DiscountCode.status == "ready",
                DiscountCode.message_id.is_(None),
            )
        )
        found.update({message_id: code for message_id, code in shared})
    return found


def code_for(message: Message) -> str | None:
    """What `{discount_code}` becomes in this message, or None when it has no usable code."""
    return codes_for_messages(message.shop_id, [message.id]).get(message.id)


def create_flow_discount(
    shop: Shop, flow_id: int, subscriber_id: int, message_id: int, config: dict[str, Any]
) -> str:
    """A single-use code for one flow message; the same message always gets the same code.

    Raises DiscountError (`retryable` when Shopify was only busy) or InvalidDiscountConfig.
    Flushes but does not commit: the flow step's transaction owns these rows.
    """
    row = db.session.scalars(
        DiscountCode.for_shop(shop.id).where(DiscountCode.message_id == message_id)
    ).first()
    if row is not None and row.status == "ready":
        return row.code
    flow = Flow.get_for_shop(shop.id, flow_id)
    title = f"Tidings: {flow.name if flow else 'flow'} (flow #{flow_id}, message #{message_id})"
    settings = parse_discount_config(
        config, title=title, flow=True, default_prefix=shop.setting("discount_prefix")
    )
    if row is None:
        terms = settings.terms
        discount = Discount(
            shop_id=shop.id,
            flow_id=flow_id,
            mode="single",
            title=terms.title,
            value_type=terms.value_type,
            value=terms.value,
            minimum_subtotal=terms.minimum_subtotal,
            once_per_customer=terms.once_per_customer,
            combines_with=dict(terms.combines_with or {}),
            prefix=settings.prefix,
            usage_limit=terms.usage_limit,
            starts_at=terms.starts_at,
            ends_at=terms.ends_at,
        )
        db.session.add(discount)
        db.session.flush()
        row = DiscountCode(
            shop_id=shop.id,
            discount_id=discount.id,
            flow_id=flow_id,
            subscriber_id=subscriber_id,
            message_id=message_id,
            code=fresh_codes(shop.id, 1, settings.prefix)[0],
        )
        db.session.add(row)
        db.session.flush()
    discount = db.session.get(Discount, row.discount_id)
    assert discount is not None
    with ShopifyCalls(shop) as calls:
        for _ in range(MAX_CODE_ATTEMPTS):
            gid = create_or_adopt(calls, settings.terms, row.code)
            if gid is not None:
                discount.shopify_id, discount.status, row.status = gid, "ready", "ready"
                db.session.flush()
                return row.code
            row.code = fresh_codes(shop.id, 1, settings.prefix)[0]
            db.session.flush()
    raise DiscountError("Could not find a free discount code", retryable=False)


def _expire_one(discount: Discount, now: datetime) -> bool:
    """Retire one discount in Shopify and here. False when Shopify was unreachable."""
    shop = _shop(discount.shop_id)
    if shop.is_installed and discount.shopify_id:
        # Machine-made unique and single-use codes are deleted so they do not clutter the
        # merchant's discount list; a shared code is only deactivated, keeping its history.
        action = deactivate_discount if discount.mode == "shared" else delete_discount
        try:
            with ShopifyCalls(shop, deadline_seconds=60) as calls:
                calls.call(action, discount.shopify_id)
        except DiscountError as exc:
            if exc.retryable:
                return False
            # Already deleted in the admin, or the app lost access: nothing left to do there.
            log.info("discount %s could not be retired in Shopify: %s", discount.id, exc.reason)
    discount.status, discount.expired_at = "expired", now
    # Codes stay (status expired) so an order that used one before expiry is still attributed.
    db.session.execute(
        update(DiscountCode)
        .where(
            DiscountCode.shop_id == discount.shop_id,
            DiscountCode.discount_id == discount.id,
            DiscountCode.status.in_(("ready", "pending", "submitted")),
        )
        .values(status="expired")
    )
    db.session.commit()
    return True


def _never_texted(campaign_id: Any) -> Any:
    """No message of the campaign reached (or may be reaching) the provider."""
    return ~(
        select(Message.id)
        .where(
            Message.campaign_id == campaign_id,
            Message.sent_at.is_not(None) | Message.status.in_(REACHED_PROVIDER),
        )
        .exists()
    )


def _abandoned(limit: int) -> list[Discount]:
    """Discounts Shopify holds for campaigns that ended before any text left — stopped by
    the merchant, or by their own codes failing: nobody will ever receive those codes."""
    return list(
        db.session.scalars(
            select(Discount)
            .join(Campaign, Campaign.id == Discount.campaign_id)
            .where(
                Discount.status.in_(("pending", "ready", "failed")),
                Discount.shopify_id.is_not(None),
                Campaign.shop_id == Discount.shop_id,
                Campaign.status == "cancelled",
                _never_texted(Campaign.id),
            )
            .order_by(Discount.id)
            .limit(limit)
        )
    )


def cleanup_expired(now: datetime | None = None) -> int:
    """Retire discounts whose end has passed, and those of campaigns that ended before their
    first text (a periodic job). Returns how many were retired."""
    now = now or utcnow()
    due = list(
        db.session.scalars(
            select(Discount)
            .where(
                Discount.status == "ready", Discount.ends_at.is_not(None), Discount.ends_at < now
            )
            .order_by(Discount.ends_at)
            .limit(CLEANUP_BATCH)
        )
    )
    due += [d for d in _abandoned(CLEANUP_BATCH) if d not in due]
    retired = 0
    for discount in due:
        if _expire_one(discount, now):
            retired += 1
    return retired
