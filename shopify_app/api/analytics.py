"""Analytics: what campaigns, variants, flows and the shop sent, cost and earned.

Every route reads only the session's shop. Money is a Decimal string ("123.45"); rates are
Decimal strings with four places, null when their denominator is zero.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import Response, stream_with_context
from flask.views import MethodView
from flask_smorest import Blueprint

from shopify_app.api._analytics_schemas import (
    AttributedOrderPageSchema,
    AttributedOrdersArgsSchema,
    CampaignStatsSchema,
    FlowStatsSchema,
    LinkStatsSchema,
    OrdersExportArgsSchema,
    RangeArgsSchema,
    RecomputeSchema,
    SeriesSchema,
    ShopStatsSchema,
    VariantStatsSchema,
)
from shopify_app.api._common import (
    MAX_ROW_ID,
    ApiError,
    current_shop,
    cursor_row_id,
    decode_cursor,
    encode_cursor,
)
from shopify_app.models import Campaign, Flow, utcnow
from shopify_app.services import recompute, stats
from shopify_app.services.attributed_orders import attributed_orders_page
from shopify_app.services.exports import attributed_orders_csv, campaign_results_csv
from shopify_app.services.link_stats import campaign_link_stats
from shopify_app.services.timeseries import MAX_DAYS, daily_series, local_bounds

DEFINITIONS = (
    "Definitions: recipients = recipient rows except held-out ones; sent = accepted by the "
    "provider; delivered = carrier-confirmed; delivery_rate = delivered / sent; clicks = human "
    "clicks (bots apart); unique_clicks = distinct subscribers who clicked; ctr = unique_clicks "
    "/ delivered; orders = attributed orders, test and cancelled ones excluded; revenue = their "
    "value in the shop currency net of refunds, split by reason (discount code, click, view-"
    "through); aov = revenue / orders; conversion_rate = orders / delivered; spend = sum of each "
    "billed message's cost (segments x per-segment price; billed = accepted by the provider and "
    "not failed afterwards); ROI = (revenue - spend) / spend; opt_outs = "
    "opt-outs within 48 h after a message that was the subscriber's last one; opt_out_rate = "
    "opt_outs / delivered. Holdout: revenue per recipient (all orders in the attribution window "
    "after the send) of recipients vs. the held-out group; incremental revenue = difference x "
    "recipients, with a 95% Welch t confidence interval."
)

blp = Blueprint(
    "analytics",
    __name__,
    url_prefix="/api/analytics",
    description="Campaign, A/B variant, flow and shop results; daily series; attributed "
    "orders; CSV exports; attribution recompute. " + DEFINITIONS,
)


# --------------------------------------------------------------------------- helpers
def _campaign(campaign_id: int) -> Campaign:
    # An id beyond bigint names no row; PostgreSQL would refuse it with an error instead.
    campaign = (
        Campaign.get_for_shop(current_shop().id, campaign_id)
        if 0 < campaign_id <= MAX_ROW_ID
        else None
    )
    if campaign is None:
        raise ApiError(404, "not_found", "That campaign does not exist.")
    return campaign


def _flow(flow_id: int) -> Flow:
    flow = Flow.get_for_shop(current_shop().id, flow_id) if 0 < flow_id <= MAX_ROW_ID else None
    if flow is None:
        raise ApiError(404, "not_found", "That flow does not exist.")
    return flow


def _sources(args: dict[str, Any]) -> tuple[int | None, int | None]:
    """The `campaign_id` and `flow_id` filters, each checked to be the shop's (404 if not)."""
    campaign_id = args.get("campaign_id")
    flow_id = args.get("flow_id")
    return (
        _campaign(campaign_id).id if campaign_id is not None else None,
        _flow(flow_id).id if flow_id is not None else None,
    )


def _order_cursor(cursor: str | None) -> tuple[datetime, int] | None:
    """The (ordered_at, id) a page of orders continues after."""
    value = decode_cursor(cursor)
    if value is None:
        return None
    try:
        at = datetime.fromisoformat(value["at"]).astimezone(UTC)
        last = value["id"]
    except (KeyError, TypeError, ValueError, OverflowError):
        raise ApiError(400, "bad_cursor", "The page cursor is not valid.") from None
    return at, cursor_row_id(last)


_EARLIEST, _LATEST = date(2000, 1, 1), date(2100, 12, 31)


def _days(args: dict[str, Any]) -> tuple[date, date, ZoneInfo]:
    zone = ZoneInfo(current_shop().timezone or "UTC")
    today = utcnow().astimezone(zone).date()
    last = args.get("until") or today
    for value in (last, args.get("since")):
        # Far-off dates overflow the date arithmetic and the time-zone conversions below.
        if value is not None and not _EARLIEST <= value <= _LATEST:
            raise ApiError(400, "bad_range", f"Dates run from {_EARLIEST} to {_LATEST}.")
    first = args.get("since") or last - timedelta(days=29)
    if last < first:
        raise ApiError(400, "bad_range", "'until' is before 'since'.")
    if (last - first).days + 1 > MAX_DAYS:
        raise ApiError(400, "bad_range", f"A range covers at most {MAX_DAYS} days.")
    return first, last, zone


def _series(args: dict[str, Any], **scope: int) -> dict[str, Any]:
    first, last, zone = _days(args)
    points = daily_series(current_shop(), first, last, **scope)
    return {
        "since": first.isoformat(),
        "until": last.isoformat(),
        "timezone": zone.key,
        "points": points,
    }


def _csv(lines: Any, filename: str) -> Response:
    return Response(
        stream_with_context(lines),
        mimetype="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
        },
    )


