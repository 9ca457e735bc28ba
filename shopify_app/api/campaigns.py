"""Campaigns API: create and edit drafts, review (recipients, length, cost, warnings), schedule
or send now, the on/off switch, end a send, progress, stats, A/B variants and the winner.

Statuses: draft, scheduled, sending, sent, cancelled ("Ended"). An action the status does not
allow answers 409 `invalid_transition` naming the status and the move; deleting needs
`confirm=true` (400 `confirmation_required` without it); a campaign the review blocks (too
long, no audience, ...) answers 422 `not_sendable` with the issues in `details`.
"""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint

from shopify_app.api._campaign_schemas import (
    CampaignCreateSchema,
    CampaignInputSchema,
    CampaignListArgsSchema,
    CampaignPageSchema,
    CampaignResultsSchema,
    CampaignSchema,
    DeleteArgsSchema,
    ProgressSchema,
    ReviewSchema,
    ScheduleSchema,
    VariantSchema,
    VariantsInputSchema,
    WinnerSchema,
)
from shopify_app.api._common import ApiError, current_shop, keyset_page
from shopify_app.extensions import db
from shopify_app.models import Campaign, Shop
from shopify_app.services import ab_test, campaigns, estimate, stats
from shopify_app.services.campaign_progress import progress

blp = Blueprint(
    "campaigns",
    __name__,
    url_prefix="/api/campaigns",
    description="Campaigns: draft → scheduled → sending → sent, or cancelled (shown as Ended). "
    "Times are UTC with the shop-local equivalent beside them.",
)


def _get(shop: Shop, campaign_id: int) -> Campaign:
    campaign = Campaign.get_for_shop(shop.id, campaign_id)
    if campaign is None:
        raise ApiError(404, "not_found", "That campaign does not exist.")
    return campaign


def _dump(shop: Shop, campaign: Campaign) -> dict[str, Any]:
    stored = campaign.audience or {}
    started = "snapshot_at" in stored
    data = {
        name: getattr(campaign, name)
        for name in (
            "id",
            "name",
            "status",
            "status_reason",
            "body",
            "segment_id",
            "send_at",
            "local_time",
            "discount_mode",
            "discount_config",
            "holdout_percent",
            "ab_test_percent",
            "ab_metric",
            "ab_wait_minutes",
            "ab_auto_winner",
            "ab_decide_at",
            "winner_variant_id",
            "winner_chosen_at",
            "winner_chosen_by",
            "recipients_count",
            "estimated_cost",
            "started_at",
            "finished_at",
            "cancelled_at",
            "created_at",
            "updated_at",
        )
    }
    data.update(
        status_label=campaigns.STATUS_LABELS[campaign.status],
        rules=None if started and campaign.segment_id else stored.get("rules"),
        exclusions=stored.get("exclusions") or {},
        audience_snapshot=stored if started else None,
        send_at_local=campaigns.local_iso(campaign.send_at, shop),
        timezone=shop.timezone,
        variants=campaigns.variants_of(campaign),
    )
    return data


def _fail(exc: Exception) -> ApiError:
    """The one translation of the services' refusals into the API's error shape."""
    if isinstance(exc, campaigns.InvalidTransition):
        return ApiError(
            409,
            "invalid_transition",
            exc.message,
            {"action": exc.action, "from": exc.current, "to": exc.target},
        )
    if isinstance(exc, campaigns.NotSendable):
        return ApiError(422, "not_sendable", exc.message, {"issues": exc.issues})
    if isinstance(exc, campaigns.CampaignError):
        status = {"confirmation_required": 400, "winner_chosen": 409, "no_test": 409}.get(
            exc.code, 422
        )
        return ApiError(status, exc.code, exc.message, {"field": exc.field})
    raise exc


ERRORS = (campaigns.InvalidTransition, campaigns.CampaignError)


@blp.route("")
class Campaigns(MethodView):
    @blp.arguments(CampaignListArgsSchema, location="query")
    @blp.response(200, CampaignPageSchema)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """Campaigns, newest first, a page at a time; optionally one status."""
        shop = current_shop()
        stmt = Campaign.for_shop(shop.id)
        if args["status"]:
            stmt = stmt.where(Campaign.status == args["status"])
        page = keyset_page(stmt, Campaign.id, args["cursor"], args["limit"])
        return {
            "items": [_dump(shop, c) for c in page.items],
            "next_cursor": page.next_cursor,
            "limit": page.limit,
        }

    @blp.arguments(CampaignCreateSchema)
    @blp.response(201, CampaignSchema)
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        """Create a draft."""
        shop = current_shop()
        try:
            campaign = campaigns.create_campaign(shop, data)
        except ERRORS as exc:
            db.session.rollback()
            raise _fail(exc) from None
        db.session.commit()
        return _dump(shop, campaign)


@blp.route("/<int:campaign_id>")
class CampaignItem(MethodView):
    @blp.response(200, CampaignSchema)
    def get(self, campaign_id: int) -> dict[str, Any]:
        """One campaign."""
        shop = current_shop()
        return _dump(shop, _get(shop, campaign_id))

    @blp.arguments(CampaignInputSchema)
    @blp.response(200, CampaignSchema)
    def patch(self, data: dict[str, Any], campaign_id: int) -> dict[str, Any]:
        """Edit a draft or scheduled campaign (409 once it is sending)."""
        shop = current_shop()
        campaign = _get(shop, campaign_id)
        try:
            campaigns.update_campaign(shop, campaign, data)
        except ERRORS as exc:
            db.session.rollback()
            raise _fail(exc) from None
        db.session.commit()
        return _dump(shop, campaign)

    @blp.arguments(DeleteArgsSchema, location="query")
    @blp.response(204)
    def delete(self, args: dict[str, Any], campaign_id: int) -> None:
        """Delete a draft or scheduled campaign for good: needs `confirm=true`."""
        shop = current_shop()
        campaign = _get(shop, campaign_id)
        try:
            campaigns.delete_campaign(campaign, confirm=args["confirm"])
        except ERRORS as exc:
            db.session.rollback()
            raise _fail(exc) from None
        db.session.commit()


