"""Starting a send: rows materialised set-based with due times per place (local time across
DST, quiet hours), the holdout, idempotence, held rows for unique codes, discount failures,
and the watch noticing a start that stopped moving."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, literal, select
from sqlalchemy.exc import DBAPIError

from jobs import campaigns as campaign_jobs
from shopify_app.extensions import db
from shopify_app.models import Message, OutboxMessage, Shop, Subscriber, utcnow
from shopify_app.services import campaign_start, campaigns, insert_shares
from tests.integration.campaign_support import (
    campaign,
    reload,
    rows_of,
    statuses,
    subscriber,
    subscribers,
)
from tests.integration.send_support import fast_shop, id_of, night_zone

ZONES = ("America/New_York", "America/Los_Angeles", "Europe/London")


def start_rows(shop: Shop, row, now: datetime, **kw) -> campaign_start.Materialised:
    audience = campaigns.snapshot_audience(row, now)
    db.session.commit()  # as the start job does: the insert reads committed data only
    done = campaign_start.materialise(shop, row, audience, phase="all", now=now, **kw)
    db.session.commit()
    return done


@pytest.mark.parametrize(
    ("wall", "now"),
    [
        # US clocks go forward on 8 March 2026 (London on 29 March): the day before, New York is
        # still on EST, but 10:00 on the 8th is EDT.
        (datetime(2026, 3, 8, 10, 0), datetime(2026, 3, 7, 12, 0, tzinfo=UTC)),
        # ... and back on 1 November 2026 (London already on GMT since 25 October).
        (datetime(2026, 11, 1, 10, 0), datetime(2026, 10, 31, 12, 0, tzinfo=UTC)),
    ],
)
def test_local_time_lands_at_the_wall_clock_hour_across_dst(
    shop: Shop, wall: datetime, now: datetime
) -> None:
    """Each zone gets 10:00 on that date in its own zone, whatever the offset was at 'now'."""
    for i, zone in enumerate(ZONES):
        subscriber(
            shop,
            f"+1202555{i:04d}",
            timezone=zone,
            country="GB" if zone.startswith("Europe") else "US",
        )
    send_at = wall.replace(tzinfo=ZoneInfo(shop.timezone)).astimezone(UTC)
    row = campaign(shop, status="sending", local_time=True, send_at=send_at)
    start_rows(shop, row, now)
    by_zone = {
        db.session.get(Subscriber, m.subscriber_id).timezone: m.due_at for m in rows_of(row.id)
    }
    assert set(by_zone) == set(ZONES)
    for zone, due in by_zone.items():
        local = due.astimezone(ZoneInfo(zone))
        assert (local.date(), local.hour, local.minute) == (wall.date(), 10, 0), zone
    # Spread over the day: London first, then New York, then Los Angeles.
    assert by_zone["Europe/London"] < by_zone["America/New_York"] < by_zone["America/Los_Angeles"]
    # The engine starts the campaign when the earliest zone on Earth reaches that time.
    start = campaign_start.starts_at(reload(row), shop)
    assert start == wall.replace(tzinfo=UTC) - timedelta(hours=14)


def test_local_time_already_past_in_a_zone_goes_now(shop: Shop) -> None:
    """If a zone's 10:00 has passed when the send starts, that zone goes at once."""
    subscriber(shop, "+12025550001", timezone="Europe/London", country="GB")
    subscriber(shop, "+12025550002", timezone="America/Los_Angeles")
    send_at = datetime(2026, 3, 8, 10, 0, tzinfo=ZoneInfo(shop.timezone))
    now = datetime(2026, 3, 8, 12, 30, tzinfo=UTC)  # 12:30 in London, 05:30 in LA
    row = campaign(shop, status="sending", local_time=True, send_at=send_at)
    start_rows(shop, row, now)
    dues = {db.session.get(Subscriber, m.subscriber_id).timezone: m.due_at for m in rows_of(row.id)}
    assert dues["Europe/London"] == now
    assert dues["America/Los_Angeles"].astimezone(ZoneInfo("America/Los_Angeles")).hour == 10


