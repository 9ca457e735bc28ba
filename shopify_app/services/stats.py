"""What each campaign, A/B variant, flow and the whole shop sent, cost and earned.

Every figure is a SQL aggregate (a handful of queries per report, never one per row), and
money is returned as Decimal strings. The definitions, also in the API description:

- recipients: recipient rows except the held-out ones; sent: accepted by the provider
  (`sent_at` set); delivered: carrier-confirmed; failed: failed or undelivered, by error code;
  delivery_rate = delivered / sent.
- clicks: human clicks (bot clicks are counted apart); unique_clicks: distinct subscribers who
  clicked; ctr = unique_clicks / delivered.
- orders: attributed orders that are neither test nor cancelled; revenue: their value net of
  refunds, split by reason (discount / click / view); aov = revenue / orders;
  conversion_rate = orders / delivered.
- segments and spend count billed messages only: accepted by the provider (`sent_at` set)
  and not marked failed afterwards (undelivered texts are billed, failed ones are not);
  spend = Σ Message.price of those (each message's cost: segments × the per-segment price,
  fixed when it was sent); roi = (revenue − spend) / spend.
- opt_outs: opt-outs within 48 h after a message of this report, when it was the last marketing
  message the subscriber got before opting out; opt_out_rate = opt_outs / delivered.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, and_, case, distinct, func, select

from shopify_app.extensions import db
from shopify_app.models import (
    Campaign,
    Click,
    ConsentEvent,
    Flow,
    FlowRun,
    Message,
    Order,
    Shop,
    Subscriber,
    Variant,
)
from shopify_app.services import holdout
from shopify_app.services.attribution import Windows
from shopify_app.services.stats_sql import cents, from_cents, money_str, plus_hours, ratio

OPT_OUT_WINDOW_HOURS = 48
REASONS = ("discount", "click", "view")
MARKETING_KINDS = ("campaign", "flow")
FAILED_STATUSES = ("failed", "undelivered")
UNBILLED_STATUSES = ("failed",)
ROI_FORMULA = "roi = (revenue - spend) / spend"

Filter = Callable[[Select[Any]], Select[Any]]
ALL = "__all__"  # the group key of an ungrouped report


class NotFound(LookupError):
    """The campaign or flow is not this shop's."""


def _group(key: Any) -> Any:
    return key if key is not None else ALL


def _keyed(group: Any | None) -> list[Any]:
    return [group.label("g")] if group is not None else []


def _grouped(stmt: Select[Any], group: Any | None) -> Select[Any]:
    return stmt.group_by(group) if group is not None else stmt


# --------------------------------------------------------------------------- the aggregates
EMPTY_TOTALS: dict[str, Any] = {
    "recipients": 0,
    "held_out": 0,
    "skipped": 0,
    "pending": 0,
    "sent": 0,
    "delivered": 0,
    "failed": 0,
    "received": 0,
    "segments": 0,
    "spend": Decimal("0"),
    "failed_by_error_code": {},
    "first_due": None,
    "last_due": None,
    "first_id": None,
    "last_id": None,
}
NO_CLICKS = {"clicks": 0, "bot_clicks": 0, "unique_clicks": 0}


@dataclass(frozen=True)
class Scope:
    """Which messages and orders a report covers. A campaign scope also knows that each
    subscriber has at most one message in it (clicked messages = distinct clickers)."""

    shop_id: int
    messages: Filter
    orders: Any
    campaign_id: int | None = None


