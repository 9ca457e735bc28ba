"""What starts and ends flow runs: checkouts, orders, confirmed subscriptions, opt-outs, and
the periodic win-back scan. Called from the webhook handlers and the consent services inside
their transaction (these functions flush; the caller commits).

Welcome series and the compliance welcome: the subscribers service sends the compliance
welcome text (brand, recurring marketing, frequency, rates, HELP/STOP — and the sign-up code
for widget and keyword sign-ups) the moment consent is confirmed, whether or not the welcome
flow is on, and calls `subscription_confirmed` right after it. The flow never replaces that
text: its first step is a wait (0 minutes by default), so its first message goes right after
the compliance welcome, carries the offer, and the disclosures are never left out by a
merchant's edit. One welcome run per subscriber ever (trigger key "welcome:<subscriber>"), so
opting out and back in does not start the series again.

Abandoned checkout: one run per checkout token ("checkout:<token>") however many
checkouts/update arrive; while the run is still in its first wait, a newer update restarts the
wait from the checkout's latest activity. The recovery URL becomes a tracked short link at send
time; when it is not on one of the shop's link domains (a custom domain the shop record does
not know yet), it is rewritten onto the myshopify domain, which serves the same recovery path.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import String, and_, cast, false, literal, or_, select

from shopify_app.extensions import db
from shopify_app.models import Checkout, Flow, FlowRun, Order, Shop, Subscriber, utcnow
from shopify_app.models.base import JsonType, UTCDateTime
from shopify_app.services import flows
from shopify_app.services.flow_defaults import settings_of
from shopify_app.services.shopify_payloads import parse_time

log = logging.getLogger(__name__)

# An order or fulfillment older than this starts no post-purchase run: an orders/updated
# webhook for an old order must not send a thank-you weeks late.
POST_PURCHASE_MAX_AGE = timedelta(days=2)


def enabled_flow(shop_id: int, kind: str) -> Flow | None:
    return db.session.scalars(
        Flow.for_shop(shop_id).where(Flow.kind == kind, Flow.enabled.is_(True))
    ).first()


def _subscribed(shop_id: int, subscriber_id: int | None) -> Subscriber | None:
    if subscriber_id is None:
        return None
    sub = Subscriber.get_for_shop(shop_id, subscriber_id)
    return sub if sub is not None and sub.status == "subscribed" and sub.phone else None


# --- abandoned checkout -------------------------------------------------------------------


def _checkout_subscriber(shop_id: int, checkout: Checkout) -> Subscriber | None:
    """The checkout's subscriber: linked by the consent handler, else by phone, else by
    customer id — only when subscribed."""
    if checkout.subscriber_id is not None:
        return _subscribed(shop_id, checkout.subscriber_id)
    candidates = []
    if checkout.phone:
        candidates.append(Subscriber.phone == checkout.phone)
    if checkout.customer_id is not None:
        candidates.append(Subscriber.customer_id == checkout.customer_id)
    if not candidates:
        return None
    return db.session.scalars(
        Subscriber.for_shop(shop_id)
        .where(or_(*candidates), Subscriber.status == "subscribed", Subscriber.phone.is_not(None))
        .order_by(Subscriber.id)
    ).first()


def checkout_changed(shop: Shop, checkout: Checkout) -> int | None:
    """checkouts/create|update (the newest state of the checkout): start its run, push back
    its first wait, or end it when the checkout was completed. Returns the run id started or
    changed, if any."""
    key = f"checkout:{checkout.token}"
    if checkout.completed_at is not None:
        flows.exit_runs(
            shop.id,
            "purchased",
            FlowRun.trigger_key == key,
            FlowRun.flow_id.in_(
                select(Flow.id).where(Flow.shop_id == shop.id, Flow.kind == "abandoned_checkout")
            ),
        )
        return None
    flow = enabled_flow(shop.id, "abandoned_checkout")
    if flow is None or not checkout.recovery_url:
        return None
    sub = _checkout_subscriber(shop.id, checkout)
    if sub is None:
        return None
    ordered = db.session.scalar(
        select(Order.id)
        .where(Order.shop_id == shop.id, Order.checkout_token == checkout.token)
        .limit(1)
    )
    if ordered is not None:  # the order's webhook came first
        return None
    now = utcnow()
    last_activity = checkout.shopify_updated_at or now
    return flows.start_run(
        shop,
        flow,
        sub.id,
        key,
        trigger_at=min(last_activity, now),
        restart_wait=True,
        context={
            "checkout_token": checkout.token,
            "recovery_url": flows.recovery_link(shop, checkout.recovery_url),
        },
    )


# --- orders -------------------------------------------------------------------------------


def _fulfilled_at(payload: dict[str, Any]) -> datetime | None:
    if payload.get("fulfillment_status") != "fulfilled":
        return None
    times = [
        parse_time(f.get("created_at"))
        for f in payload.get("fulfillments") or []
        if isinstance(f, dict) and f.get("status") in (None, "success")
    ]
    times = [t for t in times if t is not None]
    return max(times) if times else parse_time(payload.get("updated_at")) or utcnow()


def order_arrived(shop: Shop, order: Order, payload: dict[str, Any]) -> None:
    """orders/create|updated|paid: end the runs this purchase ends, and start the
    post-purchase run (at the order, or at its fulfillment when the flow says so)."""
    if order.test:
        return
    purchase_exits(shop.id, order)
    flow = enabled_flow(shop.id, "post_purchase")
    if flow is None or order.cancelled_at is not None:
        return
    sub = _subscribed(shop.id, order.subscriber_id)
    if sub is None:
        return
    settings = settings_of(flow.kind, flow.settings)
    started = (
        _fulfilled_at(payload) if settings.get("trigger_on") == "fulfillment" else order.ordered_at
    )
    if started is None or started < utcnow() - POST_PURCHASE_MAX_AGE:
        return
    flows.start_run(
        shop,
        flow,
        sub.id,
        f"order:{order.shopify_order_id}",
        trigger_at=started,
        context={"order_id": order.shopify_order_id},
    )


def purchase_exits(shop_id: int, order: Order) -> int:
    """End, as "purchased", the abandoned-checkout run of the order's checkout and every run of
    the order's subscriber that started before the order in a flow that exits on purchase."""
    conditions = []
    shop_flows = list(db.session.scalars(Flow.for_shop(shop_id)))
    if order.checkout_token:
        abandoned = [f.id for f in shop_flows if f.kind == "abandoned_checkout"]
        if abandoned:
            conditions.append(
                and_(
                    FlowRun.flow_id.in_(abandoned),
                    FlowRun.trigger_key == f"checkout:{order.checkout_token}",
                )
            )
    exiting = [f.id for f in shop_flows if settings_of(f.kind, f.settings).get("exit_on_purchase")]
    if order.subscriber_id is not None and exiting:
        conditions.append(
            and_(
                FlowRun.flow_id.in_(exiting),
                FlowRun.subscriber_id == order.subscriber_id,
                FlowRun.created_at <= order.ordered_at,
            )
        )
    if not conditions:
        return 0
    return flows.exit_runs(shop_id, "purchased", or_(*conditions))


