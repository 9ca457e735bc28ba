"""A campaign's life: the one transition table, and the merchant's actions on it.

Statuses: ``draft`` → ``scheduled`` → ``sending`` → ``sent``, or ``cancelled`` (ended while
sending; shown as "Ended"). Every status change — the merchant's and the engine's own moves
(a scheduled campaign starting at its time, a send finishing when no row is open, a discount
failure stopping it) — goes through ``transition``, which checks ``TRANSITIONS`` and writes the
change as a compare-and-set (``UPDATE … WHERE status = :from``), so the scheduler tick and a
merchant's click can never both win.

Editing and deleting are not transitions, but they are allowed in the same one place:
``EDITABLE`` statuses.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import func, select, update

from shopify_app.extensions import db
from shopify_app.jobqueue import enqueue_after_commit
from shopify_app.models import Campaign, Message, Segment, Shop, Variant, utcnow
from shopify_app.models.campaign import DISCOUNT_MODES
from shopify_app.services import segments

log = logging.getLogger(__name__)

START_JOB = "jobs.campaigns.advance"
CAMPAIGN_QUEUE = "default"
STATUS_LABELS = {
    "draft": "Draft",
    "scheduled": "Scheduled",
    "sending": "Sending",
    "sent": "Sent",
    "cancelled": "Ended",
}
AB_METRICS = ("ctr", "revenue_per_recipient")
VARIANT_LABELS = ("A", "B", "C", "D")
CANCELLED_SKIP = "cancelled"
DISCOUNT_FAILED_SKIP = "discount_failed"

# action -> (statuses it may start from, status it leads to)
TRANSITIONS: dict[str, tuple[frozenset[str], str]] = {
    "schedule": (frozenset({"draft", "scheduled"}), "scheduled"),  # again: a new time
    "unschedule": (frozenset({"scheduled"}), "draft"),  # the status switcher, off
    "send_now": (frozenset({"draft", "scheduled"}), "sending"),
    "start": (frozenset({"scheduled"}), "sending"),  # engine: the time came
    "finish": (frozenset({"sending"}), "sent"),  # engine: every row has an outcome
    "end": (frozenset({"sending"}), "cancelled"),  # merchant: stop it
    "fail": (frozenset({"sending"}), "cancelled"),  # engine: e.g. the discount failed
}
EDITABLE = frozenset({"draft", "scheduled"})  # edit, delete, variants


class InvalidTransition(Exception):
    """The campaign's status does not allow this action."""

    def __init__(self, action: str, current: str, target: str | None = None) -> None:
        self.action = action
        self.current = current
        self.target = target
        if target is not None:
            text = (
                f"Cannot {action.replace('_', ' ')} a campaign that is {current}: "
                f"{current} → {target} is not allowed."
            )
        else:
            text = (
                f"Cannot {action} a campaign that is {current}; only draft or scheduled "
                "campaigns can be changed."
            )
        super().__init__(text)
        self.message = text


class CampaignError(ValueError):
    """Input that cannot make a valid campaign (bad time, audience, variants...)."""

    def __init__(self, message: str, field: str | None = None, code: str = "invalid") -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.code = code


def transition(
    campaign: Campaign,
    action: str,
    *,
    reason: str | None = None,
    now: datetime | None = None,
    **values: Any,
) -> Campaign:
    """Move `campaign` by `action`, atomically, with the timestamps that go with it.

    Raises InvalidTransition when the table does not allow it from the current status (also
    when another process changed the status first). The caller commits.
    """
    sources, target = TRANSITIONS[action]
    if campaign.status not in sources:
        raise InvalidTransition(action, campaign.status, target)
    now = now or utcnow()
    changes: dict[str, Any] = {"status": target, "updated_at": now, **values}
    if target == "sending":
        changes.setdefault("started_at", now)
    if target == "sent":
        changes["finished_at"] = now
    if target == "cancelled":
        changes["cancelled_at"] = now
        changes["finished_at"] = now
    if reason is not None:
        changes["status_reason"] = reason
    done = db.session.execute(
        update(Campaign)
        .where(Campaign.id == campaign.id, Campaign.status == campaign.status)
        .values(**changes)
        .execution_options(synchronize_session=False)
    ).rowcount
    if not done:
        db.session.refresh(campaign)
        raise InvalidTransition(action, campaign.status, target)
    db.session.refresh(campaign)
    log.info("campaign %s: %s -> %s (%s)", campaign.id, action, target, reason or "")
    return campaign