@blp.route("/<int:campaign_id>/schedule")
class Schedule(MethodView):
    @blp.arguments(ScheduleSchema)
    @blp.response(200, CampaignSchema)
    def post(self, data: dict[str, Any], campaign_id: int) -> dict[str, Any]:
        """Switch on: send at `send_at` (or the time already set)."""
        shop = current_shop()
        campaign = _get(shop, campaign_id)
        try:
            campaigns.schedule(
                shop, campaign, send_at=data["send_at"], local_time=data["local_time"]
            )
        except ERRORS as exc:
            db.session.rollback()
            raise _fail(exc) from None
        db.session.commit()
        return _dump(shop, campaign)


@blp.route("/<int:campaign_id>/unschedule")
class Unschedule(MethodView):
    @blp.response(200, CampaignSchema)
    def post(self, campaign_id: int) -> dict[str, Any]:
        """Switch off: a scheduled campaign goes back to draft, keeping its time."""
        shop = current_shop()
        campaign = _get(shop, campaign_id)
        try:
            campaigns.unschedule(campaign)
        except ERRORS as exc:
            db.session.rollback()
            raise _fail(exc) from None
        db.session.commit()
        return _dump(shop, campaign)


@blp.route("/<int:campaign_id>/send-now")
class SendNow(MethodView):
    @blp.response(200, CampaignSchema)
    def post(self, campaign_id: int) -> dict[str, Any]:
        """Start sending at once (texts in quiet hours wait for the window)."""
        shop = current_shop()
        campaign = _get(shop, campaign_id)
        try:
            campaigns.send_now(campaign)
        except ERRORS as exc:
            db.session.rollback()
            raise _fail(exc) from None
        return _dump(shop, campaign)


@blp.route("/<int:campaign_id>/end")
class End(MethodView):
    @blp.response(200, CampaignSchema)
    def post(self, campaign_id: int) -> dict[str, Any]:
        """End a sending campaign: nothing more leaves; what was sent stays counted."""
        shop = current_shop()
        campaign = _get(shop, campaign_id)
        try:
            campaigns.end(campaign)
        except ERRORS as exc:
            db.session.rollback()
            raise _fail(exc) from None
        return _dump(shop, campaign)


@blp.route("/<int:campaign_id>/review")
class Review(MethodView):
    @blp.response(200, ReviewSchema)
    def get(self, campaign_id: int) -> dict[str, Any]:
        """Recipients, length and encoding, cost per country, when it will go, warnings."""
        shop = current_shop()
        return estimate.review(shop, _get(shop, campaign_id))


@blp.route("/<int:campaign_id>/progress")
class Progress(MethodView):
    @blp.response(200, ProgressSchema)
    def get(self, campaign_id: int) -> dict[str, Any]:
        """Sent / total, rate and time left; after the send, its stats too."""
        shop = current_shop()
        campaign = _get(shop, campaign_id)
        data = progress(campaign)
        data["stats"] = (
            stats.campaign_stats(shop.id, campaign.id)
            if campaign.status in ("sent", "cancelled")
            else None
        )
        return data


@blp.route("/<int:campaign_id>/stats")
class Stats(MethodView):
    @blp.response(200, CampaignResultsSchema)
    def get(self, campaign_id: int) -> dict[str, Any]:
        """The campaign's results and each A/B variant's (definitions: /api/analytics)."""
        shop = current_shop()
        campaign = _get(shop, campaign_id)
        return {
            "campaign": stats.campaign_stats(shop.id, campaign.id),
            "variants": stats.variant_stats(shop.id, campaign.id),
        }


@blp.route("/<int:campaign_id>/variants")
class Variants(MethodView):
    @blp.response(200, VariantSchema(many=True))
    def get(self, campaign_id: int) -> list[Any]:
        """The A/B variants, A to D."""
        shop = current_shop()
        return campaigns.variants_of(_get(shop, campaign_id))

    @blp.arguments(VariantsInputSchema)
    @blp.response(200, VariantSchema(many=True))
    def put(self, data: dict[str, Any], campaign_id: int) -> list[Any]:
        """Replace the variants: 2 to 4 texts, or none."""
        shop = current_shop()
        campaign = _get(shop, campaign_id)
        try:
            made = campaigns.set_variants(campaign, [v["body"] for v in data["variants"]])
        except ERRORS as exc:
            db.session.rollback()
            raise _fail(exc) from None
        db.session.commit()
        return made


@blp.route("/<int:campaign_id>/winner")
class Winner(MethodView):
    @blp.arguments(WinnerSchema)
    @blp.response(200, CampaignSchema)
    def post(self, data: dict[str, Any], campaign_id: int) -> dict[str, Any]:
        """Pick the A/B winner now; the rest of the audience gets its text."""
        shop = current_shop()
        campaign = _get(shop, campaign_id)
        try:
            ab_test.choose_winner(campaign, data["variant_id"], by="merchant")
        except ERRORS as exc:
            db.session.rollback()
            raise _fail(exc) from None
        return _dump(shop, campaign)