def _message_totals(scope: Scope, group: Any | None) -> dict[Any, dict[str, Any]]:
    """Delivery, failures by code and spend from ONE pass over the messages. Grouping by the
    few values of (status, skip reason, error code, segments, price) and multiplying here
    avoids summing a million NUMERIC prices; for a campaign PostgreSQL reads it all from
    ix_message_campaign_report, in index order."""
    stmt = select(
        *_keyed(group),
        Message.status,
        Message.skip_reason,
        Message.error_code,
        Message.segments,
        Message.price,
        func.count(),
        func.count(Message.sent_at),
        func.min(Message.due_at),
        func.max(Message.due_at),
        func.min(Message.id),
        func.max(Message.id),
    )
    keys = [group] if group is not None else []
    stmt = scope.messages(stmt).group_by(
        *keys,
        Message.status,
        Message.skip_reason,
        Message.error_code,
        Message.segments,
        Message.price,
    )
    out: dict[Any, dict[str, Any]] = {}
    for row in db.session.execute(stmt):
        values = list(row)
        key = _group(values.pop(0)) if group is not None else ALL
        (status, skip_reason, error_code, segments, price, n, sent) = values[:7]
        first_due, last_due, first_id, last_id = values[7:]
        totals = out.setdefault(key, {**EMPTY_TOTALS, "failed_by_error_code": {}})
        held = status == "skipped" and skip_reason == holdout.HOLDOUT_REASON
        totals["held_out" if held else "recipients"] += n
        totals["skipped"] += n if status == "skipped" and not held else 0
        totals["pending"] += n if status in ("pending", "sending") else 0
        totals["sent"] += sent
        totals["delivered"] += n if status == "delivered" else 0
        totals["received"] += sent if status in holdout.RECEIVED_STATUSES else 0
        if status in FAILED_STATUSES:
            totals["failed"] += n
            code = str(error_code) if error_code is not None else "unknown"
            codes = totals["failed_by_error_code"]
            codes[code] = codes.get(code, 0) + n
        # Billed: what the provider accepted, except what it then marked failed (Twilio
        # charges undelivered texts, not failed ones). A row refused at the API, or still
        # pending, carries the price it was decided at but cost nothing.
        billed = sent if status not in UNBILLED_STATUSES else 0
        totals["segments"] += int(segments or 0) * billed
        totals["spend"] += Decimal(str(price or 0)) * billed
        if first_due is not None:
            totals["first_due"] = min(filter(None, (totals["first_due"], first_due)))
            totals["last_due"] = max(filter(None, (totals["last_due"], last_due)))
        if first_id is not None:
            totals["first_id"] = min(filter(None, (totals["first_id"], first_id)))
            totals["last_id"] = max(filter(None, (totals["last_id"], last_id)))
    return out


def _campaign_clicks(scope: Scope, totals: dict[Any, dict[str, Any]]) -> dict[str, int] | None:
    """A campaign's clicks without touching its messages, when that is exact.

    `start` inserts a campaign's recipients in one statement, so their ids usually form one
    unbroken range. If the campaign holds exactly as many messages as the range has ids, every
    message in the range is the campaign's, and its clicks are the clicks whose message id is
    in the range — one index range scan. Otherwise (None) the caller joins. The range comes
    from the totals' pass over the campaign's messages."""
    counts = totals.get(ALL)
    low, high = (counts["first_id"], counts["last_id"]) if counts else (None, None)
    if low is None or counts is None or high - low + 1 != counts["recipients"] + counts["held_out"]:
        return None
    human = Click.is_bot.is_(False)
    row = db.session.execute(
        select(
            func.count().filter(human),
            func.count().filter(~human),
            func.count(distinct(Click.message_id)).filter(human),
        ).where(Click.shop_id == scope.shop_id, Click.message_id.between(low, high))
    ).one()
    return {
        "clicks": int(row[0] or 0),
        "bot_clicks": int(row[1] or 0),
        "unique_clicks": int(row[2] or 0),
    }