# --- consent ------------------------------------------------------------------------------


def subscription_confirmed(shop: Shop, sub: Subscriber) -> int | None:
    """Consent confirmed and the compliance welcome queued: start the welcome series."""
    flow = enabled_flow(shop.id, "welcome")
    if flow is None or sub.status != "subscribed":
        return None
    if sub.id is None:
        db.session.flush()
    return flows.start_run(shop, flow, sub.id, f"welcome:{sub.id}", trigger_at=utcnow())


def subscriber_left(shop_id: int, subscriber_id: int, kind: str = "opted_out") -> int:
    """The subscriber opted out (or was erased): every run of theirs ends now."""
    reason = "opted_out" if kind == "opted_out" else "subscriber_gone"
    return flows.exit_runs(shop_id, reason, FlowRun.subscriber_id == subscriber_id)


# --- win-back -----------------------------------------------------------------------------


def start_winback_runs(shop: Shop, flow: Flow, now: datetime | None = None) -> int:
    """One set-based INSERT … SELECT: a run for every subscribed subscriber whose last order is
    older than `days_since_order` and who got no win-back run in the last `period_days`.
    The key "winback:<subscriber>:<period index>" keeps two scans of one period from starting
    two runs. Returns how many runs started. The caller commits."""
    if not flow.enabled or not shop.is_installed:
        return 0
    now = now or utcnow()
    settings = settings_of(flow.kind, flow.settings)
    period = timedelta(days=int(settings["period_days"]))
    period_index = int(now.timestamp() // period.total_seconds())
    index, due = flows.initial_position(flow.steps, now)
    s = Subscriber
    held: Any = (
        flows.holdout_bucket_sql(s.id, flow.id) < flow.holdout_percent
        if flow.holdout_percent > 0
        else false()
    )
    recent = (
        select(FlowRun.id)
        .where(
            FlowRun.flow_id == flow.id,
            FlowRun.subscriber_id == s.id,
            FlowRun.created_at > now - period,
        )
        .exists()
    )
    source = select(
        literal(shop.id),
        literal(flow.id),
        s.id,
        literal("winback:") + cast(s.id, String) + literal(f":{period_index}"),
        literal("active"),
        literal(index),
        literal(due, UTCDateTime()),
        held,
        literal({"period": period_index}, JsonType),
        literal(now, UTCDateTime()),
        literal(now, UTCDateTime()),
    ).where(
        s.shop_id == shop.id,
        s.status == "subscribed",
        s.phone.is_not(None),
        s.phone_invalid.is_(False),
        s.last_order_at.is_not(None),
        s.last_order_at < now - timedelta(days=int(settings["days_since_order"])),
        ~recent,
    )
    columns = [
        "shop_id",
        "flow_id",
        "subscriber_id",
        "trigger_key",
        "status",
        "step_index",
        "next_step_at",
        "held_out",
        "context",
        "created_at",
        "updated_at",
    ]
    stmt = (
        flows.dialect_insert()(FlowRun)
        .from_select(columns, source)
        .on_conflict_do_nothing(index_elements=["flow_id", "trigger_key"])
    )
    # RETURNING to count: the driver's rowcount is not reliable for INSERT … SELECT here.
    return len(db.session.execute(stmt.returning(FlowRun.id)).all())


def winback_scan(now: datetime | None = None) -> int:
    """Start win-back runs for every installed shop with the flow on, one statement per shop,
    committing each. Returns how many runs started."""
    pairs = db.session.execute(
        select(Shop, Flow)
        .join(Flow, Flow.shop_id == Shop.id)
        .where(
            Flow.kind == "winback",
            Flow.enabled.is_(True),
            Shop.installed_at.is_not(None),
            Shop.uninstalled_at.is_(None),
        )
        .order_by(Shop.id)
    ).all()
    started = 0
    for shop, flow in pairs:
        count = start_winback_runs(shop, flow, now)
        db.session.commit()
        if count:
            log.info("win-back: %d runs started for shop %s", count, shop.id)
        started += count
    return started