def require_editable(campaign: Campaign, action: str = "edit") -> None:
    if campaign.status not in EDITABLE:
        raise InvalidTransition(action, campaign.status)


# --- time --------------------------------------------------------------------------------


def shop_zone(shop: Shop) -> ZoneInfo:
    try:
        return ZoneInfo(shop.timezone or "UTC")
    except ZoneInfoNotFoundError:
        return ZoneInfo("UTC")


def parse_send_at(value: str | datetime, shop: Shop) -> datetime:
    """An ISO datetime with offset, or a naive local time read in the shop's zone → UTC."""
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
        except ValueError:
            raise CampaignError(f"{value!r} is not an ISO date and time", "send_at") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=shop_zone(shop))
    return moment.astimezone(UTC)


def local_iso(moment: datetime | None, shop: Shop) -> str | None:
    return moment.astimezone(shop_zone(shop)).isoformat() if moment else None


# --- create, edit, delete ------------------------------------------------------------------


def _check_audience(shop: Shop, data: dict[str, Any]) -> None:
    if "rules" in data and data["rules"] is not None:
        try:
            data["rules"] = segments.validate(data["rules"])
        except segments.SegmentError as exc:
            raise CampaignError(exc.message, exc.path) from None
    if "exclusions" in data:
        try:
            data["exclusions"] = segments.validate_exclusions(data["exclusions"])
        except segments.SegmentError as exc:
            raise CampaignError(exc.message, exc.path) from None
    if (
        data.get("segment_id") is not None
        and Segment.get_for_shop(shop.id, data["segment_id"]) is None
    ):
        raise CampaignError("That segment does not exist.", "segment_id")


def _apply(shop: Shop, campaign: Campaign, data: dict[str, Any]) -> None:
    _check_audience(shop, data)
    audience = dict(campaign.audience or {})
    for key in ("rules", "exclusions"):
        if key in data:
            audience[key] = data.pop(key)
    campaign.audience = audience
    if "discount_mode" in data and data["discount_mode"] not in DISCOUNT_MODES:
        raise CampaignError(f"discount_mode is one of {', '.join(DISCOUNT_MODES)}", "discount_mode")
    if "ab_metric" in data and data["ab_metric"] not in AB_METRICS:
        raise CampaignError(f"ab_metric is one of {', '.join(AB_METRICS)}", "ab_metric")
    for key in ("holdout_percent", "ab_test_percent"):
        if key in data and not 0 <= int(data[key]) <= (50 if key == "holdout_percent" else 100):
            raise CampaignError(f"{key} is out of range", key)
    if "send_at" in data:
        raw = data.pop("send_at")
        campaign.send_at = parse_send_at(raw, shop) if raw else None
    for key, value in data.items():
        setattr(campaign, key, value)


def create_campaign(shop: Shop, data: dict[str, Any]) -> Campaign:
    """A new draft. The holdout defaults to the shop's setting. Caller commits."""
    data = dict(data)
    campaign = Campaign(
        shop_id=shop.id,
        name=data.pop("name"),
        status="draft",
        body=data.pop("body", "") or "",
        audience={},
        holdout_percent=int(shop.setting("holdout_percent") or 0),
    )
    _apply(shop, campaign, data)
    db.session.add(campaign)
    db.session.flush()
    return campaign