def _clicks(
    scope: Scope, group: Any | None, totals: dict[Any, dict[str, Any]]
) -> dict[Any, dict[str, int]]:
    """Human clicks, bot clicks and distinct human clickers."""
    if scope.campaign_id is not None and group is None:
        fast = _campaign_clicks(scope, totals)
        if fast is not None:
            return {ALL: fast}
    human = Click.is_bot.is_(False)
    stmt = (
        select(
            *_keyed(group),
            func.count().filter(human),
            func.count().filter(~human),
            func.count(distinct(Message.subscriber_id)).filter(human),
        )
        .select_from(Click)
        .join(Message, Message.id == Click.message_id)
        .where(Click.shop_id == scope.shop_id)
    )
    out = {}
    for row in db.session.execute(_grouped(scope.messages(stmt), group)):
        values = list(row)
        key = _group(values.pop(0)) if group is not None else ALL
        out[key] = {
            "clicks": int(values[0] or 0),
            "bot_clicks": int(values[1] or 0),
            "unique_clicks": int(values[2] or 0),
        }
    return out


def _orders(scope: Scope, group: Any | None) -> dict[Any, dict[str, Any]]:
    """Attributed orders (not test, not cancelled) and their net revenue by reason. A group
    over Message columns reaches the order's message through Order.message_id."""
    stmt = (
        select(
            *_keyed(group),
            Order.attribution_reason,
            func.count(),
            # Whole cents: exact on SQLite too, whose NUMERIC columns are floats.
            func.coalesce(func.sum(cents(Order.net_total)), 0),
        )
        .select_from(Order)
        .where(
            Order.shop_id == scope.shop_id,
            scope.orders,
            Order.test.is_(False),
            Order.cancelled_at.is_(None),
            Order.attribution_reason.is_not(None),
        )
    )
    if group is not None and Message.__table__ in group._from_objects:
        stmt = stmt.outerjoin(Message, Message.id == Order.message_id)
    stmt = stmt.group_by(*([group] if group is not None else []), Order.attribution_reason)
    out: dict[Any, dict[str, Any]] = {}
    for row in db.session.execute(stmt):
        values = list(row)
        key = _group(values.pop(0)) if group is not None else ALL
        reason, n, revenue = values
        entry = out.setdefault(key, {r: (0, Decimal("0.00")) for r in REASONS})
        entry[reason] = (int(n), from_cents(revenue))
    return out


def _opt_outs(scope: Scope, group: Any | None) -> dict[Any, int]:
    """Opt-outs within 48 h after a message here that was the subscriber's last marketing
    message before opting out (so one opt-out is never blamed on two sends)."""
    shop_id = scope.shop_id
    later = Message.__table__.alias("later_message")
    newer_send = (
        select(later.c.id)
        .where(
            later.c.shop_id == shop_id,
            later.c.subscriber_id == ConsentEvent.subscriber_id,
            later.c.kind.in_(MARKETING_KINDS),
            later.c.sent_at > Message.sent_at,
            later.c.sent_at <= ConsentEvent.occurred_at,
        )
        .exists()
    )
    stmt = (
        select(*_keyed(group), func.count(distinct(ConsentEvent.id)))
        .select_from(ConsentEvent)
        .join(
            Message,
            and_(Message.subscriber_id == ConsentEvent.subscriber_id, Message.shop_id == shop_id),
        )
        .where(
            ConsentEvent.shop_id == shop_id,
            ConsentEvent.kind == "opted_out",
            Message.kind.in_(MARKETING_KINDS),
            Message.sent_at.is_not(None),
            Message.sent_at <= ConsentEvent.occurred_at,
            ConsentEvent.occurred_at < plus_hours(Message.sent_at, OPT_OUT_WINDOW_HOURS),
            ~newer_send,
        )
    )
    out = {}
    for row in db.session.execute(_grouped(scope.messages(stmt), group)):
        values = list(row)
        key = _group(values.pop(0)) if group is not None else ALL
        out[key] = int(values[0] or 0)
    return out


