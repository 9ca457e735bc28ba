"""A seeded shop where every figure is computed again here, in plain Python over the raw rows,
and compared with services/stats.py (and the series and exports) exactly."""

from __future__ import annotations

import csv
import io
import random
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from shopify_app.extensions import db
from shopify_app.models import (
    Click,
    ConsentEvent,
    DiscountCode,
    Flow,
    FlowRun,
    Link,
    Message,
    Order,
    OrderRefund,
    Shop,
    Subscriber,
    Variant,
)
from shopify_app.services import exports, stats
from shopify_app.services.exports import attributed_orders_csv, campaign_results_csv
from shopify_app.services.holdout import t_quantile
from shopify_app.services.orders import ingest_order, ingest_refund
from shopify_app.services.timeseries import daily_series, local_bounds
from tests.conftest import make_shop
from tests.integration.analytics_support import (
    at,
    campaign,
    click,
    issued_code,
    link,
    message,
    opt_out,
    subscriber,
)

CENT = Decimal("0.01")
RATE = Decimal("0.0001")
WINDOW = timedelta(days=5)
VIEW_WINDOW = timedelta(hours=24)
SHARED_CODE = "WINTER10"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
EUR_PER_USD = Decimal("0.92")
MARKETING = ("campaign", "flow")
ZONE = ZoneInfo("America/New_York")


def q(value: Decimal, places: Decimal = CENT) -> str:
    return str(value.quantize(places, rounding=ROUND_HALF_UP))


def rate(num: Any, den: Any, places: Decimal = RATE) -> str | None:
    return None if not den else q(Decimal(num) / Decimal(den), places)


