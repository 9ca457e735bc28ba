"""Marshmallow schemas of the campaigns API (kept apart so the views stay readable)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from shopify_app.api._common import PageArgsSchema, PageMetaSchema
from shopify_app.models.campaign import CAMPAIGN_STATUSES, DISCOUNT_MODES
from shopify_app.services.campaigns import AB_METRICS

SEND_AT_DOC = {
    "description": "ISO 8601 with offset, or a naive local time read in the shop's "
    "time zone; stored in UTC",
    "example": "2026-11-27T10:00",
}
RULES_DOC = {
    "description": "Inline rule tree (see /api/segments/fields), used when no segment_id is set"
}


class VariantSchema(Schema):
    id = fields.Integer(dump_only=True)
    label = fields.String(dump_only=True)
    body = fields.String(required=True, validate=validate.Length(1, 1600))


class CampaignInputSchema(Schema):
    name = fields.String(validate=validate.Length(1, 255))
    body = fields.String(validate=validate.Length(max=1600))
    segment_id = fields.Integer(allow_none=True)
    rules = fields.Dict(allow_none=True, metadata=RULES_DOC)
    exclusions = fields.Dict(
        allow_none=True, metadata={"description": '{"messaged_within_hours": N}'}
    )
    send_at = fields.String(allow_none=True, metadata=SEND_AT_DOC)
    local_time = fields.Boolean(
        metadata={"description": "send at send_at's wall-clock time in each subscriber's own zone"}
    )
    discount_mode = fields.String(validate=validate.OneOf(DISCOUNT_MODES))
    discount_config = fields.Dict()
    holdout_percent = fields.Integer(validate=validate.Range(0, 50))
    ab_test_percent = fields.Integer(validate=validate.Range(0, 100))
    ab_metric = fields.String(validate=validate.OneOf(AB_METRICS))
    ab_wait_minutes = fields.Integer(validate=validate.Range(0, 7 * 24 * 60))
    ab_auto_winner = fields.Boolean()


class CampaignCreateSchema(CampaignInputSchema):
    name = fields.String(required=True, validate=validate.Length(1, 255))


class CampaignSchema(Schema):
    id = fields.Integer()
    name = fields.String()
    status = fields.String(metadata={"enum": list(CAMPAIGN_STATUSES)})
    status_label = fields.String(metadata={"description": "cancelled is shown as Ended"})
    status_reason = fields.String(allow_none=True)
    body = fields.String()
    segment_id = fields.Integer(allow_none=True)
    rules = fields.Dict(allow_none=True)
    exclusions = fields.Dict()
    audience_snapshot = fields.Dict(allow_none=True)
    send_at = fields.DateTime(allow_none=True, metadata={"description": "UTC"})
    send_at_local = fields.String(allow_none=True, metadata={"description": "shop time zone"})
    timezone = fields.String()
    local_time = fields.Boolean()
    discount_mode = fields.String()
    discount_config = fields.Dict()
    holdout_percent = fields.Integer()
    ab_test_percent = fields.Integer()
    ab_metric = fields.String()
    ab_wait_minutes = fields.Integer()
    ab_auto_winner = fields.Boolean()
    ab_decide_at = fields.DateTime(allow_none=True)
    winner_variant_id = fields.Integer(allow_none=True)
    winner_chosen_at = fields.DateTime(allow_none=True)
    winner_chosen_by = fields.String(allow_none=True)
    variants = fields.List(fields.Nested(VariantSchema))
    recipients_count = fields.Integer()
    estimated_cost = fields.Decimal(as_string=True, allow_none=True)
    started_at = fields.DateTime(allow_none=True)
    finished_at = fields.DateTime(allow_none=True)
    cancelled_at = fields.DateTime(allow_none=True)
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class CampaignPageSchema(PageMetaSchema):
    items = fields.List(fields.Nested(CampaignSchema))


class CampaignListArgsSchema(PageArgsSchema):
    status = fields.String(load_default=None, validate=validate.OneOf(CAMPAIGN_STATUSES))


class DeleteArgsSchema(Schema):
    confirm = fields.Boolean(
        load_default=False, metadata={"description": "must be true: deleting cannot be undone"}
    )


class ScheduleSchema(Schema):
    send_at = fields.String(load_default=None, allow_none=True, metadata=SEND_AT_DOC)
    local_time = fields.Boolean(load_default=None, allow_none=True)


class VariantsInputSchema(Schema):
    variants = fields.List(
        fields.Nested(VariantSchema),
        required=True,
        metadata={"description": "2 to 4 texts (labelled A–D in order), or [] to drop the test"},
    )


class WinnerSchema(Schema):
    variant_id = fields.Integer(required=True)


class IssueSchema(Schema):
    code = fields.String()
    message = fields.String()
    blocking = fields.Boolean()
    count = fields.Integer(allow_none=True)
    details = fields.Dict()


class CountryCostSchema(Schema):
    country = fields.String()
    recipients = fields.Integer()
    segments = fields.Integer()
    price_per_segment = fields.String()
    cost = fields.String()


class VariantEstimateSchema(Schema):
    label = fields.String()
    test_recipients = fields.Integer()
    cost_if_sent_to_all = fields.String()
    segments_per_message = fields.Dict(keys=fields.String(), values=fields.Integer())
    encodings = fields.Dict(keys=fields.String(), values=fields.Integer())
    sample = fields.String(allow_none=True)


class ReviewSchema(Schema):
    campaign_id = fields.Integer()
    audience = fields.Integer(metadata={"description": "matching subscribers, before holdout"})
    held_out = fields.Integer()
    smart_sending_skipped = fields.Integer()
    recipients = fields.Integer(metadata={"description": "texts that will be sent"})
    total_cost = fields.String(metadata={"description": "Decimal string"})
    total_cost_exact = fields.String()
    total_is_upper_bound = fields.Boolean(
        metadata={"description": "A/B test: the rest is priced at the dearest variant"}
    )
    total_segments = fields.Integer()
    currency = fields.String()
    per_country = fields.List(fields.Nested(CountryCostSchema))
    segments_per_message = fields.Dict(keys=fields.String(), values=fields.Integer())
    encodings = fields.Dict(keys=fields.String(), values=fields.Integer())
    ucs2_chars = fields.List(fields.String())
    variants = fields.List(fields.Nested(VariantEstimateSchema))
    ab_test_recipients = fields.Integer()
    ab_rest_recipients = fields.Integer()
    sample = fields.String(allow_none=True)
    timezone = fields.String()
    starts_at = fields.DateTime(allow_none=True)
    starts_at_local = fields.String(allow_none=True)
    last_due_at = fields.DateTime(allow_none=True)
    last_due_at_local = fields.String(allow_none=True)
    quiet_hours_delayed = fields.Integer()
    never_allowed = fields.Integer()
    segment_id = fields.Integer(allow_none=True)
    segment_name = fields.String(allow_none=True)
    warnings = fields.List(fields.Nested(IssueSchema))
    blocking = fields.List(fields.Nested(IssueSchema))
    can_send = fields.Boolean()


class ProgressSchema(Schema):
    campaign_id = fields.Integer()
    status = fields.String()
    total = fields.Integer()
    held_out = fields.Integer()
    sent = fields.Integer()
    delivered = fields.Integer()
    failed = fields.Integer()
    skipped = fields.Integer()
    pending = fields.Integer()
    rate_per_minute = fields.Float()
    eta_seconds = fields.Integer(allow_none=True)
    started_at = fields.DateTime(allow_none=True)
    finished_at = fields.DateTime(allow_none=True)
    waiting_for_winner = fields.Boolean()
    ab_decide_at = fields.DateTime(allow_none=True)
    stats = fields.Dict(
        allow_none=True,
        metadata={
            "description": "after the send: the campaign's stats (GET /api/campaigns/<id>/stats)"
        },
    )


class CampaignResultsSchema(Schema):
    campaign = fields.Dict()
    variants = fields.List(fields.Dict())
