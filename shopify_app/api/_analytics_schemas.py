"""Marshmallow schemas of the analytics API (kept apart so the views stay readable)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from shopify_app.api._common import PageArgsSchema, PageMetaSchema
from shopify_app.models.order import ATTRIBUTION_REASONS


class RangeArgsSchema(Schema):
    since = fields.Date(
        load_default=None,
        metadata={"description": "first day (shop time zone); default 29 days ago"},
    )
    until = fields.Date(
        load_default=None, metadata={"description": "last day, inclusive; default today"}
    )


class OrdersExportArgsSchema(RangeArgsSchema):
    campaign_id = fields.Integer(load_default=None)
    flow_id = fields.Integer(load_default=None)


class AttributedOrdersArgsSchema(OrdersExportArgsSchema, PageArgsSchema):
    reason = fields.String(load_default=None, validate=validate.OneOf(ATTRIBUTION_REASONS))


def _money(description: str = "") -> fields.String:
    return fields.String(
        metadata={"description": description or "Decimal string", "example": "123.45"}
    )


def _rate(description: str) -> fields.String:
    return fields.String(
        allow_none=True, metadata={"description": description, "example": "0.1234"}
    )


class ReasonCountsSchema(Schema):
    discount = fields.Integer()
    click = fields.Integer()
    view = fields.Integer()


class ReasonMoneySchema(Schema):
    discount = _money()
    click = _money()
    view = _money()


class StatsSchema(Schema):
    recipients = fields.Integer()
    held_out = fields.Integer()
    skipped = fields.Integer()
    pending = fields.Integer()
    sent = fields.Integer()
    delivered = fields.Integer()
    failed = fields.Integer()
    failed_by_error_code = fields.Dict(keys=fields.String(), values=fields.Integer())
    delivery_rate = _rate("delivered / sent")
    segments = fields.Integer(metadata={"description": "segments of billed messages"})
    clicks = fields.Integer()
    bot_clicks = fields.Integer()
    unique_clicks = fields.Integer()
    ctr = _rate("unique_clicks / delivered")
    orders = fields.Integer()
    orders_by_reason = fields.Nested(ReasonCountsSchema)
    revenue = _money("attributed revenue net of refunds, shop currency")
    revenue_by_reason = fields.Nested(ReasonMoneySchema)
    aov = fields.String(allow_none=True, metadata={"description": "revenue / orders"})
    conversion_rate = _rate("orders / delivered")
    spend = _money("sum of billed message costs (segments x per-segment price)")
    roi = _rate("(revenue - spend) / spend")
    roi_formula = fields.String()
    opt_outs = fields.Integer()
    opt_out_rate = _rate("opt_outs / delivered")


class IntervalSchema(Schema):
    low = _money()
    high = _money()


class HoldoutSideSchema(Schema):
    recipients = fields.Integer()
    revenue = _money()
    revenue_per_recipient = fields.String(allow_none=True)


class HoldoutSchema(Schema):
    enabled = fields.Boolean()
    window_days = fields.Integer()
    method = fields.String()
    treated = fields.Nested(HoldoutSideSchema)
    held_out = fields.Nested(HoldoutSideSchema)
    lift_per_recipient = fields.String(allow_none=True)
    ci95_per_recipient = fields.Nested(IntervalSchema, allow_none=True)
    incremental_revenue = fields.String(allow_none=True)
    ci95_incremental_revenue = fields.Nested(IntervalSchema, allow_none=True)


class CampaignStatsSchema(StatsSchema):
    campaign_id = fields.Integer()
    name = fields.String()
    status = fields.String()
    holdout = fields.Nested(HoldoutSchema)


class VariantStatsSchema(StatsSchema):
    variant_id = fields.Integer(allow_none=True)
    label = fields.String(allow_none=True)


class LinkStatsSchema(Schema):
    url = fields.String(metadata={"description": "the destination as written in the text"})
    texts = fields.Integer(metadata={"description": "texts that carried this link"})
    clicks = fields.Integer(metadata={"description": "human clicks"})
    bot_clicks = fields.Integer()
    unique_clicks = fields.Integer(metadata={"description": "distinct subscribers who clicked"})
    ctr = _rate("unique_clicks / texts")


class FlowStepStatsSchema(StatsSchema):
    step = fields.Integer(allow_none=True)


class RunsSchema(Schema):
    total = fields.Integer()
    by_status = fields.Dict(keys=fields.String(), values=fields.Integer())


class FlowStatsSchema(StatsSchema):
    flow_id = fields.Integer()
    name = fields.String()
    kind = fields.String()
    runs = fields.Nested(RunsSchema)
    steps = fields.List(fields.Nested(FlowStepStatsSchema))
    holdout = fields.Nested(HoldoutSchema)


class SubscriberGrowthSchema(Schema):
    new = fields.Integer()
    subscribed_now = fields.Integer()
    unsubscribes = fields.Integer()


class ShopStatsSchema(StatsSchema):
    since = fields.String()
    until = fields.String()
    by_source = fields.Dict(keys=fields.String(), values=fields.Nested(StatsSchema))
    subscribers = fields.Nested(SubscriberGrowthSchema)


class SeriesPointSchema(Schema):
    date = fields.String()
    sent = fields.Integer()
    clicks = fields.Integer()
    orders = fields.Integer()
    revenue = _money()
    new_subscribers = fields.Integer(allow_none=True)
    unsubscribes = fields.Integer(allow_none=True)


class SeriesSchema(Schema):
    since = fields.String()
    until = fields.String()
    timezone = fields.String()
    points = fields.List(fields.Nested(SeriesPointSchema))


class AttributedOrderSchema(Schema):
    id = fields.Integer(metadata={"description": "Tidings' order id"})
    shopify_order_id = fields.Integer()
    name = fields.String(allow_none=True, metadata={"example": "#1001"})
    ordered_at = fields.DateTime(metadata={"description": "UTC"})
    ordered_at_local = fields.String(metadata={"description": "in the shop's time zone"})
    currency = fields.String(metadata={"description": "the shop currency"})
    net_total = _money("total net of refunds: what the stats count as revenue")
    reason = fields.String(metadata={"description": "discount, click or view"})
    campaign_id = fields.Integer(allow_none=True)
    campaign_name = fields.String(allow_none=True)
    flow_id = fields.Integer(allow_none=True)
    flow_name = fields.String(allow_none=True)
    message_id = fields.Integer(allow_none=True)
    subscriber_id = fields.Integer(allow_none=True)


class AttributedOrderPageSchema(PageMetaSchema):
    items = fields.List(fields.Nested(AttributedOrderSchema))


class RecomputeSchema(Schema):
    status = fields.String(metadata={"description": "queued, running, done or failed"})
    job_id = fields.String(allow_none=True)
    queued_at = fields.String(allow_none=True)
    started_at = fields.String(allow_none=True)
    finished_at = fields.String(allow_none=True)
    orders = fields.Integer(allow_none=True)
    attributed = fields.Integer(allow_none=True)
    changed = fields.Integer(allow_none=True)
    error = fields.String(allow_none=True)