def update_campaign(shop: Shop, campaign: Campaign, data: dict[str, Any]) -> Campaign:
    """Edit a draft or scheduled campaign. Caller commits."""
    require_editable(campaign, "edit")
    _apply(shop, campaign, dict(data))
    campaign.updated_at = utcnow()
    if campaign.status == "scheduled" and campaign.send_at is None:
        raise CampaignError("A scheduled campaign needs a send time.", "send_at")
    return campaign


def delete_campaign(campaign: Campaign, *, confirm: bool) -> None:
    """Delete a draft or scheduled campaign for good. Caller commits."""
    require_editable(campaign, "delete")
    if not confirm:
        raise CampaignError(
            "Deleting a campaign cannot be undone; confirm it (confirm=true).",
            "confirm",
            code="confirmation_required",
        )
    db.session.delete(campaign)


def variants_of(campaign: Campaign) -> list[Variant]:
    return list(
        db.session.scalars(
            Variant.for_shop(campaign.shop_id)
            .where(Variant.campaign_id == campaign.id)
            .order_by(Variant.label)
        )
    )


def set_variants(campaign: Campaign, bodies: list[str]) -> list[Variant]:
    """Replace the A/B variants: none, or 2–4 texts labelled A–D in order. Caller commits."""
    require_editable(campaign, "edit")
    if bodies and not 2 <= len(bodies) <= len(VARIANT_LABELS):
        raise CampaignError("An A/B test has 2 to 4 variants.", "variants")
    if any(not (b or "").strip() for b in bodies):
        raise CampaignError("Every variant needs a text.", "variants")
    for variant in variants_of(campaign):
        db.session.delete(variant)
    db.session.flush()
    made = [
        Variant(shop_id=campaign.shop_id, campaign_id=campaign.id, label=label, body=body)
        for label, body in zip(VARIANT_LABELS, bodies, strict=False)
    ]
    db.session.add_all(made)
    db.session.flush()
    return made


def is_ab(campaign: Campaign) -> bool:
    return campaign.ab_test_percent > 0 and len(variants_of(campaign)) >= 2


# --- the audience -------------------------------------------------------------------------


@dataclass(frozen=True)
class Audience:
    rules: dict[str, Any]
    exclusions: dict[str, Any]
    segment_id: int | None = None
    segment_name: str | None = None


def audience_of(campaign: Campaign) -> Audience | None:
    """Who the campaign is for: its saved segment's rules (or, once started, the snapshot),
    else its own rules; None when nobody was chosen yet."""
    stored = campaign.audience or {}
    exclusions = stored.get("exclusions") or {}
    if campaign.status in ("sending", "sent", "cancelled") and "snapshot_at" in stored:
        return Audience(
            stored["rules"], exclusions, stored.get("segment_id"), stored.get("segment_name")
        )
    if campaign.segment_id is not None:
        segment = Segment.get_for_shop(campaign.shop_id, campaign.segment_id)
        if segment is not None:
            return Audience(segments.validate(segment.rules), exclusions, segment.id, segment.name)
    if stored.get("rules") is not None:
        return Audience(segments.validate(stored["rules"]), exclusions)
    return None


def snapshot_audience(campaign: Campaign, now: datetime) -> Audience:
    """Freeze the rules as they are when the send starts: later segment edits change nothing."""
    audience = audience_of(campaign)
    if audience is None:
        raise CampaignError("Choose who gets this campaign (a segment or rules).", "segment_id")
    campaign.audience = {
        "rules": audience.rules,
        "exclusions": audience.exclusions,
        "segment_id": audience.segment_id,
        "segment_name": audience.segment_name,
        "snapshot_at": now.isoformat(),
    }
    return audience


# --- the merchant's actions ---------------------------------------------------------------


class NotSendable(CampaignError):
    """The review found something that must be fixed before the campaign can go."""

    def __init__(self, issues: list[dict[str, Any]]) -> None:
        super().__init__("; ".join(i["message"] for i in issues), code="not_sendable")
        self.issues = issues


