"""Send-time rules in the pipeline: consent re-checked, quiet hours deferred, caps atomic."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from datetime import time as dtime
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from sqlalchemy import select

from shopify_app.extensions import db
from shopify_app.models import Link, Message, Shop, Subscriber, utcnow
from shopify_app.services import send_decide, sending, subscribers
from shopify_app.services.outgoing import queue_message
from tests.integration.send_support import (
    add_campaign,
    add_campaign_messages,
    add_subscribers,
    fast_shop,
    messages,
    night_zone,
)


def test_stop_between_queueing_and_sending_skips_and_sends_nothing(shop, fake_twilio, run_jobs):
    """STOP after the row was queued: the opt-out skips it; nothing reaches Twilio."""
    fast_shop(shop)
    sub = add_subscribers(shop, 1)[0]
    add_campaign_messages(shop, add_campaign(shop), [sub])
    subscribers.unsubscribe(shop, sub, source="keyword", send_confirmation=False)
    db.session.commit()

    sending.schedule_sending(shop.id)
    run_jobs()

    row = messages()[0]
    assert row.status == "skipped" and row.skip_reason in ("opted_out", "unsubscribed")
    assert fake_twilio.messages == []


def test_stop_after_the_row_was_claimed_is_caught_by_the_send_time_check(app, shop, fake_twilio):
    """STOP lands while a worker already holds the row: the send-time re-check skips it."""
    fast_shop(shop)
    sub = add_subscribers(shop, 1)[0]
    add_campaign_messages(shop, add_campaign(shop), [sub])
    claimed = sending.claim(10, shop_id=shop.id)
    assert [r.subscriber_id for r in claimed] == [sub.id]

    subscribers.unsubscribe(
        shop, db.session.get(Subscriber, sub.id), source="keyword", send_confirmation=False
    )
    db.session.commit()
    report = sending.process_claimed(claimed)

    assert report.skipped == 1 and report.sent == 0
    row = messages()[0]
    assert (row.status, row.skip_reason) == ("skipped", "unsubscribed")
    assert fake_twilio.messages == []


def test_pending_subscriber_gets_transactional_but_not_marketing(shop, fake_twilio, run_jobs):
    """A not-yet-confirmed number receives the confirmation request, never a campaign."""
    fast_shop(shop)
    sub = add_subscribers(shop, 1, status="pending")[0]
    phone = sub.phone
    add_campaign_messages(shop, add_campaign(shop), [sub])
    queue_message(
        shop,
        sub,
        kind="transactional",
        template="{brand}: Reply Y to confirm.",
        dedupe_key="confirm-1",
    )
    db.session.commit()

    sending.schedule_sending(shop.id)
    run_jobs()

    by_kind = {r.kind: r for r in messages()}
    assert by_kind["campaign"].skip_reason == "not_subscribed"
    assert by_kind["transactional"].status == "sent"
    assert [m.body for m in fake_twilio.received_to(phone)] == [
        "Tidings Test Shop: Reply Y to confirm."
    ]


def test_marketing_in_quiet_hours_is_deferred_to_the_next_allowed_minute(
    shop, fake_twilio, run_jobs
):
    """At night in the subscriber's zone a campaign text waits for 08:00 there, with a reason."""
    fast_shop(shop)
    zone = night_zone()
    sub = add_subscribers(shop, 1, zone=zone)[0]
    add_campaign_messages(shop, add_campaign(shop), [sub])

    sending.schedule_sending(shop.id)
    run_jobs()

    row = messages()[0]
    assert (row.status, row.deferred_reason) == ("pending", "quiet_hours")
    local = row.due_at.astimezone(ZoneInfo(zone))
    assert (local.hour, local.minute) == (8, 0)
    assert row.due_at > utcnow() and row.sent_at is None and row.claimed_by is None
    assert fake_twilio.messages == []


NEW_YORK = ZoneInfo("America/New_York")


def _tomorrow_at(hour: int, minute: int) -> datetime:
    """Tomorrow's hour:minute on New York's wall clock, as UTC (the send path's `now`)."""
    day = (utcnow().astimezone(NEW_YORK) + timedelta(days=1)).date()
    return datetime.combine(day, dtime(hour, minute), tzinfo=NEW_YORK).astimezone(UTC)


