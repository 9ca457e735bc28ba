"""Starting a send: the recipients become Message rows in one set-based INSERT … SELECT
(on PostgreSQL a big audience's first insert runs as that statement in a few shares of
subscriber ids at once, one connection each: see `services/insert_shares.py`).

When each row is due depends only on where its subscriber is — time zone(s), country, US
state — so due times are worked out once per distinct place in Python (a few hundred places at
most, with the same quiet-hours rules the send path uses), and joined to the subscriber rows
as a small CTE inside the one statement that inserts them all. Local-time campaigns get the
scheduled wall-clock time in each place's own zone.

Also in that statement: the holdout (a share of the audience, chosen by a hash of subscriber
and campaign, inserted as `skipped`/"holdout" rows for the analytics to compare) and, for an
A/B test, the test share split exactly evenly among the variants (the rest waits for the
winner and is inserted later by the same code).

Unique discount codes need the rows (one code per message) but must exist before a text
leaves: such rows are inserted *held* — due 2 800 years late, a whole number of Gregorian
cycles so the calendar is unchanged — and moved back to their real due time in one UPDATE
once every code is ready.

`advance` is the job body: idempotent, under a per-campaign lock, it does whatever is next
(shared code, rows, unique codes, release, hand over to the send path).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import current_app
from redis.exceptions import LockError
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    String,
    and_,
    case,
    func,
    literal,
    or_,
    select,
    text,
    union_all,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from shopify_app.extensions import db, get_redis
from shopify_app.models import Campaign, Message, Shop, Subscriber, utcnow
from shopify_app.models.base import UTCDateTime
from shopify_app.services import campaigns, insert_shares, segments, send_checks
from shopify_app.services.bulk import is_postgresql
from shopify_app.services.send_checks import Place, ShopRules

log = logging.getLogger(__name__)

HOLD_YEARS = 2800  # 7 × 400: the Gregorian calendar repeats exactly
HOLD_FLOOR = datetime(4000, 1, 1, tzinfo=UTC)
PREFIX_LEN = 5  # "+1212": country code and, in North America, the area code
LOCK_SECONDS = 900
HOLDOUT_SALT = 7919
AB_SALT = 104729


# --- places and their due times -----------------------------------------------------------


@dataclass(frozen=True)
class PlaceGroup:
    """Subscribers who share a place, and when their text is due."""

    timezone: str  # '' when the subscriber has none (the phone number decides, as at send)
    country: str
    region: str
    prefix: str  # phone prefix, only when time zone or country must come from the number
    count: int
    place: Place
    due: datetime
    impossible: bool = False  # quiet hours never open here; the send path will skip them
    low_id: int = 0  # the group's lowest and highest subscriber id (for the insert's shares)
    high_id: int = 0


def place_columns() -> tuple[Any, Any, Any, Any]:
    """The grouping key of a subscriber's place (stored values; '' for none)."""
    tz = func.coalesce(Subscriber.timezone, "")
    country = func.coalesce(Subscriber.country, "")
    region = func.coalesce(Subscriber.region, "")
    prefix = case(
        (or_(tz == "", country == ""), func.substr(Subscriber.phone, 1, PREFIX_LEN)), else_=""
    )
    return tz, country, region, prefix


def place_of_group(
    timezone: str, country: str, region: str, phone: str | None, rules: ShopRules
) -> Place:
    """The same place the send path will find for a subscriber of this group."""
    sub = SimpleNamespace(
        timezone=timezone or None, country=country or None, region=region or None, phone=phone or ""
    )
    return send_checks.place_of(sub, rules)


def local_instant(wall: datetime, zones: Sequence[str]) -> datetime:
    """The UTC instant a naive wall-clock time is reached in every one of `zones` (the latest
    of them: someone who may be in two zones gets it when it is that time in both). A time
    skipped by a DST change is read with the offset before the change (02:30 → 03:30)."""
    instants = []
    for name in zones or ("UTC",):
        try:
            tz = ZoneInfo(name)
        except ZoneInfoNotFoundError:
            tz = ZoneInfo("UTC")
        instants.append(wall.replace(tzinfo=tz, fold=0).astimezone(UTC))
    return max(instants)


def due_in_place(base: datetime, place: Place, rules: ShopRules) -> tuple[datetime, bool]:
    """`base`, or the next minute the send path would accept (quiet hours, legal windows):
    the send path's own timing rule, asked once per place. (due, impossible)."""
    timing = send_checks.marketing_timing(base, place, rules)
    if timing.impossible:
        return base, True
    return (timing.defer_until or base), False