# --------------------------------------------------------------------------- the seed
def seed(shop: Shop, rnd: random.Random, orders: int = 90) -> dict[str, Any]:
    subs = [subscriber(shop, f"+1617555{i:04d}", customer_id=9000 + i) for i in range(48)]
    fall = campaign(shop, "Fall sale", discount_mode="unique", holdout_percent=15)
    winter = campaign(shop, "Winter preview")
    variants = []
    for label in ("A", "B"):
        variant = Variant(shop_id=shop.id, campaign_id=fall.id, label=label, body=f"Body {label}")
        db.session.add(variant)
        variants.append(variant)
    flow = Flow(
        shop_id=shop.id, kind="abandoned_checkout", name="Cart", enabled=True, holdout_percent=20
    )
    db.session.add(flow)
    db.session.flush()

    base = at("2026-10-05T14:00:00+00:00")
    statuses = ["delivered"] * 6 + ["sent", "undelivered", "failed", "pending"]
    messages: list[Message] = []
    for i, sub in enumerate(subs[:40]):
        due = base + timedelta(minutes=17 * i)  # crosses local midnight (04:00 UTC) too
        if i % 7 == 3:
            messages.append(
                message(
                    shop,
                    sub,
                    sent=None,
                    status="skipped",
                    campaign_id=fall.id,
                    skip_reason="holdout",
                    due_at=due,
                )
            )
            continue
        if i == 11:
            messages.append(
                message(
                    shop,
                    sub,
                    sent=None,
                    status="skipped",
                    campaign_id=fall.id,
                    skip_reason="unsubscribed",
                    due_at=due,
                )
            )
            continue
        status = rnd.choice(statuses)
        # Half the failures were refused by the provider's API: priced when decided, never
        # accepted, so never billed.
        refused = status == "failed" and rnd.random() < 0.5
        priced = status != "pending"
        sent = None if refused or not priced else due + timedelta(seconds=rnd.randint(1, 50))
        code = {"undelivered": 30003, "failed": rnd.choice([30007, 21610])}.get(status)
        segments = rnd.choice([1, 1, 2])
        messages.append(
            message(
                shop,
                sub,
                sent=sent,
                status=status,
                campaign_id=fall.id,
                due_at=due,
                variant_id=variants[i % 2].id,
                error_code=code,
                segments=segments if priced else None,
                price=(Decimal("0.00790") * segments) if priced else None,
            )
        )
    for i, sub in enumerate(subs[20:44]):
        sent = at("2026-10-06T16:00:00+00:00") + timedelta(minutes=3 * i)
        messages.append(
            message(
                shop, sub, sent=sent, campaign_id=winter.id, segments=1, price=Decimal("0.00830")
            )
        )
    for i, sub in enumerate(subs[30:48]):
        run = FlowRun(
            shop_id=shop.id,
            flow_id=flow.id,
            subscriber_id=sub.id,
            trigger_key=f"checkout-{i}",
            held_out=i % 5 == 0,
            status="exited" if i % 3 == 0 else "completed",
        )
        db.session.add(run)
        db.session.flush()
        run.created_at = at("2026-10-03T12:00:00+00:00") + timedelta(hours=7 * i)
        if run.held_out:
            continue
        for step in (1, 2):
            sent = run.created_at + timedelta(hours=step)
            status = rnd.choice(["delivered", "delivered", "sent", "failed"])
            messages.append(
                message(
                    shop,
                    sub,
                    sent=sent,
                    status=status,
                    kind="flow",
                    flow_run_id=run.id,
                    flow_step=step,
                    error_code=30007 if status == "failed" else None,
                    delivered_at=sent if status == "delivered" else None,
                )
            )
    db.session.flush()

    codes = {}
    tokens: dict[int, list[str]] = defaultdict(list)  # subscriber -> link tokens
    for msg in messages:
        if msg.sent_at is None:
            continue
        row = link(shop, msg, f"L{msg.id:08d}x{rnd.randint(1000, 9999)}")
        tokens[msg.subscriber_id].append(row.token)
        if msg.campaign_id == winter.id and SHARED_CODE not in codes.values():
            codes[0] = issued_code(shop, msg, SHARED_CODE, mode="shared").code
        if msg.campaign_id == fall.id and rnd.random() < 0.5:
            codes[msg.id] = issued_code(shop, msg, f"FALL-{msg.id:04d}AB").code
        for _ in range(rnd.choice([0, 0, 1, 1, 2, 3])):
            click(
                shop,
                row,
                msg.sent_at + timedelta(minutes=rnd.randint(1, 60 * 24 * 6)),
                bot=rnd.random() < 0.2,
            )
    for sub in rnd.sample(subs, 12):
        opt_out(shop, sub, base + timedelta(minutes=rnd.randint(0, 60 * 24 * 4)))
    db.session.commit()

    # View-through on (24 h), so every reason occurs; the click window stays 5 days.
    shop.settings = {
        **shop.settings,
        "attribution": {
            **shop.setting("attribution"),
            "view_through": True,
            "view_through_hours": 24,
        },
    }
    db.session.commit()

    expected: dict[int, tuple[Decimal, Decimal]] = {}  # shopify id -> (total, refunded), USD
    winter_recipients = {m.subscriber_id for m in messages if m.campaign_id == winter.id}
    for n in range(orders):
        sub = rnd.choice(subs + [None] * 6)
        when = at("2026-10-02T00:00:00+00:00") + timedelta(minutes=rnd.randint(0, 60 * 24 * 14))
        own = [
            m for m in messages if sub is not None and m.subscriber_id == sub.id and m.id in codes
        ]
        roll = rnd.random()
        used = []
        if own and roll < 0.5:
            used.append(codes[own[0].id])
        elif roll > (0.75 if sub is not None and sub.id in winter_recipients else 0.92):
            used.append(SHARED_CODE.lower())  # anyone may type a shared code, strangers too
        if rnd.random() < 0.15:
            used.append("FREESHIP")  # the merchant's own code: not ours, attributes nothing
        total = Decimal(rnd.randint(1500, 25000)) / 100
        # A third are paid in euros: amounts must come from the shop-money side.
        euros = rnd.random() < 0.33
        presented = (total * EUR_PER_USD).quantize(CENT) if euros else total
        phone = sub.phone if sub is not None else f"+1212555{n:04d}"
        landing = "/"
        if sub is not None and tokens[sub.id] and rnd.random() < 0.25:
            # Came through one of our links on another device: only the ref names them.
            landing = f"/products/scarf?utm_source=tidings&tidings_ref={rnd.choice(tokens[sub.id])}"
            phone = None
        payload = {
            "id": 700000 + n,
            "name": f"#{2000 + n}",
            "created_at": when.isoformat(),
            "updated_at": when.isoformat(),
            "currency": "USD",
            "presentment_currency": "EUR" if euros else "USD",
            "total_price": str(total),
            "total_price_set": {
                "shop_money": {"amount": str(total), "currency_code": "USD"},
                "presentment_money": {
                    "amount": str(presented),
                    "currency_code": "EUR" if euros else "USD",
                },
            },
            "test": rnd.random() < 0.08,
            "cancelled_at": (when + timedelta(hours=2)).isoformat()
            if rnd.random() < 0.08
            else None,
            "phone": phone,
            "discount_codes": [
                {"code": code, "amount": "5.00", "type": "percentage"} for code in used
            ],
            "landing_site": landing,
            "refunds": [],
        }
        ingest_order(shop, payload, triggered_at=when)
        refunded = Decimal("0.00")
        if rnd.random() < 0.25:
            refunded = (total * Decimal(rnd.randint(10, 100)) / 100).quantize(CENT)
            ingest_refund(shop, refund_payload(800000 + n, 700000 + n, when, refunded, euros))
        expected[700000 + n] = (total, refunded)
        db.session.commit()
    return {
        "campaign": fall.id,
        "winter": winter.id,
        "flow": flow.id,
        "variants": {v.id: v.label for v in variants},
        "amounts": expected,
    }


