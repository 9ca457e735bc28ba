"""The send pipeline end to end against the Twilio stand-in: exactly once, recorded outcomes."""

from __future__ import annotations

from decimal import Decimal

from shopify_app.models import utcnow
from shopify_app.services import sending
from tests.integration.send_support import (
    add_campaign,
    add_campaign_messages,
    add_subscribers,
    fast_shop,
    messages,
)


def test_campaign_rows_are_sent_once_each_and_recorded(shop, fake_twilio, run_jobs):
    """Every due row leaves once, with sid, segments, encoding, price and Twilio parameters."""
    fast_shop(shop)
    subs = add_subscribers(shop, 30)
    phones = [s.phone for s in subs]
    campaign = add_campaign(shop)
    add_campaign_messages(shop, campaign, subs)

    assert sending.schedule_sending(shop.id) == 1
    run_jobs()

    rows = messages()
    assert {r.status for r in rows} == {"sent"}
    assert fake_twilio.count_by_to() == {p: 1 for p in phones}
    first = rows[0]
    assert first.provider_sid and first.provider_sid.startswith("SM")
    assert first.segments == 1 and first.encoding == "GSM-7"
    assert first.price == Decimal("0.0083")
    assert first.body.startswith("Tidings Test Shop: Hi Ann0! Sale today.")
    sent = fake_twilio.received_to(phones[0])[0]
    assert sent.status_callback == "http://localhost/webhooks/twilio/status"
    assert 300 <= sent.validity_period <= 36000
    assert sent.body == first.body

    sending.schedule_sending(shop.id)
    run_jobs()
    assert len(fake_twilio.messages) == 30
    assert first.sent_at is not None and first.sent_at <= utcnow()


def test_job_run_twice_sends_nothing_twice(shop, fake_twilio, run_jobs):
    """Two send jobs for the same rows (a duplicate enqueue) still send each text once."""
    fast_shop(shop)
    subs = add_subscribers(shop, 12)
    add_campaign_messages(shop, add_campaign(shop), subs)

    assert sending.schedule_sending(shop.id, jobs=3) == 3
    assert sending.schedule_sending(shop.id, jobs=3) == 0  # those slots are still queued
    run_jobs()

    assert len(fake_twilio.messages) == 12
    assert fake_twilio.stats()["duplicates"] == {}


def test_one_invalid_number_does_not_abort_the_batch(shop, fake_twilio, run_jobs):
    """A refused number fails alone; every other recipient in the batch gets the text."""
    fast_shop(shop)
    subs = add_subscribers(shop, 20)
    bad = subs[7].phone
    fake_twilio.configure(fail_numbers={bad: [400, 21211]})
    add_campaign_messages(shop, add_campaign(shop), subs)

    sending.schedule_sending(shop.id)
    run_jobs()

    rows = messages()
    assert sorted(r.status for r in rows).count("sent") == 19
    failed = [r for r in rows if r.status == "failed"]
    assert len(failed) == 1 and failed[0].error_code == 21211
    assert len(fake_twilio.messages) == 19


def test_sender_rate_limit_paces_the_send(shop, fake_twilio, run_jobs):
    """At 5 messages per second, 15 texts take about two seconds (a one-second burst, then
    the bucket's refill)."""
    fast_shop(shop, messages_per_second=5)
    add_campaign_messages(shop, add_campaign(shop), add_subscribers(shop, 15))
    sending.schedule_sending(shop.id)
    run_jobs()
    created = sorted(m.created_at for m in fake_twilio.messages)
    assert len(created) == 15
    assert 1.6 <= created[-1] - created[0] <= 4.0


def test_rows_are_handed_back_when_the_lease_would_run_out(app, shop, fake_twilio, monkeypatch):
    """A worker never submits a text it could not finish inside its lease: with no time left
    the rows go back to pending untouched and nothing is sent."""
    monkeypatch.setitem(app.config, "SEND_LEASE_SECONDS", 10)
    monkeypatch.setitem(app.config, "TWILIO_TIMEOUT_SECONDS", 10)
    fast_shop(shop)
    add_campaign_messages(shop, add_campaign(shop), add_subscribers(shop, 4))
    report = sending.run(shop.id)
    assert (report.released, report.sent) == (4, 0)
    assert {(m.status, m.deferred_reason, m.sent_at) for m in messages()} == {
        ("pending", "released", None)
    }
    assert fake_twilio.messages == []