# --------------------------------------------------------------------------- assembly
def _summary(
    totals: dict[str, Any] | None,
    clicks: dict[str, int] | None,
    orders: dict[str, Any] | None,
    opt_outs: int | None,
) -> dict[str, Any]:
    totals = totals or EMPTY_TOTALS
    clicks = clicks or NO_CLICKS
    unique = clicks["unique_clicks"]
    orders = orders or {r: (0, Decimal("0.00")) for r in REASONS}
    count = sum(orders[r][0] for r in REASONS)
    revenue = sum((orders[r][1] for r in REASONS), Decimal("0.00"))
    spend = totals["spend"]
    delivered = totals["delivered"]
    return {
        "recipients": totals["recipients"],
        "held_out": totals["held_out"],
        "skipped": totals["skipped"],
        "pending": totals["pending"],
        "sent": totals["sent"],
        "delivered": delivered,
        "failed": totals["failed"],
        "failed_by_error_code": dict(sorted(totals["failed_by_error_code"].items())),
        "delivery_rate": ratio(delivered, totals["sent"]),
        "segments": totals["segments"],
        "clicks": clicks["clicks"],
        "bot_clicks": clicks["bot_clicks"],
        "unique_clicks": unique,
        "ctr": ratio(unique, delivered),
        "orders": count,
        "orders_by_reason": {r: orders[r][0] for r in REASONS},
        "revenue": money_str(revenue),
        "revenue_by_reason": {r: money_str(orders[r][1]) for r in REASONS},
        "aov": ratio(revenue, count, Decimal("0.01")),
        "conversion_rate": ratio(count, delivered),
        "spend": money_str(spend),
        "roi": ratio(revenue - spend, spend),
        "roi_formula": ROI_FORMULA,
        "opt_outs": opt_outs or 0,
        "opt_out_rate": ratio(opt_outs or 0, delivered),
    }


EMPTY = _summary(None, None, None, None)


def _report(
    scope: Scope, group: Any | None = None, order_group: Any | None = None
) -> tuple[dict[Any, dict[str, Any]], dict[Any, dict[str, Any]]]:
    """{group key: summary} and the raw message totals behind it."""
    totals = _message_totals(scope, group)
    clicks = _clicks(scope, group, totals)
    orders = _orders(scope, order_group if order_group is not None else group)
    opt_outs = _opt_outs(scope, group)
    keys = set(totals) | set(clicks) | set(orders) | set(opt_outs) or {ALL}
    summaries = {
        k: _summary(totals.get(k), clicks.get(k), orders.get(k), opt_outs.get(k)) for k in keys
    }
    return summaries, totals


def _shop(shop_id: int) -> Shop:
    shop = db.session.get(Shop, shop_id)
    if shop is None:
        raise NotFound(f"shop {shop_id}")
    return shop


def _campaign_scope(shop_id: int, campaign_id: int) -> Scope:
    return Scope(
        shop_id,
        lambda s: s.where(Message.shop_id == shop_id, Message.campaign_id == campaign_id),
        Order.campaign_id == campaign_id,
        campaign_id,
    )


def campaign_stats(shop_id: int, campaign_id: int) -> dict[str, Any]:
    """Every figure of one campaign, with its holdout comparison (five or six queries)."""
    campaign = Campaign.get_for_shop(shop_id, campaign_id)
    if campaign is None:
        raise NotFound(f"campaign {campaign_id}")
    window = Windows.for_shop(_shop(shop_id)).click.days
    reports, totals = _report(_campaign_scope(shop_id, campaign_id))
    counts = totals.get(ALL, EMPTY_TOTALS)
    comparison = holdout.campaign_holdout(
        shop_id,
        campaign_id,
        window,
        counts={"treated": counts["received"], "held_out": counts["held_out"]},
        due_between=(counts["first_due"], counts["last_due"]),
    )
    return {
        "campaign_id": campaign.id,
        "name": campaign.name,
        "status": campaign.status,
        **reports[ALL],
        "holdout": comparison,
    }