def refund_payload(
    refund_id: int, order_id: int, when: datetime, amount: Decimal, euros: bool
) -> dict[str, Any]:
    """A refunds/create of `amount` (USD). Paid in euros, the transaction is in euros and the
    shop-money side comes from the refunded line, as Shopify reports it."""
    presented = (amount * EUR_PER_USD).quantize(CENT) if euros else amount
    currency = "EUR" if euros else "USD"
    return {
        "id": refund_id,
        "order_id": order_id,
        "processed_at": (when + timedelta(days=2)).isoformat(),
        "transactions": [
            {"kind": "refund", "status": "success", "amount": str(presented), "currency": currency}
        ],
        "refund_line_items": [
            {
                "quantity": 1,
                "subtotal_set": {
                    "shop_money": {"amount": str(amount), "currency_code": "USD"},
                    "presentment_money": {"amount": str(presented), "currency_code": currency},
                },
                "total_tax_set": {
                    "shop_money": {"amount": "0.00", "currency_code": "USD"},
                    "presentment_money": {"amount": "0.00", "currency_code": currency},
                },
            }
        ],
    }


@pytest.fixture
def seeded(shop: Shop) -> dict[str, Any]:
    data = seed(shop, random.Random(20261005))
    # Another shop's rows must never leak into these figures.
    other = make_shop("noise-shop.myshopify.com")
    seed(other, random.Random(99), orders=30)
    data["shop"] = shop.id
    return data


# --------------------------------------------------------------------------- the oracle
@dataclass(frozen=True)
class Credit:
    """Who placed an order and which message earned it, by the rules applied here anew."""

    subscriber_id: int | None
    reason: str | None = None
    message_id: int | None = None
    campaign_id: int | None = None
    flow_id: int | None = None


