"""Segments API: saved rule trees, the live count, built-ins and the fields the builder offers.

Rule trees are described in services/segments.py (groups `{"op", "rules"}`, rules
`{"field", "operator", "value"}`, built-ins `{"builtin"}`); an invalid tree answers 422
`invalid_rules` naming the node (`details.path`).
"""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate
from sqlalchemy import select

from shopify_app.api._common import (
    ApiError,
    PageArgsSchema,
    PageMetaSchema,
    current_shop,
    keyset_page,
)
from shopify_app.extensions import db
from shopify_app.models import Campaign, Segment, Shop, utcnow
from shopify_app.services import segments

blp = Blueprint(
    "segments",
    __name__,
    url_prefix="/api/segments",
    description="Audiences as rule trees (AND/OR groups of rules on subscribed date, source, "
    "country, orders, spend, last order, clicks, campaigns received, abandoned "
    "checkouts, or built-ins), counted live. Counts are subscribers who may be "
    "texted now (subscribed, with a valid number).",
)

RULES_DOC = {
    "description": "A rule tree: {op: and|or, rules: [...]}, {field, operator, value} "
    "or {builtin}. See GET /api/segments/fields."
}


class SegmentSchema(Schema):
    id = fields.Integer(dump_only=True)
    name = fields.String(required=True, validate=validate.Length(1, 255))
    rules = fields.Dict(required=True, metadata=RULES_DOC)
    created_at = fields.DateTime(dump_only=True)
    updated_at = fields.DateTime(dump_only=True)


class SegmentPatchSchema(Schema):
    name = fields.String(validate=validate.Length(1, 255))
    rules = fields.Dict(metadata=RULES_DOC)


class SegmentPageSchema(PageMetaSchema):
    items = fields.List(fields.Nested(SegmentSchema))


class CountArgsSchema(Schema):
    rules = fields.Dict(required=True, metadata=RULES_DOC)
    exclusions = fields.Dict(
        load_default=None,
        metadata={"description": '{"messaged_within_hours": N}: leave out anyone texted lately'},
    )


class CountSchema(Schema):
    count = fields.Integer()


class BuiltinSchema(Schema):
    name = fields.String()
    title = fields.String()
    description = fields.String()
    rules = fields.Dict()


class OperatorSchema(Schema):
    operator = fields.String()
    value = fields.String(
        metadata={"description": "days, moment, count, amount, sources, countries or campaign"}
    )


class FieldSchema(Schema):
    field = fields.String()
    operators = fields.List(fields.Nested(OperatorSchema))


def _valid_rules(rules: Any) -> dict[str, Any]:
    try:
        return segments.validate(rules)
    except segments.SegmentError as exc:
        raise ApiError(422, "invalid_rules", exc.message, {"path": exc.path}) from None


def _get(shop: Shop, segment_id: int) -> Segment:
    segment = Segment.get_for_shop(shop.id, segment_id)
    if segment is None:
        raise ApiError(404, "not_found", "That segment does not exist.")
    return segment


@blp.route("")
class Segments(MethodView):
    @blp.arguments(PageArgsSchema, location="query")
    @blp.response(200, SegmentPageSchema)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """Saved segments, newest first, a page at a time."""
        page = keyset_page(
            Segment.for_shop(current_shop().id), Segment.id, args["cursor"], args["limit"]
        )
        return {"items": page.items, "next_cursor": page.next_cursor, "limit": page.limit}

    @blp.arguments(SegmentSchema)
    @blp.response(201, SegmentSchema)
    def post(self, data: dict[str, Any]) -> Segment:
        """Save a segment."""
        shop = current_shop()
        segment = Segment(shop_id=shop.id, name=data["name"], rules=_valid_rules(data["rules"]))
        db.session.add(segment)
        db.session.commit()
        return segment


@blp.route("/<int:segment_id>")
class SegmentItem(MethodView):
    @blp.response(200, SegmentSchema)
    def get(self, segment_id: int) -> Segment:
        """One segment."""
        return _get(current_shop(), segment_id)

    @blp.arguments(SegmentPatchSchema)
    @blp.response(200, SegmentSchema)
    def patch(self, data: dict[str, Any], segment_id: int) -> Segment:
        """Rename or change the rules. Campaigns already sending keep the rules they
        started with."""
        segment = _get(current_shop(), segment_id)
        if "name" in data:
            segment.name = data["name"]
        if "rules" in data:
            segment.rules = _valid_rules(data["rules"])
        segment.updated_at = utcnow()
        db.session.commit()
        return segment

    @blp.response(204)
    def delete(self, segment_id: int) -> None:
        """Delete a segment no scheduled campaign relies on (drafts lose their choice)."""
        shop = current_shop()
        segment = _get(shop, segment_id)
        used = db.session.scalar(
            select(Campaign.id)
            .where(
                Campaign.shop_id == shop.id,
                Campaign.segment_id == segment.id,
                Campaign.status == "scheduled",
            )
            .limit(1)
        )
        if used is not None:
            raise ApiError(
                409,
                "segment_in_use",
                "A scheduled campaign sends to this segment; "
                "switch it off or choose another segment first.",
                {"campaign_id": used},
            )
        db.session.delete(segment)
        db.session.commit()


@blp.route("/<int:segment_id>/count")
class SegmentCount(MethodView):
    @blp.response(200, CountSchema)
    def get(self, segment_id: int) -> dict[str, int]:
        """How many subscribers a saved segment reaches now."""
        shop = current_shop()
        segment = _get(shop, segment_id)
        return {"count": segments.count(shop.id, _valid_rules(segment.rules), zone=shop.timezone)}


@blp.route("/count")
class LiveCount(MethodView):
    @blp.arguments(CountArgsSchema)
    @blp.response(200, CountSchema)
    def post(self, args: dict[str, Any]) -> dict[str, int]:
        """The live count while the merchant edits the rules (nothing is saved)."""
        shop = current_shop()
        rules = _valid_rules(args["rules"])
        try:
            exclusions = segments.validate_exclusions(args["exclusions"])
        except segments.SegmentError as exc:
            raise ApiError(422, "invalid_rules", exc.message, {"path": exc.path}) from None
        return {"count": segments.count(shop.id, rules, exclusions, zone=shop.timezone)}


@blp.route("/builtins")
class Builtins(MethodView):
    @blp.response(200, BuiltinSchema(many=True))
    def get(self) -> list[Any]:
        """The built-in segments and exactly what each one means."""
        current_shop()
        return list(segments.BUILTINS.values())


@blp.route("/fields")
class Fields(MethodView):
    @blp.response(200, FieldSchema(many=True))
    def get(self) -> list[dict[str, Any]]:
        """The fields a rule can test, with their operators and the kind of value each takes."""
        current_shop()
        return segments.describe_fields()
