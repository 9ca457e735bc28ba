"""Which message earned an order — the whole rule set, in this one module.

Last touch, in this order of precedence:

(a) **discount**: the order used a code Tidings issued → the message that carried it, whatever
    the time since (a unique code names its message; a shared code names its campaign, and the
    message is the one that campaign sent to the buyer, when we know the buyer);
(b) **click**: otherwise, the buyer's latest human (non-bot) click on a Tidings link inside the
    click window before the order (shop setting attribution.click_window_days, default 5);
    a `tidings_ref` in the order's landing site whose click was not recorded counts as a click
    made when its message was sent;
(c) **view**: otherwise, only when the shop turned view-through on, the latest message
    delivered to the buyer inside attribution.view_through_hours (default 24) before the order.

The buyer is recognised by the `tidings_ref` in the landing site, else by phone (E.164), else
by Shopify customer id. An order is attributed at most once; `recompute_shop` re-applies the
rules to every order when the merchant changes the windows.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from shopify_app.extensions import db
from shopify_app.models import (
    Click,
    DiscountCode,
    FlowRun,
    Link,
    Message,
    Order,
    Shop,
    Subscriber,
    utcnow,
)
from shopify_app.services.codes import normalize_code
from shopify_app.services.links import ref_from_landing_site

log = logging.getLogger(__name__)

REASONS = ("discount", "click", "view")
RECOMPUTE_BATCH = 500
TOUCH_KINDS = ("campaign", "flow")  # messages that can earn an order by being seen


@dataclass(frozen=True)
class Windows:
    click: timedelta
    view: timedelta | None  # None: view-through is off

    @classmethod
    def for_shop(cls, shop: Shop) -> Windows:
        settings: dict[str, Any] = shop.setting("attribution") or {}
        days = int(settings.get("click_window_days") or 5)
        view = None
        if settings.get("view_through"):
            view = timedelta(hours=int(settings.get("view_through_hours") or 24))
        return cls(click=timedelta(days=days), view=view)


@dataclass(frozen=True)
class Attribution:
    reason: str
    subscriber_id: int | None
    message_id: int | None
    campaign_id: int | None
    flow_id: int | None
    attributed_at: datetime
    touched_at: datetime | None = None  # the click, delivery or send that earned the order

    @classmethod
    def of(cls, order: Order) -> Attribution | None:
        if order.attribution_reason is None or order.attributed_at is None:
            return None
        return cls(
            order.attribution_reason,
            order.subscriber_id,
            order.message_id,
            order.campaign_id,
            order.flow_id,
            order.attributed_at,
        )


# --------------------------------------------------------------------------- recognition
def recognise_subscriber(order: Order) -> int | None:
    """The subscriber who placed the order: by landing-site ref, phone, then customer id."""
    token = ref_from_landing_site(order.landing_site) if order.landing_site else None
    if token:
        subscriber_id = db.session.scalar(
            select(Link.subscriber_id).where(Link.shop_id == order.shop_id, Link.token == token)
        )
        if subscriber_id is not None:
            return subscriber_id
    if order.phone:
        subscriber_id = db.session.scalar(
            select(Subscriber.id).where(
                Subscriber.shop_id == order.shop_id, Subscriber.phone == order.phone
            )
        )
        if subscriber_id is not None:
            return subscriber_id
    if order.customer_id:
        subscriber_id = db.session.scalar(
            select(Subscriber.id)
            .where(Subscriber.shop_id == order.shop_id, Subscriber.customer_id == order.customer_id)
            .order_by(Subscriber.id)
        )
        if subscriber_id is not None:
            return subscriber_id
    # Matched earlier by other means (the checkout consent on the order): keep that buyer.
    return order.subscriber_id


# --------------------------------------------------------------------------- the rules
def _owner(message: Message) -> tuple[int | None, int | None]:
    """(campaign_id, flow_id) of a message."""
    if message.campaign_id is not None:
        return message.campaign_id, None
    if message.flow_run_id is not None:
        flow_id = db.session.scalar(
            select(FlowRun.flow_id).where(FlowRun.id == message.flow_run_id)
        )
        return None, flow_id
    return None, None


def _message(shop_id: int, message_id: int | None) -> Message | None:
    if message_id is None:
        return None
    return Message.get_for_shop(shop_id, message_id)


def _by_message(
    reason: str,
    message: Message,
    subscriber_id: int | None,
    now: datetime,
    touched_at: datetime | None,
) -> Attribution:
    campaign_id, flow_id = _owner(message)
    return Attribution(
        reason,
        subscriber_id or message.subscriber_id,
        message.id,
        campaign_id,
        flow_id,
        now,
        touched_at,
    )


def _order_codes(order: Order) -> list[str]:
    codes = []
    for item in order.discount_codes or []:
        code = item.get("code") if isinstance(item, dict) else item
        if code:
            codes.append(normalize_code(str(code)))
    return codes


def _by_code(order: Order, subscriber_id: int | None, now: datetime) -> Attribution | None:
    codes = _order_codes(order)
    if not codes:
        return None
    rows = list(
        db.session.scalars(
            DiscountCode.for_shop(order.shop_id).where(
                DiscountCode.code.in_(codes), DiscountCode.status != "failed"
            )
        )
    )
    candidates: list[Attribution] = []
    for row in rows:
        message = _message(order.shop_id, row.message_id)
        if message is None and row.campaign_id is not None and subscriber_id is not None:
            # A shared code: the message its campaign sent to this buyer.
            message = db.session.scalars(
                Message.for_shop(order.shop_id).where(
                    Message.campaign_id == row.campaign_id, Message.subscriber_id == subscriber_id
                )
            ).first()
        if message is not None:
            touched = message.sent_at or message.due_at
            candidates.append(_by_message("discount", message, subscriber_id, now, touched))
        else:
            candidates.append(
                Attribution(
                    "discount",
                    subscriber_id or row.subscriber_id,
                    None,
                    row.campaign_id,
                    row.flow_id,
                    now,
                    None,
                )
            )
    if not candidates:
        return None
    # Several Tidings codes on one order: the most recently sent message is the last touch.
    epoch = datetime.min.replace(tzinfo=now.tzinfo)
    return max(candidates, key=lambda a: (a.touched_at or epoch, a.message_id or 0))


def _by_click(
    order: Order, subscriber_id: int, windows: Windows, now: datetime
) -> Attribution | None:
    since = order.ordered_at - windows.click
    click = db.session.execute(
        select(Click.message_id, Click.clicked_at)
        .where(
            Click.shop_id == order.shop_id,
            Click.subscriber_id == subscriber_id,
            Click.is_bot.is_(False),
            Click.message_id.is_not(None),
            Click.clicked_at > since,
            Click.clicked_at <= order.ordered_at,
        )
        .order_by(Click.clicked_at.desc(), Click.id.desc())
        .limit(1)
    ).first()
    if click is not None:
        message = _message(order.shop_id, click.message_id)
        if message is not None:
            return _by_message("click", message, subscriber_id, now, click.clicked_at)
    return _by_landing_ref(order, subscriber_id, since, now)


def _by_landing_ref(
    order: Order, subscriber_id: int, since: datetime, now: datetime
) -> Attribution | None:
    """The shopper arrived through our link although no click row exists (recording a click
    never blocks the redirect, so it can be missing): the link itself is the evidence."""
    token = ref_from_landing_site(order.landing_site) if order.landing_site else None
    if not token:
        return None
    message_id = db.session.scalar(
        select(Link.message_id).where(
            Link.shop_id == order.shop_id, Link.token == token, Link.subscriber_id == subscriber_id
        )
    )
    message = _message(order.shop_id, message_id)
    if message is None or message.sent_at is None:
        return None
    if not since < message.sent_at <= order.ordered_at:
        return None
    return _by_message("click", message, subscriber_id, now, message.sent_at)


def _by_view(
    order: Order, subscriber_id: int, window: timedelta, now: datetime
) -> Attribution | None:
    message = db.session.scalars(
        Message.for_shop(order.shop_id)
        .where(
            Message.subscriber_id == subscriber_id,
            Message.kind.in_(TOUCH_KINDS),
            Message.status == "delivered",
            Message.delivered_at > order.ordered_at - window,
            Message.delivered_at <= order.ordered_at,
        )
        .order_by(Message.delivered_at.desc(), Message.id.desc())
        .limit(1)
    ).first()
    if message is None:
        return None
    return _by_message("view", message, subscriber_id, now, message.delivered_at)


def decide(
    order: Order, windows: Windows, *, now: datetime | None = None
) -> tuple[int | None, Attribution | None]:
    """The buyer and the attribution the rules give this order (nothing is written)."""
    now = now or utcnow()
    subscriber_id = recognise_subscriber(order)
    found = _by_code(order, subscriber_id, now)
    if found is None and subscriber_id is not None:
        found = _by_click(order, subscriber_id, windows, now)
        if found is None and windows.view is not None:
            found = _by_view(order, subscriber_id, windows.view, now)
    if found is not None and subscriber_id is None:
        subscriber_id = found.subscriber_id
    return subscriber_id, found


def _write(
    order: Order,
    subscriber_id: int | None,
    found: Attribution | None,
    windows: Windows,
    now: datetime,
) -> None:
    order.subscriber_id = subscriber_id
    order.message_id = found.message_id if found else None
    order.campaign_id = found.campaign_id if found else None
    order.flow_id = found.flow_id if found else None
    order.attribution_reason = found.reason if found else None
    order.attributed_at = found.attributed_at if found else None
    order.attribution_checked_at = now
    order.attribution_click_days = windows.click.days
    order.attribution_view_hours = (
        int(windows.view.total_seconds() // 3600) if windows.view else None
    )


def attribute_order(order: Order) -> Attribution | None:
    """Attribute an order once. Already attributed → its attribution, unchanged; otherwise the
    rules run (again) — an unattributed order can still be claimed when its buyer becomes
    known on a later update."""
    existing = Attribution.of(order)
    if existing is not None:
        return existing
    shop = db.session.get(Shop, order.shop_id)
    assert shop is not None
    windows = Windows.for_shop(shop)
    now = utcnow()
    subscriber_id, found = decide(order, windows, now=now)
    _write(order, subscriber_id, found, windows, now)
    return found


@dataclass(frozen=True)
class RecomputeSummary:
    orders: int
    attributed: int
    changed: int


def recompute_shop(shop_id: int) -> RecomputeSummary:
    """Re-apply the rules to every order of the shop (after the windows changed). Commits per
    batch; subscriber counters follow the (possibly new) buyers."""
    from shopify_app.services.orders import refresh_subscriber_counters

    shop = db.session.get(Shop, shop_id)
    if shop is None:
        raise LookupError(f"shop {shop_id} does not exist")
    windows = Windows.for_shop(shop)
    total = attributed = changed = 0
    last_id = 0
    while True:
        batch = list(
            db.session.scalars(
                Order.for_shop(shop_id)
                .where(Order.id > last_id)
                .order_by(Order.id)
                .limit(RECOMPUTE_BATCH)
            )
        )
        if not batch:
            break
        touched: set[int] = set()
        now = utcnow()
        for order in batch:
            before = (
                order.subscriber_id,
                order.message_id,
                order.campaign_id,
                order.flow_id,
                order.attribution_reason,
            )
            subscriber_id, found = decide(order, windows, now=now)
            keep_time = Attribution.of(order)
            _write(order, subscriber_id, found, windows, now)
            after = (
                order.subscriber_id,
                order.message_id,
                order.campaign_id,
                order.flow_id,
                order.attribution_reason,
            )
            if before == after and keep_time is not None:
                order.attributed_at = keep_time.attributed_at  # unchanged: keep its first time
            else:
                changed += before != after
            touched.update(s for s in (before[0], after[0]) if s is not None)
            attributed += found is not None
        total += len(batch)
        last_id = batch[-1].id
        db.session.flush()
        refresh_subscriber_counters(shop_id, touched)
        db.session.commit()
    log.info(
        "attribution recomputed for shop %s: %s orders, %s attributed, %s changed",
        shop_id,
        total,
        attributed,
        changed,
    )
    return RecomputeSummary(orders=total, attributed=attributed, changed=changed)