class Raw:
    """Every row of the shop, and the figures computed from them in plain Python — the
    attribution too, from the codes, links, clicks and deliveries, never from the columns the
    app wrote on the orders."""

    def __init__(self, shop_id: int) -> None:
        def rows(model):
            return list(db.session.scalars(select(model).where(model.shop_id == shop_id)))

        self.messages = rows(Message)
        self.clicks = rows(Click)
        self.orders = rows(Order)
        self.refunds = rows(OrderRefund)
        self.codes = rows(DiscountCode)
        self.links = {link.token: link for link in rows(Link)}
        self.phones = {sub.phone: sub.id for sub in rows(Subscriber)}
        self.events = [e for e in rows(ConsentEvent) if e.kind == "opted_out"]
        self.runs = {r.id: r for r in rows(FlowRun)}
        self.by_id = {m.id: m for m in self.messages}
        self.credit = {o.id: self.attribute(o) for o in self.orders}
        refunded: dict[int, Decimal] = defaultdict(Decimal)
        for refund in self.refunds:
            refunded[refund.shopify_order_id] += refund.amount
        self.net = {
            o.id: (
                Decimal("0")
                if o.test or o.cancelled_at is not None
                else max(o.total - refunded[o.shopify_order_id], Decimal("0"))
            )
            for o in self.orders
        }

    # -- attribution: code, else the last human click in 5 days, else a delivery in 24 h
    def _credit(self, reason: str, m: Message, subscriber_id: int | None) -> Credit:
        flow_id = self.runs[m.flow_run_id].flow_id if m.flow_run_id else None
        return Credit(subscriber_id or m.subscriber_id, reason, m.id, m.campaign_id, flow_id)

    def attribute(self, order: Order) -> Credit:
        query = parse_qs(urlsplit(order.landing_site or "").query)
        ref = self.links.get((query.get("tidings_ref") or [""])[0])
        buyer = ref.subscriber_id if ref else self.phones.get(order.phone)
        used = {str(c["code"]).upper() for c in order.discount_codes}
        found: list[tuple[datetime, int, Credit]] = []
        for code in (c for c in self.codes if c.code in used):
            if code.message_id is not None:
                m = self.by_id[code.message_id]
            else:  # shared: the campaign's message to this buyer
                m = next(
                    (
                        m
                        for m in self.messages
                        if m.campaign_id == code.campaign_id and m.subscriber_id == buyer
                    ),
                    None,
                )
            if m is None:  # typed by someone we never texted: the campaign, no message
                found.append((EPOCH, 0, Credit(buyer, "discount", None, code.campaign_id)))
            else:
                found.append((m.sent_at or m.due_at, m.id, self._credit("discount", m, buyer)))
        if found:  # several of our codes: the latest message is the last touch
            return max(found, key=lambda f: (f[0], f[1]))[2]
        if buyer is None:
            return Credit(None)
        since = order.ordered_at - WINDOW
        clicks = [
            c
            for c in self.clicks
            if c.subscriber_id == buyer
            and not c.is_bot
            and since < c.clicked_at <= order.ordered_at
        ]
        if clicks:
            last = max(clicks, key=lambda c: (c.clicked_at, c.id))
            return self._credit("click", self.by_id[last.message_id], buyer)
        if ref is not None and ref.subscriber_id == buyer:
            m = self.by_id[ref.message_id]
            if m.sent_at is not None and since < m.sent_at <= order.ordered_at:
                return self._credit("click", m, buyer)  # arrived by our link, click unrecorded
        seen = [
            m
            for m in self.messages
            if m.subscriber_id == buyer
            and m.kind in MARKETING
            and m.status == "delivered"
            and order.ordered_at - VIEW_WINDOW < m.delivered_at <= order.ordered_at
        ]
        if seen:
            return self._credit("view", max(seen, key=lambda m: (m.delivered_at, m.id)), buyer)
        return Credit(buyer)

    def reason(self, order: Order) -> str | None:
        return self.credit[order.id].reason

    def of_campaign(self, campaign_id: int) -> list[Order]:
        return [o for o in self.orders if self.credit[o.id].campaign_id == campaign_id]

    def of_flow(self, flow_id: int) -> list[Order]:
        return [o for o in self.orders if self.credit[o.id].flow_id == flow_id]

    def of_message(self, message_id: int) -> list[Order]:
        return [o for o in self.orders if self.credit[o.id].message_id == message_id]

    @staticmethod
    def held(m: Message) -> bool:
        return m.status == "skipped" and m.skip_reason == "holdout"

    def opt_outs(self, scope: set[int]) -> int:
        count = 0
        for event in self.events:
            before = [
                m
                for m in self.messages
                if m.subscriber_id == event.subscriber_id
                and m.kind in MARKETING
                and m.sent_at is not None
                and m.sent_at <= event.occurred_at
            ]
            if not before:
                continue
            last = max(before, key=lambda m: m.sent_at)
            if last.id in scope and event.occurred_at < last.sent_at + timedelta(hours=48):
                count += 1
        return count

    def summary(self, msgs: list[Message], orders: list[Order]) -> dict[str, Any]:
        ids = {m.id for m in msgs}
        sent = sum(m.sent_at is not None for m in msgs)
        delivered = sum(m.status == "delivered" for m in msgs)
        failed = [m for m in msgs if m.status in ("failed", "undelivered")]
        human = [c for c in self.clicks if c.message_id in ids and not c.is_bot]
        bots = [c for c in self.clicks if c.message_id in ids and c.is_bot]
        counted = [o for o in orders if not o.test and o.cancelled_at is None and self.reason(o)]
        by_reason = {
            r: [o for o in counted if self.reason(o) == r] for r in ("discount", "click", "view")
        }
        revenue = sum((self.net[o.id] for o in counted), Decimal("0"))
        # Billed: accepted by the provider and not failed afterwards.
        billed = [m for m in msgs if m.sent_at is not None and m.status != "failed"]
        spend = sum((m.price or Decimal("0") for m in billed), Decimal("0"))
        unique = len({c.subscriber_id for c in human})
        opt_outs = self.opt_outs(ids)
        return {
            "recipients": sum(not self.held(m) for m in msgs),
            "held_out": sum(self.held(m) for m in msgs),
            "skipped": sum(m.status == "skipped" and not self.held(m) for m in msgs),
            "pending": sum(m.status in ("pending", "sending") for m in msgs),
            "sent": sent,
            "delivered": delivered,
            "failed": len(failed),
            "failed_by_error_code": dict(Counter(str(m.error_code) for m in failed)),
            "delivery_rate": rate(delivered, sent),
            "segments": sum(m.segments or 0 for m in billed),
            "clicks": len(human),
            "bot_clicks": len(bots),
            "unique_clicks": unique,
            "ctr": rate(unique, delivered),
            "orders": len(counted),
            "orders_by_reason": {r: len(v) for r, v in by_reason.items()},
            "revenue": q(revenue),
            "revenue_by_reason": {
                r: q(sum((self.net[o.id] for o in v), Decimal("0"))) for r, v in by_reason.items()
            },
            "aov": rate(revenue, len(counted), CENT),
            "conversion_rate": rate(len(counted), delivered),
            "spend": q(spend),
            "roi": rate(revenue - spend, spend),
            "roi_formula": "roi = (revenue - spend) / spend",
            "opt_outs": opt_outs,
            "opt_out_rate": rate(opt_outs, delivered),
        }

    def revenue_after(self, subscriber_id: int, start: datetime) -> Decimal:
        return sum(
            (
                self.net[o.id]
                for o in self.orders
                if self.credit[o.id].subscriber_id == subscriber_id
                and not o.test
                and start <= o.ordered_at < start + WINDOW
            ),
            Decimal("0"),
        )

    @staticmethod
    def welch(treated: list[Decimal], held: list[Decimal]) -> dict[str, Any]:
        def side(values: list[Decimal]) -> dict[str, Any]:
            return {
                "recipients": len(values),
                "revenue": q(sum(values, Decimal("0"))),
                "revenue_per_recipient": q(statistics.mean(values)) if values else None,
            }

        diff = statistics.mean(treated) - statistics.mean(held)
        v1, v0 = statistics.variance(treated), statistics.variance(held)
        a, b = v1 / len(treated), v0 / len(held)
        df = (a + b) ** 2 / (a * a / (len(treated) - 1) + b * b / (len(held) - 1))
        half = Decimal(repr(t_quantile(0.975, float(df)))) * (a + b).sqrt()
        return {
            "treated": side(treated),
            "held_out": side(held),
            "lift_per_recipient": q(diff),
            "incremental_revenue": q(diff * len(treated)),
            "ci95_per_recipient": {"low": q(diff - half), "high": q(diff + half)},
            "ci95_incremental_revenue": {
                "low": q((diff - half) * len(treated)),
                "high": q((diff + half) * len(treated)),
            },
        }