@pytest.mark.parametrize(
    ("region", "quiet_hours", "validity"),
    [
        (None, None, 90 * 60),  # federal: the window closes at 21:00
        ("FL", None, 30 * 60),  # Florida closes at 20:00
        (None, {"start": "08:00", "end": "20:15"}, 45 * 60),  # the merchant closes earlier
    ],
)
def test_validity_period_expires_when_the_recipients_quiet_hours_begin(
    shop, fake_twilio, monkeypatch, region, quiet_hours, validity
):
    """Sent at 19:30 in New York: Twilio gets a ValidityPeriod that ends exactly when the
    recipient's window closes, so its queue can never deliver the text in quiet hours."""
    fast_shop(shop, **({"quiet_hours": quiet_hours} if quiet_hours else {}))
    sub = add_subscribers(shop, 1, zone="America/New_York", region=region)[0]
    add_campaign_messages(shop, add_campaign(shop), [sub])
    at = _tomorrow_at(19, 30)
    monkeypatch.setattr(send_decide, "utcnow", lambda: at)

    assert sending.run(shop.id).sent == 1

    (created,) = fake_twilio.messages
    assert created.validity_period == validity
    row = messages()[0]
    closes = at + timedelta(seconds=validity)
    assert row.sent_at == at and closes.astimezone(NEW_YORK).time() < dtime(21, 1)


def test_too_little_validity_left_waits_for_the_next_window(shop, fake_twilio, monkeypatch):
    """At 20:57 the window closes in three minutes — too short for Twilio's queue to be
    trusted — so the text waits for 08:00 the next morning instead."""
    fast_shop(shop)
    sub = add_subscribers(shop, 1, zone="America/New_York")[0]
    add_campaign_messages(shop, add_campaign(shop), [sub])
    at = _tomorrow_at(20, 57)
    monkeypatch.setattr(send_decide, "utcnow", lambda: at)

    report = sending.run(shop.id)

    assert (report.sent, report.deferred) == (0, 1)
    assert fake_twilio.messages == []
    row = messages()[0]
    assert (row.status, row.deferred_reason) == ("pending", "quiet_hours")
    local = row.due_at.astimezone(NEW_YORK)
    assert (local.date() - at.astimezone(NEW_YORK).date(), local.time()) == (
        timedelta(days=1),
        dtime(8, 0),
    )


def test_transactional_text_is_not_held_by_quiet_hours(shop, fake_twilio, run_jobs):
    """A confirmation answers the shopper's own action: it goes at night, without validity cap."""
    fast_shop(shop)
    sub = add_subscribers(shop, 1, zone=night_zone(), status="pending")[0]
    queue_message(
        shop, sub, kind="transactional", template="Reply Y to confirm", dedupe_key="night-confirm"
    )
    db.session.commit()
    run_jobs()

    assert messages()[0].status == "sent"
    assert fake_twilio.messages[0].validity_period is None


def test_smart_sending_skips_a_recently_texted_subscriber(shop, fake_twilio, run_jobs):
    """A subscriber texted within smart_sending_hours is skipped with the reason."""
    fast_shop(shop, smart_sending_hours=12)
    sub = add_subscribers(shop, 1)[0]
    first, second = add_campaign(shop, name="one"), add_campaign(shop, name="two")
    add_campaign_messages(shop, first, [sub])
    sending.schedule_sending(shop.id)
    run_jobs()
    add_campaign_messages(shop, second, [sub])
    sending.schedule_sending(shop.id)
    run_jobs()

    rows = messages()
    assert [r.status for r in rows] == ["sent", "skipped"]
    assert rows[1].skip_reason == "smart_sending"
    assert len(fake_twilio.messages) == 1


def test_florida_legal_cap_of_three_per_day(shop, fake_twilio, run_jobs):
    """Florida allows three marketing texts per 24 hours; the fourth is skipped (legal_cap)."""
    fast_shop(shop, smart_sending_hours=0)
    sub = add_subscribers(shop, 1, region="FL")[0]
    now = utcnow()
    for i in range(3):
        db.session.add(
            Message(
                shop_id=shop.id,
                subscriber_id=sub.id,
                kind="campaign",
                status="delivered",
                due_at=now,
                sent_at=now - timedelta(hours=i + 1),
                body="earlier",
            )
        )
    db.session.commit()
    add_campaign_messages(shop, add_campaign(shop), [sub])
    sending.schedule_sending(shop.id)
    run_jobs()

    last = messages()[-1]
    assert (last.status, last.skip_reason) == ("skipped", "legal_cap")
    assert fake_twilio.messages == []


