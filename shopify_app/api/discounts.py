"""Discounts Tidings created in Shopify: their state, why one failed, and how many codes."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields
from sqlalchemy import func, select

from shopify_app.api._common import (
    ApiError,
    PageArgsSchema,
    PageMetaSchema,
    current_shop,
    keyset_page,
)
from shopify_app.extensions import db
from shopify_app.models import Discount, DiscountCode
from shopify_app.models.discount import CODE_STATUSES

blp = Blueprint(
    "discounts",
    __name__,
    url_prefix="/api/discounts",
    description="Discounts created in Shopify for campaigns (one shared code, or "
    "one unique code per recipient) and flows (single-use codes).",
)


class DiscountQuerySchema(PageArgsSchema):
    campaign_id = fields.Integer(load_default=None)
    flow_id = fields.Integer(load_default=None)


class DiscountSchema(Schema):
    id = fields.Integer()
    campaign_id = fields.Integer(allow_none=True)
    flow_id = fields.Integer(allow_none=True)
    mode = fields.String(metadata={"description": "shared, unique or single"})
    title = fields.String()
    value_type = fields.String(metadata={"description": "percentage or amount"})
    value = fields.String(metadata={"description": "15 = 15 % for percentages"})
    minimum_subtotal = fields.String(allow_none=True)
    starts_at = fields.DateTime(allow_none=True)
    ends_at = fields.DateTime(allow_none=True)
    status = fields.String(metadata={"description": "pending, ready, failed or expired"})
    error = fields.String(allow_none=True, metadata={"description": "why creating it failed"})
    codes = fields.Dict(
        keys=fields.String(),
        values=fields.Integer(),
        metadata={"description": "number of codes by status"},
    )


class DiscountPageSchema(PageMetaSchema):
    items = fields.List(fields.Nested(DiscountSchema))


def _code_counts(shop_id: int, discount_ids: list[int]) -> dict[int, dict[str, int]]:
    counts: dict[int, dict[str, int]] = {i: dict.fromkeys(CODE_STATUSES, 0) for i in discount_ids}
    if discount_ids:
        for discount_id, status, n in db.session.execute(
            select(DiscountCode.discount_id, DiscountCode.status, func.count())
            .where(DiscountCode.shop_id == shop_id, DiscountCode.discount_id.in_(discount_ids))
            .group_by(DiscountCode.discount_id, DiscountCode.status)
        ):
            counts[discount_id][status] = int(n)
    return counts


def _document(discount: Discount, codes: dict[str, int]) -> dict[str, Any]:
    return {
        "id": discount.id,
        "campaign_id": discount.campaign_id,
        "flow_id": discount.flow_id,
        "mode": discount.mode,
        "title": discount.title,
        "value_type": discount.value_type,
        "value": str(discount.value.normalize()),
        "minimum_subtotal": (
            str(discount.minimum_subtotal) if discount.minimum_subtotal is not None else None
        ),
        "starts_at": discount.starts_at,
        "ends_at": discount.ends_at,
        "status": discount.status,
        "error": discount.error,
        "codes": codes,
    }


@blp.route("")
class Discounts(MethodView):
    @blp.arguments(DiscountQuerySchema, location="query")
    @blp.response(200, DiscountPageSchema)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """The shop's discounts, newest first, optionally of one campaign or flow."""
        shop_id = current_shop().id
        stmt = Discount.for_shop(shop_id)
        if args.get("campaign_id") is not None:
            stmt = stmt.where(Discount.campaign_id == args["campaign_id"])
        if args.get("flow_id") is not None:
            stmt = stmt.where(Discount.flow_id == args["flow_id"])
        page = keyset_page(stmt, Discount.id, args["cursor"], args["limit"])
        counts = _code_counts(shop_id, [d.id for d in page.items])
        return {
            "items": [_document(d, counts[d.id]) for d in page.items],
            "next_cursor": page.next_cursor,
            "limit": page.limit,
        }


@blp.route("/<int:discount_id>")
class DiscountDetail(MethodView):
    @blp.response(200, DiscountSchema)
    def get(self, discount_id: int) -> dict[str, Any]:
        """One discount with its code counts."""
        shop_id = current_shop().id
        discount = Discount.get_for_shop(shop_id, discount_id)
        if discount is None:
            raise ApiError(404, "not_found", "That discount does not exist.")
        return _document(discount, _code_counts(shop_id, [discount.id])[discount.id])
