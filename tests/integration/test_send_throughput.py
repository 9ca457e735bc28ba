"""The send pipeline's throughput machinery keeps exactly-once: two send loops per worker
(PostgreSQL), outcomes recorded off the submit path, and the send deadline held for texts
that wait in the shared send pool."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select, update

from shopify_app.extensions import db, get_redis
from shopify_app.models import Message, Subscriber, utcnow
from shopify_app.providers.base import SendResult
from shopify_app.services import reconcile, send_checks, send_record, send_submit, sending
from shopify_app.services.bulk import is_postgresql
from shopify_app.services.ratelimit import TokenBucket
from shopify_app.services.send_types import Ready, Settings
from tests.integration.send_support import (
    add_campaign,
    add_campaign_messages,
    add_subscribers,
    fast_shop,
    make_provider,
    messages,
)


def _expire_leases() -> None:
    db.session.execute(
        update(Message)
        .where(Message.status == "sending")
        .values(lease_expires_at=utcnow() - timedelta(seconds=1))
    )
    db.session.commit()


def test_a_send_of_many_batches_leaves_once_per_recipient(app, shop, fake_twilio, monkeypatch):
    """Many small batches through `run` — on PostgreSQL two loops side by side, each with its
    outcomes written by a recorder thread — still give each recipient exactly one text, and
    every outcome is written before `run` returns."""
    monkeypatch.setitem(app.config, "SEND_BATCH_SIZE", 10)
    monkeypatch.setitem(app.config, "SEND_LOOPS", 2)
    fast_shop(shop)
    fake_twilio.configure(latency_ms=15)  # texts on the wire while the other loop checks
    subs = add_subscribers(shop, 90)
    phones = [s.phone for s in subs]
    add_campaign_messages(shop, add_campaign(shop), subs)

    report = sending.run(shop.id, time_budget=120)

    assert (report.claimed, report.sent, report.released) == (90, 90, 0)
    assert fake_twilio.count_by_to() == {p: 1 for p in phones}
    rows = messages()
    assert {(r.status, r.claimed_by, r.lease_expires_at) for r in rows} == {("sent", None, None)}
    assert len({r.provider_sid for r in rows}) == 90
    received = db.session.scalars(
        select(Subscriber.messages_received).where(Subscriber.shop_id == shop.id)
    ).all()
    assert received == [1] * 90


def test_two_runs_at_once_still_send_each_text_once(app, shop, fake_twilio, monkeypatch):
    """Two workers' runs for the same shop at the same time (four loops on PostgreSQL)."""
    if not is_postgresql(db.session):
        pytest.skip("SQLite has one writer: concurrent runs are PostgreSQL's case")
    monkeypatch.setitem(app.config, "SEND_BATCH_SIZE", 8)
    fast_shop(shop)
    fake_twilio.configure(latency_ms=10)
    subs = add_subscribers(shop, 64)
    add_campaign_messages(shop, add_campaign(shop), subs)
    reports: dict[int, sending.BatchReport] = {}
    shop_id = shop.id  # read here: the ORM object belongs to this thread's session

    def worker(i: int) -> None:
        with app.app_context():
            reports[i] = sending.run(shop_id, time_budget=120)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    db.session.rollback()

    assert sum(r.sent for r in reports.values()) == 64
    assert fake_twilio.count_by_to() == {s.phone: 1 for s in subs}
    assert fake_twilio.stats()["duplicates"] == {}
    assert len(fake_twilio.messages) == 64
    assert {r.status for r in messages()} == {"sent"}


def test_unrecorded_outcomes_stay_leased_and_are_never_sent_twice(
    app, shop, fake_twilio, monkeypatch
):
    """Recording fails (the database went away mid-send): the run raises, the texts already
    handed over stay `sending` under their lease, and reconciliation — not a blind resend —
    settles them, so each recipient still gets exactly one text."""
    monkeypatch.setitem(app.config, "SEND_BATCH_SIZE", 10)
    fast_shop(shop)
    subs = add_subscribers(shop, 30)
    phones = [s.phone for s in subs]
    add_campaign_messages(shop, add_campaign(shop), subs)

    def broken(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise RuntimeError("database went away")

    monkeypatch.setattr(send_record, "record", broken)
    with pytest.raises(RuntimeError):
        sending.run(shop.id, time_budget=120)
    db.session.rollback()
    monkeypatch.undo()

    handed_over = len(fake_twilio.messages)
    assert handed_over >= 1
    rows = messages()
    assert not [r for r in rows if r.status == "sent"]
    leased = [r for r in rows if r.status == "sending"]
    assert len(leased) >= handed_over
    assert all(r.lease_expires_at is not None and r.sent_at is not None for r in leased)

    _expire_leases()
    found = reconcile.reconcile_stuck()
    assert found.found_sent == handed_over
    sending.run(shop.id, time_budget=120)

    assert fake_twilio.count_by_to() == {p: 1 for p in phones}
    assert {r.status for r in messages()} == {"sent"}


class _Slow:
    """The stand-in behind a fixed delay, so texts queue in the send pool."""

    name = "slow"

    def __init__(self, inner, delay: float) -> None:  # noqa: ANN001
        self.inner = inner
        self.delay = delay

    def send(self, to, body, **kwargs):  # noqa: ANN001, ANN201
        time.sleep(self.delay)
        return self.inner.send(to, body, **kwargs)


def test_text_waiting_in_the_pool_past_the_deadline_is_not_sent(app, shop, fake_twilio):
    """A text that only gets a send thread after the send deadline is handed back unsent:
    a request started then could outlive the lease."""
    fast_shop(shop)
    rules = send_checks.shop_rules(shop, app.config)
    settings = Settings.from_app()
    settings = Settings(**{**settings.__dict__, "concurrency": 1})
    now = utcnow()
    ready = [
        Ready(
            i,
            i,
            f"+1202555{i:04d}",
            "Hello",
            1,
            "GSM-7",
            Decimal("0.0083"),
            0,
            now,
            now,
            3600,
        )
        for i in range(1, 6)
    ]
    recorded: list[tuple[Ready, SendResult]] = []
    unsent = send_submit.submit(
        ready,
        provider=_Slow(make_provider(fake_twilio), 1.2),
        rules=rules,
        bucket=TokenBucket(get_redis(), rules.sender.key, 1000),
        settings=settings,
        deadline=time.monotonic() + 0.8,
        on_results=recorded.extend,
    )
    assert [item.id for item, _ in recorded] == [1]
    assert sorted(item.id for item in unsent) == [2, 3, 4, 5]
    assert [m.to for m in fake_twilio.messages] == ["+12025550001"]