def test_merchant_frequency_cap(shop, fake_twilio, run_jobs):
    """The merchant's own cap (1 per 48 h here) skips with reason frequency_cap."""
    fast_shop(shop, smart_sending_hours=0, frequency_caps=[{"count": 1, "hours": 48}])
    sub = add_subscribers(shop, 1)[0]
    db.session.add(
        Message(
            shop_id=shop.id,
            subscriber_id=sub.id,
            kind="flow",
            status="sent",
            due_at=utcnow(),
            sent_at=utcnow() - timedelta(hours=30),
            body="x",
        )
    )
    db.session.commit()
    add_campaign_messages(shop, add_campaign(shop), [sub])
    sending.schedule_sending(shop.id)
    run_jobs()
    assert messages()[-1].skip_reason == "frequency_cap"


def _send_concurrently(app: Flask, groups: list[list[int]]) -> list[sending.BatchReport]:
    """Each group claimed first, then all processed at the same moment in its own thread."""
    barrier = threading.Barrier(len(groups))
    reports: list[sending.BatchReport] = [sending.BatchReport() for _ in groups]
    errors: list[BaseException] = []

    def worker(i: int, ids: list[int]) -> None:
        try:
            with app.app_context():
                claimed = sending.claim(len(ids), ids=ids, me=f"test-worker-{i}")
                barrier.wait(10)
                reports[i] = sending.process_claimed(claimed, me=f"test-worker-{i}")
                db.session.remove()
        except BaseException as exc:  # surfaced below
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=worker, args=(i, ids)) for i, ids in enumerate(groups)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    if errors:
        raise errors[0]
    return reports


def test_two_workers_cannot_both_send_a_capped_out_message(app, shop, fake_twilio):
    """Two campaigns' rows for the same people, sent by two workers at once: smart sending lets
    exactly one text per subscriber through (the cap check is atomic)."""
    fast_shop(shop, smart_sending_hours=12)
    subs = add_subscribers(shop, 40)
    phones = [s.phone for s in subs]
    a = add_campaign_messages(shop, add_campaign(shop, name="A"), subs)
    b = add_campaign_messages(shop, add_campaign(shop, name="B"), subs)
    groups = [[m.id for m in a], [m.id for m in b]]
    db.session.remove()

    reports = _send_concurrently(app, groups)

    assert sum(r.sent for r in reports) == 40
    assert sum(r.reasons.get("smart_sending", 0) for r in reports) == 40
    assert fake_twilio.count_by_to() == {p: 1 for p in phones}
    statuses = db.session.execute(select(Message.subscriber_id, Message.status)).all()
    per_subscriber: dict[int, list[str]] = {}
    for sub_id, status in statuses:
        per_subscriber.setdefault(sub_id, []).append(status)
    assert all(sorted(v) == ["sent", "skipped"] for v in per_subscriber.values())


def test_daily_usage_cap_defers_to_tomorrow(shop, fake_twilio, run_jobs):
    """With a daily cap of 2, the third text waits for the shop's next day."""
    fast_shop(shop, usage_caps={"daily_messages": 2})
    subs = add_subscribers(shop, 3)
    add_campaign_messages(shop, add_campaign(shop), subs)
    sending.schedule_sending(shop.id)
    run_jobs()

    rows = messages()
    assert [r.status for r in rows] == ["sent", "sent", "pending"]
    assert rows[2].deferred_reason == "daily_cap"
    local = rows[2].due_at.astimezone(ZoneInfo("America/New_York"))
    assert (local.hour, local.minute) == (0, 0)
    assert len(fake_twilio.messages) == 2


def test_monthly_spend_cap_skips(shop, fake_twilio, run_jobs):
    """A spend cap below the next text's price skips it (monthly_spend_cap)."""
    fast_shop(shop, usage_caps={"monthly_spend": "0.01"})
    subs = add_subscribers(shop, 2)
    add_campaign_messages(shop, add_campaign(shop), subs)
    sending.schedule_sending(shop.id)
    run_jobs()
    rows = messages()
    assert rows[0].status == "sent"
    assert (rows[1].status, rows[1].skip_reason) == ("skipped", "monthly_spend_cap")


