"""Flows API: the shop's four automated flows with their results, their steps and settings,
turning them on and off, and the runs that walk subscribers through them.

A shop's flows are created (disabled) the first time the list is read. Edits apply to runs
that have not reached the edited step yet; a disabled flow's runs end at their next step.
Invalid input answers 422 with `details.field` naming the offending part ("steps[1].body").

Each step has an `id` that stays with it through edits: send the steps back with their ids
(moved, edited, some removed, new ones without an id) and every run keeps its place — at the
step it was about to perform, wherever that step now stands, or at new steps inserted just
before it, which it has not reached either. Steps sent without ids are matched to the old ones
by content, then by position and type.
"""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from shopify_app.api._common import (
    ApiError,
    PageArgsSchema,
    PageMetaSchema,
    current_shop,
    keyset_page,
)
from shopify_app.extensions import db
from shopify_app.models import Flow, FlowRun, Shop
from shopify_app.models.flow import FLOW_KINDS, RUN_STATUSES
from shopify_app.services import flows, stats
from shopify_app.services.flow_defaults import (
    FLOW_TAGS,
    InvalidFlow,
    ensure_default_flows,
    settings_of,
    step_id,
    validate_holdout,
    validate_settings,
    validate_steps,
)

blp = Blueprint(
    "flows",
    __name__,
    url_prefix="/api/flows",
    description="Automated flows (abandoned checkout, welcome series, post-purchase, "
    "win-back): steps, settings, on/off, runs and results.",
)


class StepSchema(Schema):
    id = fields.Integer(
        metadata={"description": "stable through edits; omit for a new step (one is assigned)"}
    )
    type = fields.String(metadata={"description": "wait or message"})
    minutes = fields.Integer(metadata={"description": "wait: how long"})
    body = fields.String(metadata={"description": "message: the text, with merge tags"})
    discount = fields.Dict(
        allow_none=True,
        metadata={
            "description": "message: a unique single-use code made for each text (value_type, "
            "value, minimum_subtotal, expires_after_hours, ...), or null"
        },
    )


class StepStatsSchema(Schema):
    step = fields.Integer(metadata={"description": "the step's index in `steps`"})
    step_id = fields.Integer(metadata={"description": "the step's `id`"})
    sent = fields.Integer()
    delivered = fields.Integer()
    skipped = fields.Integer()
    clicks = fields.Integer()
    unique_clicks = fields.Integer()
    orders = fields.Integer()
    revenue = fields.String(metadata={"description": "Decimal string"})


class RunCountsSchema(Schema):
    total = fields.Integer()
    by_status = fields.Dict(keys=fields.String(), values=fields.Integer())


class FlowResultsSchema(Schema):
    sent = fields.Integer()
    delivered = fields.Integer()
    skipped = fields.Integer()
    clicks = fields.Integer()
    unique_clicks = fields.Integer()
    orders = fields.Integer()
    revenue = fields.String(metadata={"description": "Decimal string"})
    spend = fields.String(metadata={"description": "Decimal string"})
    opt_outs = fields.Integer()
    runs = fields.Nested(RunCountsSchema)
    steps = fields.List(
        fields.Nested(StepStatsSchema),
        metadata={
            "description": "per message step of the current definition that has sent texts, "
            "in step order (a removed step's texts count in the totals only)"
        },
    )


class FlowSchema(Schema):
    id = fields.Integer()
    kind = fields.String(metadata={"description": " | ".join(FLOW_KINDS)})
    name = fields.String()
    enabled = fields.Boolean()
    steps = fields.List(fields.Nested(StepSchema))
    settings = fields.Dict(metadata={"description": "effective settings of this kind"})
    holdout_percent = fields.Integer()
    merge_tags = fields.List(
        fields.String(),
        metadata={
            "description": "flow tags usable in texts besides first_name, last_name, shop_name, "
            "brand, discount_code"
        },
    )
    updated_at = fields.DateTime()
    stats = fields.Nested(FlowResultsSchema)


class FlowListSchema(Schema):
    items = fields.List(fields.Nested(FlowSchema))


class FlowUpdateSchema(Schema):
    name = fields.String(validate=validate.Length(1, 255))
    enabled = fields.Boolean()
    steps = fields.List(fields.Dict(), metadata={"description": "the whole new step list"})
    settings = fields.Dict(metadata={"description": "settings to change (others kept)"})
    holdout_percent = fields.Integer()


class RunSchema(Schema):
    id = fields.Integer()
    subscriber_id = fields.Integer()
    trigger_key = fields.String()
    status = fields.String(metadata={"description": " | ".join(RUN_STATUSES)})
    step_index = fields.Integer(metadata={"description": "the next step to perform"})
    next_step_at = fields.DateTime(allow_none=True)
    exit_reason = fields.String(allow_none=True)
    held_out = fields.Boolean()
    created_at = fields.DateTime()
    ended_at = fields.DateTime(allow_none=True)


class RunPageSchema(PageMetaSchema):
    items = fields.List(fields.Nested(RunSchema))


class RunQuerySchema(PageArgsSchema):
    status = fields.String(load_default=None, validate=validate.OneOf(RUN_STATUSES))


_STEP_FIGURES = ("sent", "delivered", "skipped", "clicks", "unique_clicks", "orders", "revenue")