def test_send_now_in_quiet_hours_waits_for_the_window(shop: Shop) -> None:
    """A recipient whose night it is gets a due time at the start of their sending window."""
    zone = night_zone()
    subscriber(shop, "+12025550001", timezone=zone)
    day = subscriber(shop, "+12025550002")
    now = utcnow()
    row = campaign(shop, status="sending")
    start_rows(shop, row, now)
    rows = {m.subscriber_id: m for m in rows_of(row.id)}
    assert rows[day.id].due_at == now
    waiting = [m for sid, m in rows.items() if sid != day.id][0]
    local = waiting.due_at.astimezone(ZoneInfo(zone))
    assert waiting.due_at > now and (local.hour, local.minute) == (8, 0)


def test_holdout_is_deterministic_and_start_is_idempotent(shop: Shop) -> None:
    """20 % held out by a hash of (subscriber, campaign); running the start again inserts
    nothing and holds out the same people."""
    subscribers(shop, 300)
    subscriber(shop, "+13035550001", status="unsubscribed")
    row = campaign(shop, status="sending", holdout_percent=20)
    now = utcnow()
    first = start_rows(shop, row, now)
    assert first.inserted == 300
    held = {m.subscriber_id for m in rows_of(row.id) if m.skip_reason == "holdout"}
    assert 30 <= len(held) <= 90
    assert all(m.status == "skipped" for m in rows_of(row.id) if m.subscriber_id in held)
    again = campaign_start.materialise(shop, row, campaigns.audience_of(row), phase="all", now=now)
    db.session.commit()
    assert again.inserted == 0
    assert {m.subscriber_id for m in rows_of(row.id) if m.skip_reason == "holdout"} == held
    assert campaign_start.count_recipients(row.id) == 300 - len(held)


def test_exclusions_and_snapshot(shop: Shop, run_jobs) -> None:
    """The audience is frozen at the start; exclusions apply; only subscribed numbers."""
    fast_shop(shop)
    subs = [s.id for s in subscribers(shop, 3)]
    db.session.add(
        Message(
            shop_id=shop.id,
            subscriber_id=subs[0],
            kind="flow",
            status="sent",
            due_at=utcnow(),
            sent_at=utcnow(),
        )
    )
    db.session.commit()
    row = campaign(
        shop, audience={"rules": {"builtin": "all"}, "exclusions": {"messaged_within_hours": 6}}
    )
    campaigns.send_now(row)
    run_jobs()
    row = reload(row)
    assert row.audience["snapshot_at"] and row.audience["exclusions"] == {
        "messaged_within_hours": 6
    }
    assert {m.subscriber_id for m in rows_of(row.id)} == {subs[1], subs[2]}


def test_unique_codes_hold_rows_until_released(shop: Shop) -> None:
    """Rows waiting for unique codes are due 2 800 years late, and the release puts each back
    to its own due time."""
    subscriber(shop, "+12025550001")
    subscriber(shop, "+12025550002", timezone=night_zone())
    row = campaign(shop, status="sending")
    now = utcnow().replace(microsecond=0)
    done = start_rows(shop, row, now, hold=True)
    real = sorted(g.due for g in done.groups)
    held = sorted(m.due_at for m in rows_of(row.id))
    assert all(d.year >= 4000 for d in held)
    assert campaign_start.held_rows(row.id) == 2
    assert campaign_start.release_held(row) == 2
    db.session.commit()
    assert sorted(m.due_at for m in rows_of(row.id)) == real
    assert campaign_start.held_rows(row.id) == 0


def test_discount_failure_ends_the_campaign_and_sends_nothing(shop: Shop, run_jobs) -> None:
    """Codes that cannot be made stop the send before anything leaves, with the reason."""
    fast_shop(shop)
    subscribers(shop, 3)
    row = campaign(
        shop,
        "Take {discount_code}",
        discount_mode="unique",
        discount_config={"value_type": "percentage", "value": "15"},
    )
    campaigns.send_now(row)
    db.session.execute(
        db.text("UPDATE campaign SET discount_config = '{}' WHERE id = :i"), {"i": id_of(row)}
    )
    db.session.commit()
    run_jobs()
    row = reload(row)
    assert row.status == "cancelled"
    assert "Discount codes could not be created" in row.status_reason
    assert statuses(row.id) == {"skipped": 3}
    assert {m.skip_reason for m in rows_of(row.id)} == {"discount_failed"}
    assert db.session.scalar(select(func.count()).select_from(OutboxMessage)) == 0