STAT_KEYS = (
    "recipients",
    "held_out",
    "skipped",
    "pending",
    "sent",
    "delivered",
    "failed",
    "failed_by_error_code",
    "delivery_rate",
    "segments",
    "clicks",
    "bot_clicks",
    "unique_clicks",
    "ctr",
    "orders",
    "orders_by_reason",
    "revenue",
    "revenue_by_reason",
    "aov",
    "conversion_rate",
    "spend",
    "roi",
    "roi_formula",
    "opt_outs",
    "opt_out_rate",
)


def only_stats(report: dict[str, Any]) -> dict[str, Any]:
    return {k: report[k] for k in STAT_KEYS}


# --------------------------------------------------------------------------- the checks
def test_orders_are_ingested_in_the_shop_currency(seeded: dict[str, Any]) -> None:
    """Every order's total and refunds are the USD amounts the seed chose, whether the buyer
    paid in dollars or in euros; net revenue is nothing for test and cancelled orders."""
    raw = Raw(seeded["shop"])
    amounts = seeded["amounts"]
    assert {o.shopify_order_id for o in raw.orders} == set(amounts)
    for o in raw.orders:
        total, refunded = amounts[o.shopify_order_id]
        assert (o.currency, o.total, o.refunded) == ("USD", total, refunded), o.name
        gone = o.test or o.cancelled_at is not None
        assert o.net_total == (Decimal("0.00") if gone else max(total - refunded, CENT * 0))
        assert raw.net[o.id] == o.net_total
    assert any(o.presentment_currency == "EUR" and o.refunded > 0 for o in raw.orders)