def require_sendable(shop: Shop, campaign: Campaign, *, now: datetime | None = None) -> None:
    """Refuse to schedule or send what the review blocks (too long, no audience...)."""
    from shopify_app.services import estimate  # the review builds on this module

    report = estimate.review(shop, campaign, now=now)
    if report["blocking"]:
        raise NotSendable(report["blocking"])
    cost = Decimal(report.get("total_cost_exact") or report["total_cost"])
    campaign.estimated_cost = cost.quantize(Decimal("0.0001"))


def schedule(
    shop: Shop,
    campaign: Campaign,
    *,
    send_at: str | datetime | None = None,
    local_time: bool | None = None,
    now: datetime | None = None,
) -> Campaign:
    """Switch on: send at `send_at` (or the time already set). Caller commits."""
    now = now or utcnow()
    if local_time is not None:
        campaign.local_time = local_time
    moment = parse_send_at(send_at, shop) if send_at else campaign.send_at
    if moment is None:
        raise CampaignError("Choose when to send (send_at).", "send_at")
    if moment <= now - timedelta(minutes=1):
        raise CampaignError("That time has passed; choose a later time or send now.", "send_at")
    require_sendable(shop, campaign, now=now)
    return transition(campaign, "schedule", now=now, send_at=moment, local_time=campaign.local_time)


def unschedule(campaign: Campaign) -> Campaign:
    """Switch off: back to draft, the send time kept for next time. Caller commits."""
    return transition(campaign, "unschedule")


def send_now(campaign: Campaign, *, now: datetime | None = None) -> Campaign:
    """Start at once (local-time mode does not apply to "now"). Commits."""
    now = now or utcnow()
    require_sendable(db.session.get(Shop, campaign.shop_id), campaign, now=now)
    transition(campaign, "send_now", now=now, local_time=False, send_at=now)
    enqueue_after_commit(START_JOB, campaign.id, queue=CAMPAIGN_QUEUE)
    db.session.commit()
    return campaign


def start(campaign: Campaign, *, now: datetime | None = None) -> Campaign:
    """The engine's move when a scheduled campaign's time came. Commits."""
    transition(campaign, "start", now=now)
    enqueue_after_commit(START_JOB, campaign.id, queue=CAMPAIGN_QUEUE)
    db.session.commit()
    return campaign


def end(campaign: Campaign, *, now: datetime | None = None) -> int:
    """Stop a sending campaign. The status is committed first — the send path checks it when
    it claims rows and while it submits — then every row still waiting is skipped in one
    UPDATE. Texts already sent stay counted. Returns the rows skipped. Commits."""
    transition(campaign, "end", now=now, reason="Ended by the merchant")
    db.session.commit()
    return close_open_rows(campaign, CANCELLED_SKIP)


def fail(campaign: Campaign, reason: str, *, skip_reason: str = CANCELLED_SKIP) -> int:
    """The engine stops a campaign that cannot go on (e.g. its discount codes failed). Commits."""
    transition(campaign, "fail", reason=reason)
    db.session.commit()
    return close_open_rows(campaign, skip_reason)


def close_open_rows(campaign: Campaign, skip_reason: str) -> int:
    now = utcnow()
    skipped = db.session.execute(
        update(Message)
        .where(
            Message.shop_id == campaign.shop_id,
            Message.campaign_id == campaign.id,
            Message.status == "pending",
        )
        .values(status="skipped", skip_reason=skip_reason, lease_expires_at=None, updated_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.commit()
    return int(skipped or 0)


def open_rows(campaign_id: int) -> int:
    return int(
        db.session.scalar(
            select(func.count())
            .select_from(Message)
            .where(Message.campaign_id == campaign_id, Message.status.in_(("pending", "sending")))
        )
        or 0
    )


def finish_if_done(campaign: Campaign) -> bool:
    """sending → sent once every recipient row exists and has an outcome. Commits."""
    if campaign.status != "sending" or campaign.audience_complete_at is None:
        return False
    if open_rows(campaign.id):
        return False
    try:
        transition(campaign, "finish")
    except InvalidTransition:
        db.session.rollback()
        return False
    db.session.commit()
    return True