# --------------------------------------------------------------------------- routes
@blp.route("/campaigns/<int:campaign_id>")
class CampaignStats(MethodView):
    @blp.response(200, CampaignStatsSchema)
    def get(self, campaign_id: int) -> dict[str, Any]:
        """A campaign's results, with its holdout comparison."""
        return stats.campaign_stats(current_shop().id, _campaign(campaign_id).id)


@blp.route("/campaigns/<int:campaign_id>/variants")
class CampaignVariants(MethodView):
    @blp.response(200, VariantStatsSchema(many=True))
    def get(self, campaign_id: int) -> list[dict[str, Any]]:
        """The same results per A/B variant."""
        return stats.variant_stats(current_shop().id, _campaign(campaign_id).id)


@blp.route("/campaigns/<int:campaign_id>/links")
class CampaignLinks(MethodView):
    @blp.response(200, LinkStatsSchema(many=True))
    def get(self, campaign_id: int) -> list[dict[str, Any]]:
        """Per destination link: texts that carried it, clicks and distinct clickers."""
        return campaign_link_stats(current_shop().id, _campaign(campaign_id).id)


@blp.route("/campaigns/<int:campaign_id>/timeseries")
class CampaignSeries(MethodView):
    @blp.arguments(RangeArgsSchema, location="query")
    @blp.response(200, SeriesSchema)
    def get(self, args: dict[str, Any], campaign_id: int) -> dict[str, Any]:
        """Per day (shop time zone): sent, clicks, attributed orders and revenue."""
        return _series(args, campaign_id=_campaign(campaign_id).id)


@blp.route("/campaigns/<int:campaign_id>/results.csv")
class CampaignResultsExport(MethodView):
    @blp.response(200, {"type": "string"}, content_type="text/csv")
    def get(self, campaign_id: int) -> Response:
        """One line per recipient: outcome, cost, clicks, attributed orders and revenue."""
        campaign = _campaign(campaign_id)
        return _csv(
            campaign_results_csv(current_shop().id, campaign.id),
            f"campaign-{campaign.id}-results.csv",
        )


@blp.route("/flows/<int:flow_id>")
class FlowStats(MethodView):
    @blp.response(200, FlowStatsSchema)
    def get(self, flow_id: int) -> dict[str, Any]:
        """A flow's results, per step, with its holdout comparison."""
        return stats.flow_stats(current_shop().id, _flow(flow_id).id)


@blp.route("/flows/<int:flow_id>/timeseries")
class FlowSeries(MethodView):
    @blp.arguments(RangeArgsSchema, location="query")
    @blp.response(200, SeriesSchema)
    def get(self, args: dict[str, Any], flow_id: int) -> dict[str, Any]:
        """Per day (shop time zone): sent, clicks, attributed orders and revenue."""
        return _series(args, flow_id=_flow(flow_id).id)


@blp.route("/shop")
class ShopStats(MethodView):
    @blp.arguments(RangeArgsSchema, location="query")
    @blp.response(200, ShopStatsSchema)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """The shop over a range of days: totals, campaigns vs flows, subscriber growth."""
        first, last, zone = _days(args)
        since, until = local_bounds(first, last, zone)
        return stats.shop_stats(current_shop().id, since, until)


@blp.route("/timeseries")
class ShopSeries(MethodView):
    @blp.arguments(RangeArgsSchema, location="query")
    @blp.response(200, SeriesSchema)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """Per day (shop time zone): sent, clicks, orders, revenue, new subscribers and
        unsubscribes."""
        return _series(args)


@blp.route("/orders.csv")
class OrdersExport(MethodView):
    @blp.arguments(OrdersExportArgsSchema, location="query")
    @blp.response(200, {"type": "string"}, content_type="text/csv")
    def get(self, args: dict[str, Any]) -> Response:
        """Attributed orders placed in the range, optionally of one campaign or flow."""
        first, last, zone = _days(args)
        since, until = local_bounds(first, last, zone)
        campaign_id, flow_id = _sources(args)
        return _csv(
            attributed_orders_csv(
                current_shop().id, since, until, campaign_id=campaign_id, flow_id=flow_id
            ),
            f"attributed-orders-{first.isoformat()}-{last.isoformat()}.csv",
        )


@blp.route("/orders")
class AttributedOrders(MethodView):
    @blp.arguments(AttributedOrdersArgsSchema, location="query")
    @blp.response(200, AttributedOrderPageSchema)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """Attributed orders placed in the range, newest first, a page at a time
        (`next_cursor`); optionally of one campaign, one flow or one reason. Test and
        cancelled orders are left out, as in the stats."""
        first, last, zone = _days(args)
        since, until = local_bounds(first, last, zone)
        campaign_id, flow_id = _sources(args)
        page = attributed_orders_page(
            current_shop().id,
            since,
            until,
            campaign_id=campaign_id,
            flow_id=flow_id,
            reason=args["reason"],
            after=_order_cursor(args["cursor"]),
            limit=args["limit"],
            zone=zone,
        )
        next_cursor = None
        if page.next_after is not None:
            at, last_id = page.next_after
            next_cursor = encode_cursor({"at": at.isoformat(), "id": last_id})
        return {"items": page.items, "next_cursor": next_cursor, "limit": args["limit"]}


@blp.route("/attribution/recompute")
class AttributionRecompute(MethodView):
    @blp.response(200, RecomputeSchema)
    def get(self) -> dict[str, Any]:
        """The last recompute of this shop's attribution ("never" if there was none)."""
        return recompute.read_status(current_shop().id) or {"status": "never"}

    @blp.response(202, RecomputeSchema)
    def post(self) -> dict[str, Any]:
        """Re-apply the attribution rules to every order (after changing the windows)."""
        return recompute.request_recompute(current_shop().id)