def test_attribution_matches_the_rules_applied_to_the_raw_rows(seeded: dict[str, Any]) -> None:
    """Each order's buyer, reason, message, campaign and flow equal what the rules give when
    applied here to the codes, links, clicks and deliveries — and the seed has every case."""
    raw = Raw(seeded["shop"])
    for o in raw.orders:
        credit = raw.credit[o.id]
        assert (
            o.subscriber_id,
            o.attribution_reason,
            o.message_id,
            o.campaign_id,
            o.flow_id,
        ) == (
            credit.subscriber_id,
            credit.reason,
            credit.message_id,
            credit.campaign_id,
            credit.flow_id,
        ), o.name
    reasons = Counter(c.reason for c in raw.credit.values())
    assert all(reasons[r] > 0 for r in ("discount", "click", "view")) and reasons[None] > 0
    by_order = {o.id: o for o in raw.orders}
    # A shared code typed by a stranger credits the campaign; one typed by a recipient, their
    # message; a flow earned something; a ref alone named a buyer; a merchant code did nothing.
    assert any(
        c.reason == "discount" and c.message_id is None and c.campaign_id == seeded["winter"]
        for c in raw.credit.values()
    )
    assert any(
        c.reason == "discount" and c.message_id and c.campaign_id == seeded["winter"]
        for c in raw.credit.values()
    )
    assert any(c.flow_id == seeded["flow"] for c in raw.credit.values())
    assert any(
        by_order[i].phone is None and c.subscriber_id is not None for i, c in raw.credit.items()
    )
    assert any(
        [d["code"] for d in by_order[i].discount_codes] == ["FREESHIP"] and c.reason != "discount"
        for i, c in raw.credit.items()
    )


def test_campaign_stats_match_the_raw_rows(seeded: dict[str, Any]) -> None:
    """Every campaign figure, and the holdout comparison, equal the Python recount."""
    raw = Raw(seeded["shop"])
    cid = seeded["campaign"]
    msgs = [m for m in raw.messages if m.campaign_id == cid]
    orders = raw.of_campaign(cid)
    report = stats.campaign_stats(seeded["shop"], cid)
    expected = raw.summary(msgs, orders)
    assert only_stats(report) == expected
    # The seed must exercise what it checks.
    assert expected["orders_by_reason"]["discount"] > 0 and expected["clicks"] > 0
    assert expected["held_out"] > 0 and expected["opt_outs"] > 0 and expected["bot_clicks"] > 0

    treated = [
        raw.revenue_after(m.subscriber_id, m.due_at)
        for m in msgs
        if m.status in ("sent", "delivered") and m.sent_at is not None
    ]
    held = [raw.revenue_after(m.subscriber_id, m.due_at) for m in msgs if raw.held(m)]
    holdout = report["holdout"]
    assert holdout["enabled"] is True and holdout["window_days"] == 5
    assert {
        k: holdout[k]
        for k in (
            "treated",
            "held_out",
            "lift_per_recipient",
            "incremental_revenue",
            "ci95_per_recipient",
            "ci95_incremental_revenue",
        )
    } == raw.welch(treated, held)


