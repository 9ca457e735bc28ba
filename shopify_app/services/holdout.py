"""Holdout groups: did the message make people buy, or would they have bought anyway?

Revenue per recipient of those who got the message is set beside that of the randomly held
back share, counting *every* order each person placed in the attribution window after the send
(attributed or not — the held-back group has nothing to attribute). The difference is the
incremental revenue per recipient; times the number of recipients, the campaign's incremental
revenue. Its 95 % confidence interval is Welch's: diff ± t(0.975, ν)·√(s₁²/n₁ + s₀²/n₀), with
ν from Welch–Satterthwaite, because the two groups differ in size and in variance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, localcontext
from typing import Any

from sqlalchemy import and_, case, func, select, true

from shopify_app.extensions import db
from shopify_app.models import FlowRun, Message, Order
from shopify_app.services.stats_sql import (
    CENT,
    cents,
    from_cents,
    is_postgres,
    money_str,
    plus_hours,
)

HOLDOUT_REASON = "holdout"
RECEIVED_STATUSES = ("sent", "delivered")
METHOD = (
    "Welch's t-test on revenue per recipient (every order a recipient placed within the "
    "attribution window after the send, net of refunds); 95% interval "
    "diff ± t(0.975, ν)·√(s₁²/n₁ + s₀²/n₀), ν by Welch–Satterthwaite."
)


# --------------------------------------------------------------------------- Student's t
def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 400):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c if abs(1.0 + aa / c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c if abs(1.0 + aa / c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return h


def _incomplete_beta(a: float, b: float, x: float) -> float:
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    if x < (a + 1) / (a + b + 2):
        return math.exp(log_front) * _betacf(a, b, x) / a
    return 1.0 - math.exp(log_front) * _betacf(b, a, 1 - x) / b


def t_cdf(t: float, df: float) -> float:
    """P(T ≤ t) for Student's t with `df` degrees of freedom."""
    tail = 0.5 * _incomplete_beta(df / 2, 0.5, df / (df + t * t))
    return 1.0 - tail if t >= 0 else tail


def t_quantile(p: float, df: float) -> float:
    """The t with P(T ≤ t) = p (0.5 < p < 1), by bisection on the CDF."""
    low, high = 0.0, 1.0
    while t_cdf(high, df) < p:
        high *= 2
    for _ in range(200):
        mid = (low + high) / 2
        if t_cdf(mid, df) < p:
            low = mid
        else:
            high = mid
        if high - low < 1e-12:
            break
    return (low + high) / 2


# --------------------------------------------------------------------------- comparison
@dataclass(frozen=True)
class Group:
    n: int
    total: Decimal  # revenue of the group
    sum_squares: Decimal  # Σ (revenue per recipient)²

    @property
    def mean(self) -> Decimal | None:
        return self.total / self.n if self.n else None

    @property
    def variance(self) -> Decimal | None:
        if self.n < 2:
            return None
        return (self.sum_squares - self.total * self.total / self.n) / (self.n - 1)


def _interval(low: Decimal, high: Decimal) -> dict[str, str]:
    return {"low": money_str(low), "high": money_str(high)}


def compare(treated: Group, held_out: Group, window_days: int) -> dict[str, Any]:
    """The holdout report: both groups, the lift per recipient and its 95 % interval."""
    report: dict[str, Any] = {
        "enabled": held_out.n > 0,
        "window_days": window_days,
        "method": METHOD,
        "treated": _side(treated),
        "held_out": _side(held_out),
        "lift_per_recipient": None,
        "ci95_per_recipient": None,
        "incremental_revenue": None,
        "ci95_incremental_revenue": None,
    }
    if treated.mean is None or held_out.mean is None:
        return report
    with localcontext() as ctx:
        ctx.prec = 40
        diff = treated.mean - held_out.mean
        report["lift_per_recipient"] = money_str(diff)
        report["incremental_revenue"] = money_str(diff * treated.n)
        v1, v0 = treated.variance, held_out.variance
        if v1 is None or v0 is None:
            return report
        a, b = v1 / treated.n, v0 / held_out.n
        se2 = a + b
        if se2 <= 0:
            return report
        df = se2 * se2 / (a * a / (treated.n - 1) + b * b / (held_out.n - 1))
        t = Decimal(repr(t_quantile(0.975, float(df))))
        half = t * se2.sqrt()
        report["ci95_per_recipient"] = _interval(diff - half, diff + half)
        report["ci95_incremental_revenue"] = _interval(
            (diff - half) * treated.n, (diff + half) * treated.n
        )
    return report


def _side(group: Group) -> dict[str, Any]:
    mean = group.mean
    return {
        "recipients": group.n,
        "revenue": money_str(group.total),
        "revenue_per_recipient": money_str(mean) if mean is not None else None,
    }


# --------------------------------------------------------------------------- SQL
def _sums(per_recipient: Any) -> dict[str, tuple[Decimal, Decimal]]:
    """{group: (revenue, Σ revenue²)} from a subquery of (grp, rev_cents) per recipient."""
    rows = db.session.execute(
        select(
            per_recipient.c.grp,
            func.sum(per_recipient.c.rev),
            func.sum(per_recipient.c.rev * per_recipient.c.rev),
        ).group_by(per_recipient.c.grp)
    ).all()
    return {
        grp: (from_cents(total), (Decimal(int(squares or 0)) / 10000).quantize(CENT / 100))
        for grp, total, squares in rows
    }