def test_watch_pushes_a_start_that_stopped_moving(shop: Shop, run_jobs) -> None:
    """A sending campaign whose start never ran (its job was lost) is started again."""
    fast_shop(shop)
    subscribers(shop, 2)
    row = campaign(shop, status="sending", started_at=utcnow() - timedelta(minutes=5))
    report = campaign_jobs.watch()
    assert report["nudged"] == 1
    assert campaign_jobs.watch()["nudged"] == 0  # once a minute at most
    run_jobs()
    assert statuses(id_of(row)) == {"sent": 2}
    assert campaign_jobs.watch()["finished"] == 1
    assert reload(row).status == "sent"


def test_watch_notices_rows_nobody_sends(shop: Shop, caplog) -> None:
    """Due rows waiting for minutes mean the senders stopped: the watch says so and
    schedules them."""
    row = campaign(
        shop,
        status="sending",
        materialized_at=utcnow(),
        audience_complete_at=utcnow(),
        started_at=utcnow() - timedelta(minutes=10),
    )
    sub = subscribers(shop, 1)[0]
    db.session.add(
        Message(
            shop_id=shop.id,
            subscriber_id=sub.id,
            campaign_id=row.id,
            kind="campaign",
            status="pending",
            due_at=utcnow() - timedelta(minutes=5),
        )
    )
    db.session.commit()
    with caplog.at_level("WARNING"):
        assert campaign_jobs.watch()["stalled"] == 1
    assert "stopped moving" in caplog.text


def _postgresql_only() -> None:
    if db.engine.dialect.name != "postgresql":
        pytest.skip("the insert in shares runs on PostgreSQL only")


def _row_facts(campaign_id: int) -> list[tuple]:
    return sorted(
        (m.subscriber_id, m.status, m.skip_reason, m.due_at, m.variant_id)
        for m in rows_of(campaign_id)
    )


def test_a_big_first_insert_in_shares_makes_the_rows_one_statement_makes(
    shop: Shop, monkeypatch
) -> None:
    """Past PARALLEL_FROM rows the first insert runs in shares on their own connections: the
    same rows, holdout and due times as the single statement, each subscriber once."""
    _postgresql_only()
    subscribers(shop, 120)
    subscribers(shop, 40, prefix="+1303555", timezone=night_zone())
    row = campaign(shop, status="sending", holdout_percent=20)
    now = utcnow().replace(microsecond=0)
    monkeypatch.setattr(insert_shares, "PARALLEL_FROM", 1)
    monkeypatch.setattr(insert_shares, "PARTS", 3)
    assert start_rows(shop, row, now).inserted == 160
    in_shares = _row_facts(row.id)
    assert len({facts[0] for facts in in_shares}) == 160
    db.session.execute(Message.__table__.delete().where(Message.campaign_id == row.id))
    db.session.commit()
    monkeypatch.setattr(insert_shares, "PARALLEL_FROM", 10**9)
    again = campaign_start.materialise(shop, row, campaigns.audience_of(row), phase="all", now=now)
    db.session.commit()
    assert again.inserted == 160
    assert _row_facts(row.id) == in_shares
    assert 10 <= sum(1 for facts in in_shares if facts[2] == "holdout") <= 55


def _rows_seen_elsewhere(campaign_id: int) -> int:
    """The campaign's rows as another connection sees them (committed ones only)."""
    with db.engine.connect() as conn:
        return conn.scalar(
            select(func.count()).select_from(Message).where(Message.campaign_id == campaign_id)
        )


def _started(shop: Shop, row, now: datetime):  # noqa: ANN202
    audience = campaigns.snapshot_audience(row, now)
    db.session.commit()
    return audience