def test_variant_stats_match(seeded: dict[str, Any]) -> None:
    """Per A/B variant, orders reached through their message."""
    raw = Raw(seeded["shop"])
    cid = seeded["campaign"]
    rows = stats.variant_stats(seeded["shop"], cid)
    by_variant = {r["variant_id"]: r for r in rows}
    for variant_id, label in seeded["variants"].items():
        msgs = [m for m in raw.messages if m.campaign_id == cid and m.variant_id == variant_id]
        orders = [
            o
            for o in raw.of_campaign(cid)
            if raw.credit[o.id].message_id is not None
            and raw.by_id[raw.credit[o.id].message_id].variant_id == variant_id
        ]
        assert by_variant[variant_id]["label"] == label
        assert only_stats(by_variant[variant_id]) == raw.summary(msgs, orders)
    assert (
        sum(r["recipients"] for r in rows)
        == stats.campaign_stats(seeded["shop"], cid)["recipients"]
    )


def test_flow_stats_match(seeded: dict[str, Any]) -> None:
    """A flow, each of its steps, its runs and its holdout (by run)."""
    raw = Raw(seeded["shop"])
    fid = seeded["flow"]
    runs = {rid: r for rid, r in raw.runs.items() if r.flow_id == fid}
    msgs = [m for m in raw.messages if m.flow_run_id in runs]
    orders = raw.of_flow(fid)
    report = stats.flow_stats(seeded["shop"], fid)
    assert only_stats(report) == raw.summary(msgs, orders)
    assert report["runs"] == {
        "total": len(runs),
        "by_status": dict(Counter(r.status for r in runs.values())),
    }
    for step in report["steps"]:
        step_msgs = [m for m in msgs if m.flow_step == step["step"]]
        step_orders = [
            o for o in orders if raw.by_id[raw.credit[o.id].message_id].flow_step == step["step"]
        ]
        assert only_stats(step) == raw.summary(step_msgs, step_orders)
    texted = {m.flow_run_id for m in msgs if m.status in ("sent", "delivered")}
    treated = [
        raw.revenue_after(r.subscriber_id, r.created_at)
        for r in runs.values()
        if not r.held_out and r.id in texted
    ]
    held = [raw.revenue_after(r.subscriber_id, r.created_at) for r in runs.values() if r.held_out]
    holdout = report["holdout"]
    expected = raw.welch(treated, held)
    assert {k: holdout[k] for k in expected} == expected


def test_shop_stats_and_series_match(seeded: dict[str, Any]) -> None:
    """The shop over a week of local days: totals, by source, growth; and the daily series."""
    raw = Raw(seeded["shop"])
    shop = db.session.get(Shop, seeded["shop"])
    first, last = datetime(2026, 10, 3).date(), datetime(2026, 10, 9).date()
    since, until = local_bounds(first, last, ZONE)
    report = stats.shop_stats(shop.id, since, until)
    msgs = [m for m in raw.messages if m.sent_at is not None and since <= m.sent_at < until]
    orders = [o for o in raw.orders if since <= o.ordered_at < until]
    assert only_stats(report) == raw.summary(msgs, orders)
    campaigns = raw.summary(
        [m for m in msgs if m.campaign_id is not None],
        [o for o in orders if raw.credit[o.id].campaign_id is not None],
    )
    assert only_stats(report["by_source"]["campaigns"]) == campaigns
    assert report["subscribers"]["unsubscribes"] == sum(
        since <= e.occurred_at < until for e in raw.events
    )

    series = daily_series(shop, first, last)
    assert [p["date"] for p in series] == [
        (first + timedelta(days=i)).isoformat() for i in range(7)
    ]

    def day(moment: datetime) -> str:
        return moment.astimezone(ZONE).date().isoformat()

    counted = [
        o
        for o in raw.orders
        if raw.reason(o) and not o.test and o.cancelled_at is None and since <= o.ordered_at < until
    ]
    for point in series:
        d = point["date"]
        assert point["sent"] == sum(day(m.sent_at) == d for m in msgs)
        assert point["clicks"] == sum(
            not c.is_bot and since <= c.clicked_at < until and day(c.clicked_at) == d
            for c in raw.clicks
        )
        assert point["orders"] == sum(day(o.ordered_at) == d for o in counted)
        assert point["revenue"] == q(
            sum((raw.net[o.id] for o in counted if day(o.ordered_at) == d), Decimal("0"))
        )
        assert point["unsubscribes"] == sum(
            day(e.occurred_at) == d and since <= e.occurred_at < until for e in raw.events
        )
    assert sum(p["sent"] for p in series) == len(msgs)


