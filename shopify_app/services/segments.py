"""Segments: a rule tree (AND/OR groups, nestable) validated here and compiled to one SQL WHERE.

A tree is either a group ``{"op": "and" | "or", "rules": [node, ...]}``, a rule
``{"field": ..., "operator": ..., "value": ...}``, or a built-in ``{"builtin": name}``. An
empty AND group matches everyone. The fields and their operators:

- ``subscribed_at``: ``before`` / ``after`` a date (a day starts at midnight in the shop's time
  zone) or an ISO datetime with offset; ``within_days`` N.
- ``source``: ``in`` [checkout, widget, keyword, import, admin, shopify_sync, carrier].
- ``country``: ``in`` [ISO 3166 alpha-2 codes].
- ``orders_count``: ``=``, ``>``, ``<``, ``>=``, ``<=`` a whole number.
- ``total_spent``: the same operators, an amount in the shop's currency.
- ``last_order``: ``within_days`` N (ordered in the last N days); ``not_within_days`` N (no
  order in the last N days, never-purchased subscribers included).
- ``clicked``: ``within_days`` N (a human click on any of the shop's links; bot previews
  do not count).
- ``campaign``: ``received`` / ``not_received`` a campaign id (received: the text was handed
  to the carrier and did not fail — status sent or delivered; held-out recipients did not
  receive it).
- ``checkout_abandoned``: ``within_days`` N (a checkout started in the last N days, more than
  an hour ago, that never completed).

Built-ins are rule trees themselves (``BUILTINS``). Exclusions are applied apart from the tree:
``{"messaged_within_hours": N}`` leaves out anyone texted a campaign or flow message in the
last N hours.

Whatever the tree says, the audience is restricted to the shop and to subscribers who may be
texted marketing now: status ``subscribed``, a phone number (not redacted), not flagged
invalid. Relations (clicks, messages, checkouts) are tested with EXISTS subqueries served by
the indexes named next to them; counters (orders, spend, last order) are the subscriber's
own columns, kept by the order intake.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import ColumnElement, and_, exists, false, func, not_, or_, select, text, true

from shopify_app.extensions import db
from shopify_app.models import Checkout, Click, Message, Subscriber, utcnow
from shopify_app.models.subscriber import CONSENT_SOURCES

MAX_DEPTH = 6
MAX_RULES = 100
MAX_DAYS = 3650
MAX_HOURS = 24 * 90
ABANDONED_AFTER = timedelta(hours=1)
COMPARISONS = ("=", ">", "<", ">=", "<=")
RECEIVED_STATUSES = ("sent", "delivered")
MARKETING_KINDS = ("campaign", "flow")

# field -> operator -> kind of value
OPERATORS: dict[str, dict[str, str]] = {
    "subscribed_at": {"before": "moment", "after": "moment", "within_days": "days"},
    "source": {"in": "sources"},
    "country": {"in": "countries"},
    "orders_count": {op: "count" for op in COMPARISONS},
    "total_spent": {op: "amount" for op in COMPARISONS},
    "last_order": {"within_days": "days", "not_within_days": "days"},
    "clicked": {"within_days": "days"},
    "campaign": {"received": "campaign", "not_received": "campaign"},
    "checkout_abandoned": {"within_days": "days"},
}


@dataclass(frozen=True)
class Builtin:
    name: str
    title: str
    description: str
    rules: dict[str, Any]


def _rule(field: str, operator: str, value: Any) -> dict[str, Any]:
    return {"field": field, "operator": operator, "value": value}


BUILTINS: dict[str, Builtin] = {
    b.name: b
    for b in (
        Builtin(
            "all", "All subscribers", "Everyone subscribed to texts.", {"op": "and", "rules": []}
        ),
        Builtin(
            "past_buyers",
            "Past buyers",
            "Placed at least one order (orders_count >= 1).",
            {"op": "and", "rules": [_rule("orders_count", ">=", 1)]},
        ),
        Builtin(
            "never_purchased",
            "Never purchased",
            "Has no order yet (orders_count = 0).",
            {"op": "and", "rules": [_rule("orders_count", "=", 0)]},
        ),
        Builtin(
            "recently_active",
            "Recently active",
            "Subscribed, clicked a link or placed an order in the last 30 days.",
            {
                "op": "or",
                "rules": [
                    _rule("subscribed_at", "within_days", 30),
                    _rule("clicked", "within_days", 30),
                    _rule("last_order", "within_days", 30),
                ],
            },
        ),
        Builtin(
            "engaged",
            "Engaged",
            "Clicked a link in a text in the last 90 days.",
            {"op": "and", "rules": [_rule("clicked", "within_days", 90)]},
        ),
    )
}


class SegmentError(ValueError):
    """A rule tree or exclusion that cannot be compiled; `path` points at the bad node."""

    def __init__(self, message: str, path: str = "rules") -> None:
        super().__init__(f"{path}: {message}")
        self.message = message
        self.path = path


# --- validation -----------------------------------------------------------------------------


def validate(tree: Any) -> dict[str, Any]:
    """The tree, normalised (values parsed and canonical), or SegmentError naming the node."""
    counter = [0]
    return _validate_node(tree, "rules", 0, counter)


def _validate_node(node: Any, path: str, depth: int, counter: list[int]) -> dict[str, Any]:
    if not isinstance(node, Mapping):
        raise SegmentError("must be an object (a group, a rule or a built-in)", path)
    counter[0] += 1
    if counter[0] > MAX_RULES:
        raise SegmentError(f"at most {MAX_RULES} rules and groups", path)
    if "builtin" in node:
        name = node["builtin"]
        if name not in BUILTINS:
            raise SegmentError(
                f"unknown built-in segment {name!r}; one of {', '.join(BUILTINS)}", path
            )
        return {"builtin": name}
    if "op" in node or "rules" in node:
        if depth >= MAX_DEPTH:
            raise SegmentError(f"groups nest at most {MAX_DEPTH} deep", path)
        op = str(node.get("op", "and")).lower()
        if op not in ("and", "or"):
            raise SegmentError(f"unknown group operator {node.get('op')!r}; use and / or", path)
        rules = node.get("rules", [])
        if not isinstance(rules, list):
            raise SegmentError("rules must be a list", path)
        return {
            "op": op,
            "rules": [
                _validate_node(child, f"{path}.rules[{i}]", depth + 1, counter)
                for i, child in enumerate(rules)
            ],
        }
    if "field" in node:
        return _validate_rule(node, path)
    raise SegmentError("needs 'op' and 'rules' (a group), 'field' (a rule) or 'builtin'", path)


def _validate_rule(node: Mapping[str, Any], path: str) -> dict[str, Any]:
    field = node.get("field")
    if field not in OPERATORS:
        raise SegmentError(f"unknown field {field!r}; one of {', '.join(OPERATORS)}", path)
    operator = node.get("operator")
    allowed = OPERATORS[field]
    if operator not in allowed:
        raise SegmentError(
            f"unknown operator {operator!r} for {field}; one of {', '.join(allowed)}", path
        )
    value = _parse_value(allowed[operator], node.get("value"), f"{path}.value")
    return {"field": field, "operator": operator, "value": value}


def _whole(value: Any, path: str, *, low: int, high: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise SegmentError(f"{what} must be a whole number", path)
    try:
        number = int(value)
    except ValueError:
        raise SegmentError(f"{what} must be a whole number, not {value!r}", path) from None
    if not low <= number <= high:
        raise SegmentError(f"{what} must be between {low} and {high}", path)
    return number


def _parse_value(kind: str, value: Any, path: str) -> Any:
    if kind == "days":
        return _whole(value, path, low=1, high=MAX_DAYS, what="the number of days")
    if kind == "count":
        return _whole(value, path, low=0, high=10**9, what="the order count")
    if kind == "campaign":
        return _whole(value, path, low=1, high=2**62, what="the campaign id")
    if kind == "amount":
        if isinstance(value, bool) or not isinstance(value, int | str | float | Decimal):
            raise SegmentError("the amount must be a number", path)
        try:
            amount = Decimal(str(value))
        except InvalidOperation:
            raise SegmentError(f"the amount must be a number, not {value!r}", path) from None
        if not amount.is_finite() or amount < 0:
            raise SegmentError("the amount must be a number of at least 0", path)
        return str(amount.quantize(Decimal("0.01")))
    if kind in ("sources", "countries"):
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            raise SegmentError("must be a non-empty list of strings", path)
        if kind == "sources":
            unknown = [v for v in value if v not in CONSENT_SOURCES]
            if unknown:
                raise SegmentError(
                    f"unknown source {unknown[0]!r}; one of {', '.join(CONSENT_SOURCES)}", path
                )
            return sorted(set(value))
        codes = sorted({v.strip().upper() for v in value})
        bad = [c for c in codes if len(c) != 2 or not c.isalpha() or not c.isascii()]
        if bad:
            raise SegmentError(f"{bad[0]!r} is not a two-letter country code", path)
        return codes
    if kind == "moment":
        if not isinstance(value, str):
            raise SegmentError("must be a date (YYYY-MM-DD) or an ISO datetime with offset", path)
        try:
            if len(value) == 10:
                return date.fromisoformat(value).isoformat()
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise SegmentError(
                f"{value!r} is not a date (YYYY-MM-DD) or an ISO datetime", path
            ) from None
        if moment.tzinfo is None:
            raise SegmentError("a datetime needs its UTC offset (or give a date)", path)
        return moment.astimezone(UTC).isoformat()
    raise AssertionError(kind)


def validate_exclusions(exclusions: Any) -> dict[str, Any]:
    """``{"messaged_within_hours": N}`` (or nothing), normalised."""
    if exclusions in (None, {}):
        return {}
    if not isinstance(exclusions, Mapping):
        raise SegmentError("must be an object", "exclusions")
    unknown = set(exclusions) - {"messaged_within_hours"}
    if unknown:
        raise SegmentError(
            f"unknown exclusion {sorted(unknown)[0]!r}; only messaged_within_hours", "exclusions"
        )
    hours = exclusions.get("messaged_within_hours")
    if hours in (None, 0):
        return {}
    return {
        "messaged_within_hours": _whole(
            hours,
            "exclusions.messaged_within_hours",
            low=1,
            high=MAX_HOURS,
            what="the number of hours",
        )
    }


# --- compilation ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Context:
    """What a compiled condition depends on besides the tree: the shop, its zone and `now`."""

    shop_id: int
    zone: str
    now: datetime

    def day_start(self, day: date) -> datetime:
        try:
            tz = ZoneInfo(self.zone or "UTC")
        except ZoneInfoNotFoundError:
            tz = ZoneInfo("UTC")
        return datetime.combine(day, time(), tzinfo=tz).astimezone(UTC)


def sendable(shop_id: int) -> ColumnElement[bool]:
    """Who may receive marketing texts at all (ix_subscriber_shop_status)."""
    return and_(
        Subscriber.shop_id == shop_id,
        Subscriber.status == "subscribed",
        Subscriber.phone.is_not(None),
        Subscriber.phone_invalid.is_(False),
    )


def condition(tree: dict[str, Any], ctx: Context) -> ColumnElement[bool]:
    """The tree as a WHERE condition on Subscriber (validate it first)."""
    if "builtin" in tree:
        return condition(BUILTINS[tree["builtin"]].rules, ctx)
    if "field" in tree:
        return _rule_condition(tree["field"], tree["operator"], tree["value"], ctx)
    parts = [condition(child, ctx) for child in tree["rules"]]
    if not parts:
        return true() if tree["op"] == "and" else false()
    return and_(*parts) if tree["op"] == "and" else or_(*parts)


def _since(ctx: Context, days: int) -> datetime:
    return ctx.now - timedelta(days=days)


def _moment(value: str, ctx: Context) -> datetime:
    if len(value) == 10:
        return ctx.day_start(date.fromisoformat(value))
    return datetime.fromisoformat(value)


def _compare(column: Any, operator: str, value: Any) -> ColumnElement[bool]:
    return {
        "=": column == value,
        ">": column > value,
        "<": column < value,
        ">=": column >= value,
        "<=": column <= value,
    }[operator]


def _rule_condition(field: str, operator: str, value: Any, ctx: Context) -> ColumnElement[bool]:
    if field == "subscribed_at":
        column = Subscriber.subscribed_at
        if operator == "within_days":
            return column >= _since(ctx, value)
        moment = _moment(value, ctx)
        return column < moment if operator == "before" else column >= moment
    if field == "source":
        return Subscriber.source.in_(value)
    if field == "country":
        return Subscriber.country.in_(value)
    if field == "orders_count":
        return _compare(Subscriber.orders_count, operator, value)
    if field == "total_spent":
        return _compare(Subscriber.total_spent, operator, Decimal(value))
    if field == "last_order":
        recent = Subscriber.last_order_at >= _since(ctx, value)
        if operator == "within_days":
            return recent
        return or_(
            Subscriber.last_order_at.is_(None), Subscriber.last_order_at < _since(ctx, value)
        )
    if field == "clicked":
        # ix_click_subscriber_time (subscriber_id, clicked_at)
        return exists().where(
            Click.subscriber_id == Subscriber.id,
            Click.shop_id == ctx.shop_id,
            Click.clicked_at >= _since(ctx, value),
            Click.is_bot.is_(False),
        )
    if field == "campaign":
        # uq (campaign_id, subscriber_id)
        received = exists().where(
            Message.campaign_id == value,
            Message.subscriber_id == Subscriber.id,
            Message.shop_id == ctx.shop_id,
            Message.status.in_(RECEIVED_STATUSES),
        )
        return received if operator == "received" else not_(received)
    if field == "checkout_abandoned":
        # ix_checkout_subscriber_id: a subscriber has few checkouts
        return exists().where(
            Checkout.subscriber_id == Subscriber.id,
            Checkout.shop_id == ctx.shop_id,
            Checkout.completed_at.is_(None),
            Checkout.created_at >= _since(ctx, value),
            Checkout.created_at <= ctx.now - ABANDONED_AFTER,
        )
    raise AssertionError(field)


def exclusion_condition(exclusions: dict[str, Any], ctx: Context) -> ColumnElement[bool]:
    hours = exclusions.get("messaged_within_hours")
    if not hours:
        return true()
    # ix_message_subscriber_sent (subscriber_id, sent_at)
    return not_(
        exists().where(
            Message.subscriber_id == Subscriber.id,
            Message.shop_id == ctx.shop_id,
            Message.kind.in_(MARKETING_KINDS),
            Message.sent_at >= ctx.now - timedelta(hours=hours),
        )
    )


def audience_condition(
    tree: dict[str, Any], exclusions: dict[str, Any], ctx: Context
) -> ColumnElement[bool]:
    """Sendable subscribers of the shop matching the tree, minus the exclusions."""
    return and_(sendable(ctx.shop_id), condition(tree, ctx), exclusion_condition(exclusions, ctx))


def count(
    shop_id: int,
    tree: Any,
    exclusions: Any = None,
    *,
    zone: str = "UTC",
    now: datetime | None = None,
) -> int:
    """How many sendable subscribers the tree (validated here) selects, after exclusions."""
    ctx = Context(shop_id, zone, now or utcnow())
    where = audience_condition(validate(tree), validate_exclusions(exclusions), ctx)
    without_jit()
    return int(db.session.scalar(select(func.count()).select_from(Subscriber).where(where)) or 0)


def without_jit() -> None:
    """Turn PostgreSQL's JIT off for the rest of this transaction. A big shop's audience query
    has a cost estimate that triggers it, and compiling takes far longer than running: 1.8 s
    against 0.1 s for a 5-rule segment over 100 000 subscribers."""
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(text("SET LOCAL jit = off"))


def describe_fields() -> list[dict[str, Any]]:
    """Fields with their operators and value kinds, for the segment builder."""
    return [
        {"field": field, "operators": [{"operator": op, "value": kind} for op, kind in ops.items()]}
        for field, ops in OPERATORS.items()
    ]