def _results(flow: Flow) -> dict[str, Any]:
    report = stats.flow_stats(flow.shop_id, flow.id)
    # Texts are keyed by step id; the page shows steps where they stand now.
    index_of = {step_id(step, i): i for i, step in enumerate(flow.steps or [])}
    steps = sorted(
        (
            {"step": index_of[s["step"]], "step_id": s["step"], **{k: s[k] for k in _STEP_FIGURES}}
            for s in report["steps"]
            if s["step"] is not None and s["step"] in index_of
        ),
        key=lambda row: row["step"],
    )
    return {
        **{
            k: report[k]
            for k in (
                "sent",
                "delivered",
                "skipped",
                "clicks",
                "unique_clicks",
                "orders",
                "revenue",
                "spend",
                "opt_outs",
                "runs",
            )
        },
        "steps": steps,
    }


def _document(flow: Flow) -> dict[str, Any]:
    return {
        "id": flow.id,
        "kind": flow.kind,
        "name": flow.name,
        "enabled": flow.enabled,
        "steps": flow.steps,
        "settings": settings_of(flow.kind, flow.settings),
        "holdout_percent": flow.holdout_percent,
        "merge_tags": list(FLOW_TAGS[flow.kind]),
        "updated_at": flow.updated_at,
        "stats": _results(flow),
    }


def _get(shop: Shop, flow_id: int) -> Flow:
    flow = Flow.get_for_shop(shop.id, flow_id)
    if flow is None:
        raise ApiError(404, "not_found", "That flow does not exist.")
    return flow


def _invalid(exc: InvalidFlow) -> ApiError:
    return ApiError(422, "invalid", str(exc), exc.details)


@blp.route("")
class Flows(MethodView):
    @blp.response(200, FlowListSchema)
    def get(self) -> dict[str, Any]:
        """The shop's flows with their results (created, disabled, on first read)."""
        shop = current_shop()
        ensure_default_flows(shop.id)
        db.session.commit()
        order = {kind: i for i, kind in enumerate(FLOW_KINDS)}
        rows = sorted(
            db.session.scalars(Flow.for_shop(shop.id)),
            key=lambda f: (order.get(f.kind, len(order)), f.id),
        )
        return {"items": [_document(f) for f in rows]}


@blp.route("/<int:flow_id>")
class FlowDetail(MethodView):
    @blp.response(200, FlowSchema)
    def get(self, flow_id: int) -> dict[str, Any]:
        """One flow: its steps, settings and results per step."""
        return _document(_get(current_shop(), flow_id))

    @blp.arguments(FlowUpdateSchema)
    @blp.response(200, FlowSchema)
    def patch(self, changes: dict[str, Any], flow_id: int) -> dict[str, Any]:
        """Change a flow's name, steps, settings, holdout or on/off. Nothing is saved unless
        everything is valid. Each active run keeps its place at the step it was about to
        perform (by step id) and reads the new steps when it gets to them."""
        shop = current_shop()
        flow = _get(shop, flow_id)
        if "steps" in changes:  # two edits at once must not remap runs from the same old steps
            db.session.refresh(flow, with_for_update=True)
        try:
            steps = (
                validate_steps(flow.kind, changes["steps"], shop, previous=list(flow.steps or []))
                if "steps" in changes
                else None
            )
            settings = (
                validate_settings(flow.kind, changes["settings"]) if "settings" in changes else None
            )
            holdout = (
                validate_holdout(changes["holdout_percent"])
                if "holdout_percent" in changes
                else None
            )
            if changes.get("enabled") and steps is None:
                validate_steps(flow.kind, flow.steps, shop)
        except InvalidFlow as exc:
            raise _invalid(exc) from None
        if steps is not None:
            flows.reposition_runs(shop.id, flow.id, list(flow.steps or []), steps)
            flow.steps = steps
        if settings is not None:
            flow.settings = {**(flow.settings or {}), **settings}
        if holdout is not None:
            flow.holdout_percent = holdout
        if "name" in changes:
            flow.name = changes["name"].strip() or flow.name
        if "enabled" in changes:
            flow.enabled = changes["enabled"]
        db.session.commit()
        return _document(flow)


def _switch(flow_id: int, enabled: bool) -> dict[str, Any]:
    shop = current_shop()
    flow = _get(shop, flow_id)
    if enabled:
        try:  # a definition stored before today's rules must still be sendable
            validate_steps(flow.kind, flow.steps, shop)
        except InvalidFlow as exc:
            raise _invalid(exc) from None
    flow.enabled = enabled
    db.session.commit()
    return _document(flow)


@blp.route("/<int:flow_id>/enable")
class FlowEnable(MethodView):
    @blp.response(200, FlowSchema)
    def post(self, flow_id: int) -> dict[str, Any]:
        """Turn the flow on: triggers from now on start runs."""
        return _switch(flow_id, True)


@blp.route("/<int:flow_id>/disable")
class FlowDisable(MethodView):
    @blp.response(200, FlowSchema)
    def post(self, flow_id: int) -> dict[str, Any]:
        """Turn the flow off: no new runs; running ones end ("flow_disabled") at their next
        step."""
        return _switch(flow_id, False)


@blp.route("/<int:flow_id>/runs")
class FlowRuns(MethodView):
    @blp.arguments(RunQuerySchema, location="query")
    @blp.response(200, RunPageSchema)
    def get(self, args: dict[str, Any], flow_id: int) -> dict[str, Any]:
        """The flow's runs, newest first (keyset pages)."""
        shop = current_shop()
        flow = _get(shop, flow_id)
        stmt = FlowRun.for_shop(shop.id).where(FlowRun.flow_id == flow.id)
        if args.get("status"):
            stmt = stmt.where(FlowRun.status == args["status"])
        page = keyset_page(stmt, FlowRun.id, args.get("cursor"), args["limit"])
        return {"items": page.items, "next_cursor": page.next_cursor, "limit": page.limit}