def variant_stats(shop_id: int, campaign_id: int) -> list[dict[str, Any]]:
    """The same figures per A/B variant (messages without a variant under `variant_id` None)."""
    if Campaign.get_for_shop(shop_id, campaign_id) is None:
        raise NotFound(f"campaign {campaign_id}")
    labels = {
        v.id: v.label
        for v in db.session.scalars(
            Variant.for_shop(shop_id).where(Variant.campaign_id == campaign_id)
        )
    }
    reports, _ = _report(_campaign_scope(shop_id, campaign_id), Message.variant_id)
    rows = []
    for key in sorted(set(reports) | set(labels), key=lambda k: (k == ALL, str(k))):
        variant_id = None if key == ALL else key
        rows.append(
            {"variant_id": variant_id, "label": labels.get(variant_id), **reports.get(key, EMPTY)}
        )
    return rows


def flow_stats(shop_id: int, flow_id: int) -> dict[str, Any]:
    """A flow's figures, per step too, with runs and its holdout comparison."""
    flow = Flow.get_for_shop(shop_id, flow_id)
    if flow is None:
        raise NotFound(f"flow {flow_id}")

    def messages(s: Select[Any]) -> Select[Any]:
        return s.join(FlowRun, FlowRun.id == Message.flow_run_id).where(
            Message.shop_id == shop_id, FlowRun.flow_id == flow_id
        )

    scope = Scope(shop_id, messages, Order.flow_id == flow_id)
    window = Windows.for_shop(_shop(shop_id)).click.days
    report = _report(scope)[0][ALL]
    steps = _report(scope, Message.flow_step)[0]
    runs = dict(
        db.session.execute(
            select(FlowRun.status, func.count())
            .where(FlowRun.shop_id == shop_id, FlowRun.flow_id == flow_id)
            .group_by(FlowRun.status)
        ).all()
    )
    return {
        "flow_id": flow.id,
        "name": flow.name,
        "kind": flow.kind,
        **report,
        "runs": {"total": sum(runs.values()), "by_status": runs},
        "steps": [
            {"step": None if k == ALL else k, **v}
            for k, v in sorted(steps.items(), key=lambda kv: (kv[0] == ALL, str(kv[0])))
        ],
        "holdout": holdout.flow_holdout(shop_id, flow_id, window),
    }


def shop_stats(shop_id: int, since: datetime, until: datetime) -> dict[str, Any]:
    """The shop over [since, until): messages sent in the period with their clicks and
    opt-outs, orders placed in the period, split between campaigns and flows, and subscriber
    growth."""
    _shop(shop_id)

    def period(s: Select[Any]) -> Select[Any]:
        return s.where(
            Message.shop_id == shop_id, Message.sent_at >= since, Message.sent_at < until
        )

    scope = Scope(shop_id, period, and_(Order.ordered_at >= since, Order.ordered_at < until))
    source = case(
        (Message.campaign_id.is_not(None), "campaigns"),
        (Message.flow_run_id.is_not(None), "flows"),
        else_="other",
    )
    order_source = case(
        (Order.campaign_id.is_not(None), "campaigns"),
        (Order.flow_id.is_not(None), "flows"),
        else_="other",
    )
    by_source = _report(scope, source, order_source)[0]
    total = _report(scope)[0][ALL]
    growth = db.session.execute(
        select(
            func.sum(
                case(
                    (and_(Subscriber.subscribed_at >= since, Subscriber.subscribed_at < until), 1),
                    else_=0,
                )
            ),
            func.sum(case((Subscriber.status == "subscribed", 1), else_=0)),
        ).where(Subscriber.shop_id == shop_id)
    ).one()
    unsubscribes = db.session.scalar(
        select(func.count()).where(
            ConsentEvent.shop_id == shop_id,
            ConsentEvent.kind == "opted_out",
            ConsentEvent.occurred_at >= since,
            ConsentEvent.occurred_at < until,
        )
    )
    return {
        "since": since.isoformat(),
        "until": until.isoformat(),
        **total,
        "by_source": {k: by_source.get(k, EMPTY) for k in ("campaigns", "flows", "other")},
        "subscribers": {
            "new": int(growth[0] or 0),
            "subscribed_now": int(growth[1] or 0),
            "unsubscribes": int(unsubscribes or 0),
        },
    }