def place_groups(
    shop: Shop,
    where: ColumnElement[bool],
    *,
    rules: ShopRules,
    base_due: Callable[[Place], datetime],
    now: datetime,
) -> list[PlaceGroup]:
    """The audience's distinct places with their counts and due times (one GROUP BY)."""
    tz, country, region, prefix = place_columns()
    rows = db.session.execute(
        select(
            tz,
            country,
            region,
            prefix,
            func.min(Subscriber.phone),
            func.count(),
            func.min(Subscriber.id),
            func.max(Subscriber.id),
        )
        .where(where)
        .group_by(tz, country, region, prefix)
    ).all()
    groups = []
    for zone, ctry, reg, pfx, phone, n, low, high in rows:
        place = place_of_group(zone, ctry, reg, phone, rules)
        due, impossible = due_in_place(max(base_due(place), now), place, rules)
        groups.append(
            PlaceGroup(zone, ctry, reg, pfx, int(n), place, due, impossible, int(low), int(high))
        )
    return groups


def base_due_for(
    campaign: Campaign, shop: Shop, phase: str, now: datetime
) -> Callable[[Place], datetime]:
    """When the text would go before quiet hours: now, or for a local-time campaign the
    scheduled wall-clock time in the place's zone(s). The winner of an A/B test goes now."""
    if phase != "rest" and campaign.local_time and campaign.send_at is not None:
        wall = campaign.send_at.astimezone(campaigns.shop_zone(shop)).replace(tzinfo=None)
        return lambda place: local_instant(wall, place.zones)
    start = max(campaign.send_at or now, now) if phase != "rest" else now
    return lambda place: start


def starts_at(campaign: Campaign, shop: Shop) -> datetime | None:
    """When the engine should start a scheduled campaign: its time, or for local time the
    moment the earliest zone on Earth (UTC+14) reaches that wall-clock time."""
    if campaign.send_at is None:
        return None
    if not campaign.local_time:
        return campaign.send_at
    wall = campaign.send_at.astimezone(campaigns.shop_zone(shop)).replace(tzinfo=None)
    return wall.replace(tzinfo=UTC) - timedelta(hours=14)


# --- the insert ---------------------------------------------------------------------------


def _hash(salt: int, multiplier: int) -> Any:
    """A deterministic pseudo-random 32-bit value per (subscriber, campaign), the same on
    PostgreSQL and SQLite (64-bit integer arithmetic that cannot overflow)."""
    return ((Subscriber.id % 2147483648) * multiplier + salt) % 4294967296