def test_shares_commit_together_and_not_before_every_share_inserted(
    shop: Shop, monkeypatch
) -> None:
    """The other share commits once the caller's share is in, so another connection sees
    its rows before the caller commits; with uncommitted writes in the caller's transaction
    the insert is one statement, invisible until the caller commits."""
    _postgresql_only()
    subscribers(shop, 100)
    monkeypatch.setattr(insert_shares, "PARALLEL_FROM", 1)
    now = utcnow()
    in_shares = campaign(shop, status="sending")
    done = campaign_start.materialise(
        shop, in_shares, _started(shop, in_shares, now), phase="all", now=now
    )
    assert done.inserted == 100
    assert 0 < _rows_seen_elsewhere(in_shares.id) < 100  # the other share, committed
    db.session.commit()
    assert _rows_seen_elsewhere(in_shares.id) == 100

    dirty = campaign(shop, status="sending")
    audience = campaigns.snapshot_audience(dirty, now)  # written, not committed
    done = campaign_start.materialise(shop, dirty, audience, phase="all", now=now)
    assert done.inserted == 100
    assert _rows_seen_elsewhere(dirty.id) == 0
    db.session.commit()
    assert _rows_seen_elsewhere(dirty.id) == 100


def test_when_the_callers_share_fails_no_share_commits(shop: Shop, monkeypatch) -> None:
    _postgresql_only()
    subscribers(shop, 100)
    row = campaign(shop, status="sending")
    now = utcnow()
    monkeypatch.setattr(insert_shares, "PARALLEL_FROM", 1)
    audience = _started(shop, row, now)
    real_execute = db.session.execute

    def failing_insert(statement, *args, **kwargs):
        if getattr(statement, "is_insert", False):
            raise RuntimeError("the worker died mid-insert")
        return real_execute(statement, *args, **kwargs)

    monkeypatch.setattr(db.session, "execute", failing_insert)
    with pytest.raises(RuntimeError):
        campaign_start.materialise(shop, row, audience, phase="all", now=now)
    monkeypatch.undo()
    db.session.rollback()
    assert _rows_seen_elsewhere(row.id) == 0
    monkeypatch.setattr(insert_shares, "PARALLEL_FROM", 1)
    retry = campaign_start.materialise(shop, row, audience, phase="all", now=now)
    db.session.commit()
    assert retry.inserted == 100 == _rows_seen_elsewhere(row.id)


def test_when_another_share_fails_the_start_fails_and_nothing_is_kept(
    shop: Shop, monkeypatch
) -> None:
    _postgresql_only()
    subscribers(shop, 100)
    row = campaign(shop, status="sending")
    now = utcnow()
    monkeypatch.setattr(insert_shares, "PARALLEL_FROM", 1)
    # The second share divides by zero in PostgreSQL, on its own connection.
    monkeypatch.setattr(
        insert_shares,
        "id_ranges",
        lambda column, low, high: [column >= 0, column / literal(0) > 0],
    )
    audience = _started(shop, row, now)
    with pytest.raises(DBAPIError):
        campaign_start.materialise(shop, row, audience, phase="all", now=now)
    db.session.rollback()
    assert _rows_seen_elsewhere(row.id) == 0


def test_a_crash_after_a_share_committed_is_completed_by_the_retry(shop: Shop) -> None:
    """Rows a share committed before the caller's transaction died: the retry inserts the
    rest once (ON CONFLICT)."""
    _postgresql_only()
    subs = subscribers(shop, 100)
    row = campaign(shop, status="sending")
    now = utcnow()
    audience = _started(shop, row, now)
    db.session.add_all(
        Message(
            shop_id=shop.id,
            subscriber_id=s.id,
            kind="campaign",
            campaign_id=row.id,
            status="pending",
            due_at=now,
        )
        for s in subs[60:]
    )
    db.session.commit()
    retry = campaign_start.materialise(shop, row, audience, phase="all", now=now)
    db.session.commit()
    assert retry.inserted == 60
    assert sorted(m.subscriber_id for m in rows_of(row.id)) == sorted(s.id for s in subs)