def test_campaign_series_and_exports_match(seeded: dict[str, Any], monkeypatch) -> None:
    """A campaign's series, its results CSV (read in pages of 7) and the attributed orders
    CSV."""
    monkeypatch.setattr(exports, "BATCH", 7)
    raw = Raw(seeded["shop"])
    shop = db.session.get(Shop, seeded["shop"])
    cid = seeded["campaign"]
    series = daily_series(
        shop, datetime(2026, 10, 4).date(), datetime(2026, 10, 6).date(), campaign_id=cid
    )
    assert sum(p["sent"] for p in series) == sum(
        m.campaign_id == cid and m.sent_at is not None for m in raw.messages
    )
    assert all(p["new_subscribers"] is None for p in series)

    lines = list(csv.DictReader(io.StringIO("".join(campaign_results_csv(shop.id, cid)))))
    msgs = {m.id: m for m in raw.messages if m.campaign_id == cid}
    assert len(lines) == len(msgs) > 7
    assert sorted(int(line["message_id"]) for line in lines) == sorted(msgs)
    for line in lines:
        m = msgs[int(line["message_id"])]
        assert line["status"] == m.status
        assert int(line["clicks"]) == sum(c.message_id == m.id and not c.is_bot for c in raw.clicks)
        mine = [o for o in raw.of_message(m.id) if not o.test and o.cancelled_at is None]
        assert (int(line["orders"]), line["revenue"]) == (
            len(mine),
            q(sum((raw.net[o.id] for o in mine), Decimal("0"))),
        )

    since, until = local_bounds(datetime(2026, 10, 1).date(), datetime(2026, 10, 31).date(), ZONE)
    exported = list(
        csv.DictReader(
            io.StringIO("".join(attributed_orders_csv(shop.id, since, until, campaign_id=cid)))
        )
    )
    expected = sorted(o.shopify_order_id for o in raw.of_campaign(cid))
    assert sorted(int(r["shopify_order_id"]) for r in exported) == expected
    for r in exported:
        order = next(o for o in raw.orders if o.shopify_order_id == int(r["shopify_order_id"]))
        assert r["net_revenue"] == q(raw.net[order.id])
        assert r["campaign"] == "Fall sale" and r["reason"] == raw.reason(order)


def test_t_quantiles_match_the_tables() -> None:
    """t(0.975, ν) against printed tables (and the normal limit)."""
    for df, expected in (
        (1, 12.706),
        (2, 4.303),
        (5, 2.571),
        (10, 2.228),
        (30, 2.042),
        (120, 1.980),
        (1e7, 1.960),
    ):
        assert abs(t_quantile(0.975, df) - expected) < 5e-4
    # Welch's ν is fractional: 2.333040 by Simpson integration of the t density.
    assert abs(t_quantile(0.975, 7.5) - 2.333040) < 1e-6


def test_clicks_exact_when_campaign_ids_interleave(shop: Shop) -> None:
    """Two campaigns whose messages interleave (ids not one range): the click figures still
    count only this campaign's clicks (the report joins instead of using the id range)."""
    rnd = random.Random(5)
    first, second = campaign(shop, "First"), campaign(shop, "Second")
    sent = at("2026-10-05T14:00:00+00:00")
    rows = {first.id: [], second.id: []}
    for i in range(30):
        sub = subscriber(shop, f"+1415555{i:04d}")
        for owner in (first, second):
            msg = message(shop, sub, sent=sent, campaign_id=owner.id)
            row = link(shop, msg, f"I{msg.id:06d}{owner.id}xxxxxx")
            for _ in range(rnd.randint(0, 2)):
                rows[owner.id].append(
                    click(shop, row, sent + timedelta(hours=1), bot=rnd.random() < 0.3)
                )
    db.session.commit()
    for owner in (first, second):
        report = stats.campaign_stats(shop.id, owner.id)
        mine = rows[owner.id]
        assert (report["clicks"], report["bot_clicks"], report["unique_clicks"]) == (
            sum(not c.is_bot for c in mine),
            sum(c.is_bot for c in mine),
            len({c.subscriber_id for c in mine if not c.is_bot}),
        )