def holdout_flag(campaign_id: int, percent: int) -> Any:
    """1 for the held-out share (hash bucket 0..99 below `percent`), else 0."""
    if percent <= 0:
        return literal(0)
    bucket = (_hash(campaign_id * HOLDOUT_SALT, 2654435761) // 65536) % 100
    return case((bucket < percent, 1), else_=0)


def _shift(due: datetime) -> datetime:
    return due.replace(year=due.year + HOLD_YEARS)


def _groups_cte(groups: Sequence[PlaceGroup], hold: bool) -> Any:
    def row(g: PlaceGroup) -> Any:
        return select(
            literal(g.timezone, String()).label("tz"),
            literal(g.country, String()).label("country"),
            literal(g.region, String()).label("region"),
            literal(g.prefix, String()).label("prefix"),
            literal(g.due, UTCDateTime()).label("due_at"),
            literal(_shift(g.due) if hold else g.due, UTCDateTime()).label("send_due_at"),
        )

    selects = [row(g) for g in groups]
    return (selects[0] if len(selects) == 1 else union_all(*selects)).cte("place_due")


@dataclass
class Materialised:
    inserted: int
    groups: list[PlaceGroup]

    @property
    def last_due(self) -> datetime | None:
        return max((g.due for g in self.groups), default=None)

    @property
    def first_due(self) -> datetime | None:
        return min((g.due for g in self.groups), default=None)


def audience_where(
    shop: Shop, campaign: Campaign, audience: campaigns.Audience, now: datetime
) -> ColumnElement[bool]:
    """The campaign's sendable audience. Those who already have a row for this campaign (the
    A/B test's recipients and the held-out, when the rest goes out) are left out by the
    insert's ON CONFLICT on (campaign_id, subscriber_id), not by a NOT EXISTS here: an
    INSERT … SELECT whose SELECT reads the table it writes may scan every row it has just
    added, once per row, when the planner takes that table for empty (a first campaign, or
    statistics not refreshed yet) — minutes instead of seconds."""
    ctx = segments.Context(shop.id, shop.timezone or "UTC", now)
    return segments.audience_condition(audience.rules, audience.exclusions, ctx)


def materialise(
    shop: Shop,
    campaign: Campaign,
    audience: campaigns.Audience,
    *,
    phase: str,
    now: datetime,
    variant_ids: Sequence[int] = (),
    winner_id: int | None = None,
    hold: bool = False,
    rules: ShopRules | None = None,
) -> Materialised:
    """Insert the recipient rows of one phase in one statement. Caller commits. (On
    PostgreSQL, a big first insert whose caller has written nothing uncommitted runs in
    shares, the others committed on connections of their own: see `insert_shares`.)

    phase "all": everyone (with `winner_id` None, or a single variant); "test": the holdout
    and the A/B test share split among `variant_ids`; "rest": everyone still without a row
    (after the winner was chosen), with the winner's text.
    """
    rules = rules or send_checks.shop_rules(shop, current_app.config)
    segments.without_jit()  # as for a segment count: compiling would cost more than it saves
    where = audience_where(shop, campaign, audience, now)
    groups = place_groups(
        shop, where, rules=rules, base_due=base_due_for(campaign, shop, phase, now), now=now
    )
    if not groups:
        return Materialised(0, [])
    g = _groups_cte(groups, hold)
    tz, country, region, prefix = place_columns()
    joined = Subscriber.__table__.join(
        g, and_(tz == g.c.tz, country == g.c.country, region == g.c.region, prefix == g.c.prefix)
    )
    held = holdout_flag(campaign.id, campaign.holdout_percent)
    stamp = literal(now, UTCDateTime())
    postgres = is_postgresql(db.session)
    insert = pg_insert if postgres else sqlite_insert

    def statement(part: ColumnElement[bool] | None = None) -> Any:
        """The INSERT … SELECT of the phase's rows; `part` narrows the audience to a share."""
        assert part is None or phase != "test", "the A/B test share ranks the whole audience"
        if phase == "test":
            rows = _test_rows(joined, where, g, held, campaign, variant_ids)
        else:
            rows = (
                select(
                    Subscriber.id.label("sid"),
                    g.c.due_at,
                    g.c.send_due_at,
                    held.label("held"),
                    literal(winner_id, BigInteger()).label("variant_id"),
                )
                .select_from(joined)
                .where(where if part is None else and_(where, part))
                .subquery("aud")
            )
        is_held = rows.c.held == 1
        select_rows = select(
            literal(shop.id),
            rows.c.sid,
            literal("campaign"),
            literal(campaign.id),
            case((is_held, None), else_=rows.c.variant_id),
            case((is_held, "skipped"), else_="pending"),
            case((is_held, "holdout"), else_=None),
            literal(True),
            case((is_held, rows.c.due_at), else_=rows.c.send_due_at),
            literal(0),
            stamp,
            stamp,
        ).where(rows.c.sid.is_not(None))
        if phase == "test":
            pct = int(campaign.ab_test_percent)
            select_rows = select_rows.where(or_(is_held, rows.c.rn * 100 <= rows.c.total * pct))
        return insert(Message.__table__).from_select(_ROW_COLUMNS, select_rows)

    before = campaign_rows(campaign.id)
    if before:
        # Only the rest of an A/B test (or a run repeated after its commit) meets rows that
        # are there already. A first insert goes without ON CONFLICT, whose speculative
        # insertion costs a third of the statement; should a second run ever race it, the
        # unique (campaign_id, subscriber_id) fails that run, which is then retried.
        inserted = _execute(statement().on_conflict_do_nothing(), postgres, campaign.id, before)
    elif postgres and phase != "test" and insert_shares.worth_it(sum(gr.count for gr in groups)):
        # The A/B test share ranks the whole audience, so it is never split.
        low = min(gr.low_id for gr in groups)
        high = max(gr.high_id for gr in groups)
        inserted = insert_shares.insert_in_shares(
            [statement(part) for part in insert_shares.id_ranges(Subscriber.id, low, high)]
        )
    else:
        inserted = _execute(statement(), postgres, campaign.id, before)
    log.info(
        "campaign %s: %s rows inserted (%s phase, %d places)",
        campaign.id,
        inserted,
        phase,
        len(groups),
    )
    return Materialised(int(inserted or 0), groups)


_ROW_COLUMNS = [
    "shop_id",
    "subscriber_id",
    "kind",
    "campaign_id",
    "variant_id",
    "status",
    "skip_reason",
    "marketing",
    "due_at",
    "attempts",
    "created_at",
    "updated_at",
]


def _execute(stmt: Any, postgres: bool, campaign_id: int, before: int) -> int:
    result = db.session.execute(stmt, execution_options={"preserve_rowcount": True})
    # pysqlite reports no count for INSERT … WITH: there the rows are counted (index-only).
    return int(result.rowcount if postgres else campaign_rows(campaign_id) - before)


def _test_rows(
    joined: Any,
    where: ColumnElement[bool],
    g: Any,
    held: Any,
    campaign: Campaign,
    variant_ids: Sequence[int],
) -> Any:
    """Everyone ranked by a second hash within held / not held; the first `pct` % of the
    others form the test, assigned to the variants in turn (exactly even)."""
    aud = (
        select(
            Subscriber.id.label("sid"),
            g.c.due_at,
            g.c.send_due_at,
            held.label("held"),
            _hash(campaign.id * AB_SALT, 2246822519).label("ah"),
        )
        .select_from(joined)
        .where(where)
        .subquery("aud")
    )
    rn = func.row_number().over(partition_by=aud.c.held, order_by=(aud.c.ah, aud.c.sid))
    ranked = select(
        aud.c.sid,
        aud.c.due_at,
        aud.c.send_due_at,
        aud.c.held,
        rn.label("rn"),
        func.count().over(partition_by=aud.c.held).label("total"),
    ).subquery("ranked")
    n = len(variant_ids)
    variant = case(*[(((ranked.c.rn - 1) % n) == i, vid) for i, vid in enumerate(variant_ids)])
    return select(
        ranked.c.sid,
        ranked.c.due_at,
        ranked.c.send_due_at,
        ranked.c.held,
        ranked.c.rn,
        ranked.c.total,
        variant.label("variant_id"),
    ).subquery("test")


# --- held rows ----------------------------------------------------------------------------


def campaign_rows(campaign_id: int) -> int:
    return int(
        db.session.scalar(
            select(func.count()).select_from(Message).where(Message.campaign_id == campaign_id)
        )
        or 0
    )


def held_rows(campaign_id: int) -> int:
    return int(
        db.session.scalar(
            select(func.count())
            .select_from(Message)
            .where(
                Message.campaign_id == campaign_id,
                Message.status == "pending",
                Message.due_at >= HOLD_FLOOR,
            )
        )
        or 0
    )


def release_held(campaign: Campaign) -> int:
    """Move held rows back to their real due time (one UPDATE). Caller commits."""
    params: dict[str, Any] = {
        "cid": campaign.id,
        "shop": campaign.shop_id,
        "floor": HOLD_FLOOR,
        "years": HOLD_YEARS,
    }
    if is_postgresql(db.session):
        # In UTC: the shift was added to UTC instants, whatever the session's zone.
        sql = (
            "UPDATE message SET due_at = timezone('UTC', timezone('UTC', due_at) "
            "- make_interval(years => :years)) "
            "WHERE campaign_id = :cid AND shop_id = :shop AND status = 'pending' "
            "AND due_at >= :floor"
        )
    else:
        # SQLite stores 'YYYY-MM-DD HH:MM:SS.ffffff': take the years off the year digits.
        params["floor"] = HOLD_FLOOR.replace(tzinfo=None).isoformat(sep=" ")
        sql = (
            "UPDATE message SET due_at = printf('%04d', CAST(substr(due_at, 1, 4) AS INTEGER)"
            " - :years) || substr(due_at, 5) "
            "WHERE campaign_id = :cid AND shop_id = :shop AND status = 'pending' "
            "AND due_at >= :floor"
        )
    return int(db.session.execute(text(sql), params).rowcount or 0)


def count_recipients(campaign_id: int) -> int:
    """Rows that are meant to be texted (everything but the held-out ones)."""
    return int(
        db.session.scalar(
            select(func.count())
            .select_from(Message)
            .where(
                Message.campaign_id == campaign_id,
                or_(Message.skip_reason.is_(None), Message.skip_reason != "holdout"),
            )
        )
        or 0
    )


# --- the driver ---------------------------------------------------------------------------


@dataclass
class Step:
    """What one `advance` run did."""

    campaign_id: int
    outcome: str  # idle | busy | waiting_discount | failed | sending
    inserted: int = 0
    released: int = 0


def _discount_ready(campaign: Campaign) -> bool | None:
    """True: codes ready (or none needed); None: try again later; False: the campaign was
    stopped because the codes cannot be made."""
    from shopify_app.services.discounts import prepare_campaign_discount

    result = prepare_campaign_discount(campaign.id)
    db.session.refresh(campaign)
    if result.ok:
        return True
    if result.retryable:
        log.info("campaign %s: discount not ready yet (%s)", campaign.id, result.reason)
        return None
    if campaign.status == "sending":
        campaigns.fail(
            campaign,
            f"Discount codes could not be created: {result.reason}",
            skip_reason=campaigns.DISCOUNT_FAILED_SKIP,
        )
    return False


def advance(campaign_id: int, *, now: datetime | None = None) -> Step:
    """Do whatever is next for a sending campaign; safe to run again at any point."""
    campaign = db.session.get(Campaign, campaign_id)
    if campaign is None or campaign.status != "sending":
        return Step(campaign_id, "idle")
    lock = get_redis().lock(
        f"tidings:lock:campaign:{campaign_id}", timeout=LOCK_SECONDS, blocking_timeout=0
    )
    if not lock.acquire():
        return Step(campaign_id, "busy")
    try:
        return _advance_locked(campaign, now or utcnow())
    finally:
        try:
            lock.release()
        except LockError:
            log.warning("campaign %s: start lock expired before release", campaign_id)


def _advance_locked(campaign: Campaign, now: datetime) -> Step:
    from shopify_app.services import ab_test
    from shopify_app.services.sending import schedule_sending

    db.session.refresh(campaign)
    if campaign.status != "sending":
        return Step(campaign.id, "idle")
    shop = db.session.get(Shop, campaign.shop_id)
    assert shop is not None
    step = Step(campaign.id, "sending")
    unique = campaign.discount_mode == "unique"
    if campaign.materialized_at is None:
        # A shared code needs no rows: make it first, so nothing is ever held for it.
        if campaign.discount_mode == "shared":
            ready = _discount_ready(campaign)
            if not ready:
                return Step(campaign.id, "waiting_discount" if ready is None else "failed")
        try:
            audience = campaigns.snapshot_audience(campaign, now)
        except campaigns.CampaignError as exc:
            campaigns.fail(campaign, exc.message)
            return Step(campaign.id, "failed")
        # Committed before the insert: on PostgreSQL each new row's foreign-key check locks
        # the campaign row, and locking a row this transaction has updated costs more with
        # every lock (minutes for 50 000 rows instead of seconds). A run cut off after this
        # finds the same snapshot again.
        db.session.commit()
        variants = campaigns.variants_of(campaign)
        testing = campaign.ab_test_percent > 0 and len(variants) >= 2
        single = variants[0].id if len(variants) == 1 else None
        done = materialise(
            shop,
            campaign,
            audience,
            phase="test" if testing else "all",
            now=now,
            variant_ids=[v.id for v in variants],
            winner_id=single,
            hold=unique,
        )
        step.inserted = done.inserted
        campaign.materialized_at = now
        if testing:
            wait = timedelta(minutes=max(0, campaign.ab_wait_minutes))
            campaign.ab_decide_at = (done.last_due or now) + wait
        else:
            campaign.audience_complete_at = now
        campaign.recipients_count = count_recipients(campaign.id)
        db.session.commit()
    elif campaign.winner_variant_id is not None and campaign.audience_complete_at is None:
        audience = campaigns.audience_of(campaign)
        assert audience is not None  # a started campaign always has its snapshot
        done = materialise(
            shop,
            campaign,
            audience,
            phase="rest",
            now=now,
            winner_id=campaign.winner_variant_id,
            hold=unique,
        )
        step.inserted = done.inserted
        campaign.audience_complete_at = now
        campaign.recipients_count = count_recipients(campaign.id)
        db.session.commit()
    if unique and held_rows(campaign.id):
        ready = _discount_ready(campaign)
        if not ready:
            return Step(
                campaign.id, "waiting_discount" if ready is None else "failed", step.inserted
            )
        step.released = release_held(campaign)
        db.session.commit()
    schedule_sending(shop.id)
    if ab_test.is_waiting(campaign):
        log.info("campaign %s: A/B test out; winner due at %s", campaign.id, campaign.ab_decide_at)
    return step


def due_to_start(now: datetime, limit: int = 200) -> list[Campaign]:
    """Scheduled campaigns whose start time came (local-time ones up to 14 h early)."""
    horizon = now + timedelta(hours=26)
    rows = db.session.scalars(
        select(Campaign)
        .where(Campaign.status == "scheduled", Campaign.send_at <= horizon)
        .order_by(Campaign.send_at)
        .limit(limit)
    )
    due = []
    for campaign in rows:
        shop = db.session.get(Shop, campaign.shop_id)
        start = starts_at(campaign, shop) if shop is not None else None
        if start is not None and start <= now:
            due.append(campaign)
    return due