def test_too_long_message_is_skipped_with_its_segment_count(shop, fake_twilio, run_jobs):
    """A text over max_segments is refused with how long it came out."""
    fast_shop(shop, max_segments=2)
    sub = add_subscribers(shop, 1)[0]
    add_campaign_messages(shop, add_campaign(shop, body="x" * 400), [sub])
    sending.schedule_sending(shop.id)
    run_jobs()
    row = messages()[0]
    assert (row.status, row.skip_reason, row.segments) == ("skipped", "too_long", 3)
    assert "3 segments" in row.error_message
    assert fake_twilio.messages == []


def test_links_are_shortened_per_recipient_and_foreign_links_refused(
    shop: Shop, fake_twilio, run_jobs
):
    """Shop links become per-recipient short links; a foreign domain skips the text."""
    fast_shop(shop, smart_sending_hours=0)
    subs = add_subscribers(shop, 2)
    good = add_campaign(shop, body=f"Shop now: https://{shop.domain}/collections/sale.")
    bad = add_campaign(shop, body="Look: https://evil.example.com/x", name="bad")
    good_id, bad_id, domain = good.id, bad.id, shop.domain
    add_campaign_messages(shop, good, subs)
    add_campaign_messages(shop, bad, [subs[0]])
    sending.schedule_sending(shop.id)
    run_jobs()

    rows = messages()
    sent = [r for r in rows if r.campaign_id == good_id]
    links = list(db.session.scalars(select(Link).order_by(Link.id)))
    assert len(links) == 2
    assert {link.message_id for link in links} == {r.id for r in sent}
    for row, link in zip(sent, links, strict=True):
        assert f"Shop now: http://localhost/r/{link.token}.\n" in row.body
        assert len(link.token) == 10 and link.utm_campaign == str(good_id)
        assert link.url == f"https://{domain}/collections/sale"
    refused = next(r for r in rows if r.campaign_id == bad_id)
    assert (refused.status, refused.skip_reason) == ("skipped", "link_not_allowed")
    assert len(fake_twilio.messages) == 2


def test_footer_on_first_marketing_text_only(shop, fake_twilio, run_jobs):
    """The opt-out footer goes on a subscriber's first marketing text, not the next one."""
    fast_shop(shop, smart_sending_hours=0)
    sub = add_subscribers(shop, 1)[0]
    add_campaign_messages(shop, add_campaign(shop, body="First"), [sub])
    sending.schedule_sending(shop.id)
    run_jobs()
    add_campaign_messages(shop, add_campaign(shop, body="Second"), [sub])
    sending.schedule_sending(shop.id)
    run_jobs()
    bodies = [r.body for r in messages()]
    assert bodies == [
        "Tidings Test Shop: First\nReply STOP to opt out",
        "Tidings Test Shop: Second",
    ]


def test_two_workers_running_the_send_loop_at_once_send_each_person_once(app, shop, fake_twilio):
    """The production loop (on PostgreSQL: rows locked with SKIP LOCKED, checked and claimed in
    one transaction) in two threads over two campaigns for the same people, batches of 20 laid
    out so the two workers take A's and B's rows for the same 20 people at the same moment:
    one text each."""
    fast_shop(shop, smart_sending_hours=12)
    subs = add_subscribers(shop, 60)
    phones = [s.phone for s in subs]
    a, b = add_campaign(shop, name="A"), add_campaign(shop, name="B")
    for block in range(0, 60, 20):  # A's rows for 20 people, then B's for the same 20, ...
        add_campaign_messages(shop, a, subs[block : block + 20])
        add_campaign_messages(shop, b, subs[block : block + 20])
    shop_id = shop.id
    app.config["SEND_BATCH_SIZE"] = 20
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            with app.app_context():
                barrier.wait(10)
                sending.run(shop_id)
                db.session.remove()
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    try:
        threads = [threading.Thread(target=worker) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        # Anything left pending behind a busy subscriber. A sweep's second loop can find its
        # batch's people held by the first loop and leave those rows, pending, to a later run
        # (as the next send job would): sweep until a run finds nothing due.
        for _ in range(3):
            if not sending.run(shop_id).claimed:
                break
    finally:
        app.config["SEND_BATCH_SIZE"] = 500
    assert not errors
    assert fake_twilio.count_by_to() == {p: 1 for p in phones}
    statuses = sorted(m.status for m in messages())
    assert statuses == ["sent"] * 60 + ["skipped"] * 60
    assert {m.skip_reason for m in messages() if m.status == "skipped"} == {"smart_sending"}