def campaign_holdout(
    shop_id: int,
    campaign_id: int,
    window_days: int,
    counts: dict[str, int] | None = None,
    due_between: tuple[datetime | None, datetime | None] | None = None,
) -> dict[str, Any]:
    """Holdout report of a campaign: sent-to recipients against held-out ones (skipped with
    reason 'holdout'), each from the message's due time over the window.

    `counts` (treated, held_out) and `due_between` (first and last due time) save scans when
    the caller already went over the messages. The revenue side starts from the orders placed
    in the campaign's span and looks up each buyer's one message of the campaign (unique per
    campaign and subscriber), so it reads a few rows per order, never the whole audience.
    """
    if is_postgres():
        # LATERAL … LIMIT 1 makes PostgreSQL probe the (campaign, subscriber) index per order
        # instead of hashing a million recipient rows.
        msg: Any = (
            select(Message.id, Message.status, Message.skip_reason, Message.sent_at, Message.due_at)
            .where(Message.campaign_id == campaign_id, Message.subscriber_id == Order.subscriber_id)
            .limit(1)
            .lateral("recipient")
        )
        cols = msg.c
        join_on: Any = true()
    else:
        cols = Message.__table__.c
        msg = Message.__table__
        join_on = and_(
            Message.subscriber_id == Order.subscriber_id,
            Message.campaign_id == campaign_id,
            Message.shop_id == shop_id,
        )
    held = and_(cols.status == "skipped", cols.skip_reason == HOLDOUT_REASON)
    received = and_(cols.status.in_(RECEIVED_STATUSES), cols.sent_at.is_not(None))
    grp = case((held, "held_out"), else_="treated")
    if counts is None:
        counts = _campaign_counts(shop_id, campaign_id)
    where = [
        Order.shop_id == shop_id,
        Order.test.is_(False),
        Order.subscriber_id.is_not(None),
        held | received,
        Order.ordered_at >= cols.due_at,
        Order.ordered_at < plus_hours(cols.due_at, window_days * 24),
    ]
    first, last = due_between or (None, None)
    if first is not None and last is not None:
        where += [Order.ordered_at >= first, Order.ordered_at < last + timedelta(days=window_days)]
    per_recipient = (
        select(
            cols.id.label("mid"), grp.label("grp"), func.sum(cents(Order.net_total)).label("rev")
        )
        .select_from(Order)
        .join(msg, join_on)
        .where(*where)
        .group_by(cols.id, grp)
    ).subquery()
    return _report(counts, _sums(per_recipient), window_days)


def _campaign_counts(shop_id: int, campaign_id: int) -> dict[str, int]:
    held = and_(Message.status == "skipped", Message.skip_reason == HOLDOUT_REASON)
    received = and_(Message.status.in_(RECEIVED_STATUSES), Message.sent_at.is_not(None))
    grp = case((held, "held_out"), else_="treated")
    return dict(
        db.session.execute(
            select(grp, func.count())
            .where(Message.shop_id == shop_id, Message.campaign_id == campaign_id, held | received)
            .group_by(grp)
        ).all()
    )


def flow_holdout(shop_id: int, flow_id: int, window_days: int) -> dict[str, Any]:
    """Holdout report of a flow: runs that texted against held-out runs, each from the run's
    start over the window."""
    texted = (
        select(Message.id)
        .where(
            Message.flow_run_id == FlowRun.id,
            Message.status.in_(RECEIVED_STATUSES),
            Message.sent_at.is_not(None),
        )
        .exists()
    )
    in_report = FlowRun.held_out.is_(True) | texted
    grp = case((FlowRun.held_out.is_(True), "held_out"), else_="treated")
    counts = dict(
        db.session.execute(
            select(grp, func.count())
            .where(FlowRun.shop_id == shop_id, FlowRun.flow_id == flow_id, in_report)
            .group_by(grp)
        ).all()
    )
    per_recipient = (
        select(
            FlowRun.id.label("rid"), grp.label("grp"), func.sum(cents(Order.net_total)).label("rev")
        )
        .select_from(Order)
        .join(
            FlowRun,
            and_(
                FlowRun.subscriber_id == Order.subscriber_id,
                FlowRun.flow_id == flow_id,
                FlowRun.shop_id == shop_id,
            ),
        )
        .where(
            Order.shop_id == shop_id,
            Order.test.is_(False),
            in_report,
            Order.ordered_at >= FlowRun.created_at,
            Order.ordered_at < plus_hours(FlowRun.created_at, window_days * 24),
        )
        .group_by(FlowRun.id, grp)
    ).subquery()
    return _report(counts, _sums(per_recipient), window_days)


def _report(
    counts: dict[str, int], sums: dict[str, tuple[Decimal, Decimal]], window_days: int
) -> dict[str, Any]:
    zero = (Decimal("0.00"), Decimal("0.0000"))
    treated = Group(counts.get("treated", 0), *sums.get("treated", zero))
    held_out = Group(counts.get("held_out", 0), *sums.get("held_out", zero))
    return compare(treated, held_out, window_days)
