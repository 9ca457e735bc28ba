"""Subscribers API: search with keyset paging, detail with the consent ledger and messages,
manual unsubscribe, counts by status and the daily growth series for the dashboard chart."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate
from sqlalchemy import func, or_

from shopify_app.api._common import (
    ApiError,
    PageArgsSchema,
    PageMetaSchema,
    current_shop,
    keyset_page,
)
from shopify_app.extensions import db
from shopify_app.models import ConsentEvent, Message, Shop, Subscriber
from shopify_app.models.subscriber import CONSENT_SOURCES, SUBSCRIBER_STATUSES
from shopify_app.services import consent
from shopify_app.services.subscribers import unsubscribe

blp = Blueprint(
    "subscribers",
    __name__,
    url_prefix="/api/subscribers",
    description="SMS subscribers, their consent ledger and growth.",
)

DETAIL_MESSAGES = 100
MAX_GROWTH_DAYS = 366


class SubscriberSchema(Schema):
    id = fields.Integer()
    phone = fields.String(allow_none=True)
    email = fields.String(allow_none=True)
    first_name = fields.String(allow_none=True)
    last_name = fields.String(allow_none=True)
    customer_id = fields.Integer(allow_none=True)
    country = fields.String(allow_none=True)
    region = fields.String(allow_none=True)
    timezone = fields.String(allow_none=True)
    status = fields.String()
    source = fields.String()
    subscribed_at = fields.DateTime(allow_none=True)
    unsubscribed_at = fields.DateTime(allow_none=True)
    consent_updated_at = fields.DateTime(allow_none=True)
    orders_count = fields.Integer()
    total_spent = fields.Decimal(as_string=True)
    last_order_at = fields.DateTime(allow_none=True)
    last_click_at = fields.DateTime(allow_none=True)
    last_message_at = fields.DateTime(allow_none=True)
    messages_received = fields.Integer()
    redacted_at = fields.DateTime(allow_none=True)
    created_at = fields.DateTime()


class ConsentEventSchema(Schema):
    id = fields.Integer()
    kind = fields.String()
    source = fields.String()
    occurred_at = fields.DateTime()
    ip = fields.String(allow_none=True)
    user_agent = fields.String(allow_none=True)
    page_url = fields.String(allow_none=True)
    consent_text = fields.String(allow_none=True)
    evidence_id = fields.String(allow_none=True)
    opt_in_level = fields.String(allow_none=True)
    note = fields.String(allow_none=True)
    synced_at = fields.DateTime(allow_none=True)


class MessageSummarySchema(Schema):
    id = fields.Integer()
    kind = fields.String()
    status = fields.String()
    skip_reason = fields.String(allow_none=True)
    body = fields.String(allow_none=True)
    campaign_id = fields.Integer(allow_none=True)
    flow_run_id = fields.Integer(allow_none=True)
    due_at = fields.DateTime()
    sent_at = fields.DateTime(allow_none=True)
    delivered_at = fields.DateTime(allow_none=True)
    error_code = fields.Integer(allow_none=True)


class SubscriberDetailSchema(SubscriberSchema):
    consent_events = fields.List(fields.Nested(ConsentEventSchema))
    messages = fields.List(fields.Nested(MessageSummarySchema))


class SubscriberPageSchema(PageMetaSchema):
    items = fields.List(fields.Nested(SubscriberSchema))


class SubscriberQuerySchema(PageArgsSchema):
    phone = fields.String(load_default=None, metadata={"description": "digits anywhere in it"})
    email = fields.String(load_default=None, metadata={"description": "part of the address"})
    name = fields.String(load_default=None, metadata={"description": "part of first/last name"})
    status = fields.String(load_default=None, validate=validate.OneOf(SUBSCRIBER_STATUSES))
    source = fields.String(load_default=None, validate=validate.OneOf(CONSENT_SOURCES))
    created_from = fields.Date(load_default=None, metadata={"description": "shop's time zone"})
    created_to = fields.Date(load_default=None, metadata={"description": "inclusive"})


class CountsSchema(Schema):
    pending = fields.Integer()
    subscribed = fields.Integer()
    unsubscribed = fields.Integer()
    total = fields.Integer()


class GrowthArgsSchema(Schema):
    days = fields.Integer(load_default=30, validate=validate.Range(1, MAX_GROWTH_DAYS))


class GrowthDaySchema(Schema):
    date = fields.Date()
    new = fields.Integer()
    confirmed = fields.Integer()
    unsubscribed = fields.Integer()


class GrowthSchema(Schema):
    timezone = fields.String()
    days = fields.List(fields.Nested(GrowthDaySchema))


def _zone(shop: Shop) -> ZoneInfo:
    try:
        return ZoneInfo(shop.timezone or "UTC")
    except ZoneInfoNotFoundError:
        return ZoneInfo("UTC")


def _day_start(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(), tzinfo=zone).astimezone(UTC)


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _get(shop: Shop, subscriber_id: int) -> Subscriber:
    sub = Subscriber.get_for_shop(shop.id, subscriber_id)
    if sub is None:
        raise ApiError(404, "not_found", "That subscriber does not exist.")
    return sub


def _detail(shop: Shop, sub: Subscriber) -> dict[str, Any]:
    # Raw attribute values: the response schema does the serialising.
    data = {name: getattr(sub, name) for name in SubscriberSchema._declared_fields}
    data["consent_events"] = list(
        db.session.scalars(
            ConsentEvent.for_shop(shop.id)
            .where(ConsentEvent.subscriber_id == sub.id)
            .order_by(ConsentEvent.occurred_at, ConsentEvent.id)
        )
    )
    data["messages"] = list(
        db.session.scalars(
            Message.for_shop(shop.id)
            .where(Message.subscriber_id == sub.id)
            .order_by(Message.id.desc())
            .limit(DETAIL_MESSAGES)
        )
    )
    return data


@blp.route("")
class Subscribers(MethodView):
    @blp.arguments(SubscriberQuerySchema, location="query")
    @blp.response(200, SubscriberPageSchema)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """Search subscribers, newest first, a page at a time (`next_cursor`)."""
        shop = current_shop()
        stmt = Subscriber.for_shop(shop.id)
        if args["phone"]:
            digits = "".join(c for c in args["phone"] if c.isdigit())
            if digits:
                stmt = stmt.where(Subscriber.phone.like(_like(digits), escape="\\"))
        if args["email"]:
            stmt = stmt.where(
                func.lower(Subscriber.email).like(_like(args["email"].strip().lower()), escape="\\")
            )
        if args["name"]:
            pattern = _like(args["name"].strip().lower())
            stmt = stmt.where(
                or_(
                    func.lower(Subscriber.first_name).like(pattern, escape="\\"),
                    func.lower(Subscriber.last_name).like(pattern, escape="\\"),
                )
            )
        if args["status"]:
            stmt = stmt.where(Subscriber.status == args["status"])
        if args["source"]:
            stmt = stmt.where(Subscriber.source == args["source"])
        zone = _zone(shop)
        if args["created_from"]:
            stmt = stmt.where(Subscriber.created_at >= _day_start(args["created_from"], zone))
        if args["created_to"]:
            end = _day_start(args["created_to"] + timedelta(days=1), zone)
            stmt = stmt.where(Subscriber.created_at < end)
        page = keyset_page(stmt, Subscriber.id, args["cursor"], args["limit"])
        return {"items": page.items, "next_cursor": page.next_cursor, "limit": page.limit}


@blp.route("/counts")
class SubscriberCounts(MethodView):
    @blp.response(200, CountsSchema)
    def get(self) -> dict[str, int]:
        """How many subscribers the shop has in each status."""
        shop = current_shop()
        rows = db.session.execute(
            Subscriber.for_shop(shop.id)
            .with_only_columns(Subscriber.status, func.count())
            .group_by(Subscriber.status)
        )
        counts = dict.fromkeys(SUBSCRIBER_STATUSES, 0)
        for status, count in rows:
            counts[status] = int(count)
        counts["total"] = sum(counts.values())
        return counts


@blp.route("/growth")
class SubscriberGrowth(MethodView):
    @blp.arguments(GrowthArgsSchema, location="query")
    @blp.response(200, GrowthSchema)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """New, confirmed and unsubscribed per day over the last `days` days (shop's zone)."""
        shop = current_shop()
        zone = _zone(shop)
        today = datetime.now(zone).date()
        first = today - timedelta(days=args["days"] - 1)
        start, end = _day_start(first, zone), _day_start(today + timedelta(days=1), zone)
        new = _daily(
            Subscriber.for_shop(shop.id)
            .with_only_columns(Subscriber.created_at)
            .where(Subscriber.created_at >= start, Subscriber.created_at < end),
            Subscriber.created_at,
            zone,
        )
        confirmed = _daily(
            _events(shop, (consent.CONFIRMED, consent.RESUBSCRIBED), start, end),
            ConsentEvent.occurred_at,
            zone,
        )
        unsubscribed = _daily(
            _events(shop, (consent.OPTED_OUT,), start, end), ConsentEvent.occurred_at, zone
        )
        days = []
        for offset in range(args["days"]):
            day = first + timedelta(days=offset)
            days.append(
                {
                    "date": day,
                    "new": new.get(day, 0),
                    "confirmed": confirmed.get(day, 0),
                    "unsubscribed": unsubscribed.get(day, 0),
                }
            )
        return {"timezone": str(zone.key), "days": days}


def _events(shop: Shop, kinds: tuple[str, ...], start: datetime, end: datetime) -> Any:
    return (
        ConsentEvent.for_shop(shop.id)
        .with_only_columns(ConsentEvent.occurred_at)
        .where(
            ConsentEvent.kind.in_(kinds),
            ConsentEvent.occurred_at >= start,
            ConsentEvent.occurred_at < end,
        )
    )


def _daily(stmt: Any, column: Any, zone: ZoneInfo) -> dict[date, int]:
    """Rows per local day. PostgreSQL groups in SQL; SQLite (development) has no time zones,
    so its timestamps are bucketed here."""
    if db.session.get_bind().dialect.name == "postgresql":
        day = func.date(func.timezone(zone.key, column))
        grouped = stmt.with_only_columns(day, func.count()).group_by(day)
        return {d: int(n) for d, n in db.session.execute(grouped)}
    counts: dict[date, int] = {}
    for (moment,) in db.session.execute(stmt):
        local = moment.astimezone(zone).date()
        counts[local] = counts.get(local, 0) + 1
    return counts


@blp.route("/<int:subscriber_id>")
class SubscriberDetail(MethodView):
    @blp.response(200, SubscriberDetailSchema)
    def get(self, subscriber_id: int) -> dict[str, Any]:
        """One subscriber with its whole consent history and latest messages."""
        shop = current_shop()
        return _detail(shop, _get(shop, subscriber_id))


@blp.route("/<int:subscriber_id>/unsubscribe")
class SubscriberUnsubscribe(MethodView):
    @blp.response(200, SubscriberDetailSchema)
    def post(self, subscriber_id: int) -> dict[str, Any]:
        """Unsubscribe by hand (ledger source `admin`); no text is sent. Idempotent."""
        shop = current_shop()
        sub = _get(shop, subscriber_id)
        unsubscribe(
            shop,
            sub,
            source="admin",
            send_confirmation=False,
            note="Unsubscribed by the merchant in Tidings",
        )
        db.session.commit()
        return _detail(shop, sub)
