"""Provider errors in the pipeline: retried, failed for good, or reconciled — never resent
blindly."""

from __future__ import annotations

from datetime import timedelta

import pytest
import redis
from sqlalchemy import select, update
from twilio.request_validator import RequestValidator

from jobs import sending as send_jobs
from shopify_app.extensions import db
from shopify_app.models import ConsentEvent, Message, Subscriber, utcnow
from shopify_app.providers import set_provider
from shopify_app.providers.base import UNKNOWN, SendResult
from shopify_app.services import reconcile, send_submit, sending
from shopify_app.services.outgoing import queue_message
from tests.integration.send_support import (
    add_campaign,
    add_campaign_messages,
    add_subscribers,
    fast_shop,
    make_provider,
    messages,
)


def _make_due_now() -> None:
    db.session.execute(
        update(Message)
        .where(Message.status == "pending")
        .values(due_at=utcnow() - timedelta(seconds=1))
    )
    db.session.commit()


def _expire_leases() -> None:
    db.session.execute(
        update(Message)
        .where(Message.status == "sending")
        .values(lease_expires_at=utcnow() - timedelta(seconds=1))
    )
    db.session.commit()


def test_429_goes_back_to_pending_honouring_retry_after(shop, fake_twilio, run_jobs):
    """A 429 is not an outcome: the row waits at least Retry-After, then is sent once."""
    fast_shop(shop)
    sub = add_subscribers(shop, 1)[0]
    phone = sub.phone
    add_campaign_messages(shop, add_campaign(shop), [sub])
    fake_twilio.fail_next(1, 429, 20429, retry_after=120)
    before = utcnow()
    sending.schedule_sending(shop.id)
    run_jobs()

    row = messages()[0]
    assert (row.status, row.deferred_reason, row.attempts, row.error_code) == (
        "pending",
        "retry",
        1,
        20429,
    )
    assert row.due_at >= before + timedelta(seconds=119)
    assert row.sent_at is None and fake_twilio.messages == []

    _make_due_now()
    sending.schedule_sending(shop.id)
    run_jobs()
    row = messages()[0]
    assert (row.status, row.attempts) == ("sent", 2)
    assert len(fake_twilio.received_to(phone)) == 1
    assert [r.status for r in fake_twilio.requests] == [429, 201]


def test_500_is_retried_with_backoff(shop, fake_twilio, run_jobs):
    """A 5xx without Retry-After backs off (seconds, growing) and is retried."""
    fast_shop(shop)
    add_campaign_messages(shop, add_campaign(shop), add_subscribers(shop, 1))
    fake_twilio.fail_next(1, 500, 20500)
    before = utcnow()
    sending.schedule_sending(shop.id)
    run_jobs()
    row = messages()[0]
    assert row.status == "pending" and row.error_code == 20500
    assert before + timedelta(seconds=1) <= row.due_at <= before + timedelta(seconds=10)


def test_retries_give_up_after_max_attempts(app, shop, fake_twilio, run_jobs, monkeypatch):
    """A message refused transiently every time fails for good after SEND_MAX_ATTEMPTS."""
    monkeypatch.setitem(app.config, "SEND_MAX_ATTEMPTS", 2)
    fast_shop(shop)
    add_campaign_messages(shop, add_campaign(shop), add_subscribers(shop, 1))
    fake_twilio.fail_next(2, 503, 20503)
    for _ in range(2):
        _make_due_now()
        sending.schedule_sending(shop.id)
        run_jobs()
    row = messages()[0]
    assert (row.status, row.attempts, row.error_code) == ("failed", 2, 20503)
    assert row.failed_at is not None and row.sent_at is None


def test_permanent_error_is_recorded_and_never_retried(shop, fake_twilio, run_jobs):
    """21211 fails the row, marks the number invalid, and later runs leave it alone."""
    fast_shop(shop)
    sub = add_subscribers(shop, 1)[0]
    sub_id, phone = sub.id, sub.phone
    fake_twilio.configure(fail_numbers={phone: [400, 21211]})
    add_campaign_messages(shop, add_campaign(shop), [sub])
    sending.schedule_sending(shop.id)
    run_jobs()
    sending.schedule_sending(shop.id)
    run_jobs()

    row = messages()[0]
    assert (row.status, row.error_code, row.attempts) == ("failed", 21211, 1)
    assert "Invalid 'To' Phone Number" in row.error_message
    assert len(fake_twilio.requests) == 1
    assert db.session.get(Subscriber, sub_id).phone_invalid is True


def test_21610_opts_the_subscriber_out(shop, fake_twilio, run_jobs):
    """Twilio says the recipient replied STOP: failed, unsubscribed via the consent ledger,
    their other pending texts skipped."""
    fast_shop(shop, smart_sending_hours=0)
    sub = add_subscribers(shop, 1)[0]
    sub_id, phone = sub.id, sub.phone
    fake_twilio.configure(fail_numbers={phone: [400, 21610]})
    add_campaign_messages(shop, add_campaign(shop), [sub])
    later_id = add_campaign_messages(
        shop, add_campaign(shop, name="later"), [sub], due_in=timedelta(hours=1)
    )[0].id
    sending.schedule_sending(shop.id)
    run_jobs()

    first, second = messages()
    assert (first.status, first.error_code) == ("failed", 21610)
    assert (second.id, second.status, second.skip_reason) == (later_id, "skipped", "opted_out")
    subscriber = db.session.get(Subscriber, sub_id)
    assert subscriber.status == "unsubscribed"
    event = db.session.scalars(
        select(ConsentEvent).where(ConsentEvent.subscriber_id == sub_id)
    ).one()
    assert (event.kind, event.source) == ("opted_out", "carrier")
    assert not [m for m in messages() if m.kind == "compliance"]  # no confirmation text


def test_21610_in_a_status_callback_opts_out(shop, fake_twilio, run_jobs, client):
    """A failed callback carrying 21610 opts the subscriber out too (the callback path)."""
    fast_shop(shop)
    sub = add_subscribers(shop, 1)[0]
    sub_id = sub.id
    add_campaign_messages(shop, add_campaign(shop), [sub])
    sending.schedule_sending(shop.id)
    run_jobs()
    row = messages()[0]
    resp = _post_status(client, row.provider_sid, "failed", error_code="21610")
    assert resp.status_code == 204
    assert db.session.get(Subscriber, sub_id).status == "unsubscribed"
    assert messages()[0].status == "failed"


def _post_status(client, sid: str, status: str, **extra: str):  # noqa: ANN202
    url = "http://localhost/webhooks/twilio/status"
    params = {
        "MessageSid": sid,
        "MessageStatus": status,
        "AccountSid": "AC1",
        **{"ErrorCode" if k == "error_code" else k: v for k, v in extra.items()},
    }
    signature = RequestValidator("test-twilio-token").compute_signature(url, params)
    return client.post(
        "/webhooks/twilio/status", data=params, headers={"X-Twilio-Signature": signature}
    )


class _CallbackFirst:
    """Sends for real, then delivers Twilio's 'delivered' callback before returning — so the
    callback reaches the app before the send path has recorded the sid."""

    name = "callback-first"

    def __init__(self, inner, app) -> None:  # noqa: ANN001
        self.inner = inner
        self.app = app
        self.callback_statuses: list[int] = []

    def send(self, to, body, **kwargs):  # noqa: ANN001, ANN201
        result = self.inner.send(to, body, **kwargs)
        resp = _post_status(self.app.test_client(), result.sid, "delivered")
        self.callback_statuses.append(resp.status_code)
        return result

    def find_sent(self, to, since, body):  # noqa: ANN001, ANN201
        return self.inner.find_sent(to, since, body)


def test_status_callback_arriving_before_the_send_is_recorded(app, shop, fake_twilio, run_jobs):
    """The callback for a sid we have not recorded yet is parked and applied on record."""
    fast_shop(shop)
    add_campaign_messages(shop, add_campaign(shop), add_subscribers(shop, 3))
    provider = _CallbackFirst(make_provider(fake_twilio), app)
    set_provider(app, provider)
    sending.schedule_sending(shop.id)
    run_jobs()

    assert provider.callback_statuses == [204, 204, 204]
    for row in messages():
        assert (row.status, row.provider_status) == ("delivered", "delivered")
        assert row.delivered_at is not None


def test_timeout_leaves_row_for_reconciliation_which_finds_it_sent(
    app, shop, fake_twilio, run_jobs
):
    """Twilio created the message but the answer never came: the row stays `sending`;
    reconciliation finds it in Twilio's list, records its sid, and nothing is sent twice."""
    fast_shop(shop)
    sub = add_subscribers(shop, 1)[0]
    phone = sub.phone
    add_campaign_messages(shop, add_campaign(shop), [sub])
    set_provider(app, make_provider(fake_twilio, timeout=0.5))
    fake_twilio.configure(drop_hang_s=3)
    fake_twilio.drop_next(1)
    sending.schedule_sending(shop.id)
    run_jobs()

    row = messages()[0]
    assert (row.status, row.provider_sid, row.attempts) == ("sending", None, 1)
    assert row.sent_at is not None and row.body
    assert reconcile.reconcile_stuck().examined == 0  # lease not yet expired

    _expire_leases()
    report = reconcile.reconcile_stuck()
    assert (report.examined, report.found_sent) == (1, 1)
    row = messages()[0]
    created = fake_twilio.received_to(phone)
    assert len(created) == 1
    assert (row.status, row.provider_sid) == ("sent", created[0].sid)

    sending.schedule_sending(shop.id)
    run_jobs()
    assert len(fake_twilio.received_to(phone)) == 1


class _LostRequests:
    """A connection that dies before Twilio reads the request: the outcome looks unknown, but
    nothing was created."""

    name = "lost"

    def __init__(self, inner) -> None:  # noqa: ANN001
        self.inner = inner

    def send(self, to, body, **kwargs):  # noqa: ANN001, ANN201
        return SendResult(UNKNOWN, error_message="TimeoutError: timed out")

    def find_sent(self, to, since, body):  # noqa: ANN001, ANN201
        return self.inner.find_sent(to, since, body)


def test_reconciliation_finds_it_not_sent_and_it_is_sent_exactly_once(
    app, shop, fake_twilio, run_jobs
):
    """Unknown outcome, but Twilio never got it: reconciliation returns the row to pending and
    the next run sends it once."""
    fast_shop(shop)
    sub = add_subscribers(shop, 1)[0]
    phone = sub.phone
    add_campaign_messages(shop, add_campaign(shop), [sub])
    set_provider(app, _LostRequests(make_provider(fake_twilio)))
    sending.schedule_sending(shop.id)
    run_jobs()
    assert messages()[0].status == "sending"

    set_provider(app, make_provider(fake_twilio))
    _expire_leases()
    report = send_jobs.reconcile_stuck()
    assert (report["examined"], report["requeued"], report["found_sent"]) == (1, 1, 0)
    row = messages()[0]
    assert (row.status, row.deferred_reason, row.sent_at) == ("pending", "reconciled_unsent", None)
    run_jobs()  # reconcile scheduled a send job for the shop
    assert len(fake_twilio.received_to(phone)) == 1
    assert messages()[0].status == "sent"


def test_row_claimed_but_never_handed_over_goes_straight_back(shop, fake_twilio):
    """A worker killed before the hand-over (no sent_at): requeued without asking Twilio."""
    fast_shop(shop)
    add_campaign_messages(shop, add_campaign(shop), add_subscribers(shop, 2))
    assert len(sending.claim(10, shop_id=shop.id, me="dead-worker")) == 2
    _expire_leases()
    report = reconcile.reconcile_stuck()
    assert (report.examined, report.requeued) == (2, 2)
    assert fake_twilio.stats()["requests"] == 0
    assert {m.status for m in messages()} == {"pending"}


def test_redis_down_hands_unsent_rows_back(app, shop, fake_twilio, monkeypatch):
    """The rate limiter's Redis is gone: nothing is sent without it and the rows go back."""
    fast_shop(shop)
    add_campaign_messages(shop, add_campaign(shop), add_subscribers(shop, 5))

    def broken(self, costs):  # noqa: ANN001, ANN202
        raise redis.ConnectionError("redis went away")

    monkeypatch.setattr(sending.TokenBucket, "acquire", broken)
    monkeypatch.setattr(send_submit, "REDIS_PATIENCE", 0.3)
    report = sending.run(shop.id)
    assert report.released == 5 and report.sent == 0
    rows = messages()
    assert {(r.status, r.deferred_reason, r.claimed_by) for r in rows} == {
        ("pending", "released", None)
    }
    assert fake_twilio.messages == []


def test_queue_message_is_idempotent_and_sent_once(shop, fake_twilio, run_jobs):
    """The same dedupe key twice inserts one row; its job sends it once."""
    fast_shop(shop)
    sub = add_subscribers(shop, 1, status="pending")[0]
    first = queue_message(
        shop, sub, kind="transactional", template="Reply Y", dedupe_key="confirm:1"
    )
    second = queue_message(
        shop, sub, kind="transactional", template="Reply Y", dedupe_key="confirm:1"
    )
    db.session.commit()
    assert first is not None and second is None
    run_jobs()
    run_jobs()
    assert len(fake_twilio.messages) == 1
    assert messages()[0].status == "sent"


def test_queue_message_rejects_unknown_kind(shop):
    """A kind outside campaign/flow/transactional/compliance is a programming error."""
    sub = Subscriber(shop_id=shop.id, phone="+12025550100", status="subscribed")
    db.session.add(sub)
    db.session.commit()
    with pytest.raises(ValueError):
        queue_message(shop, sub, kind="promo", template="x")
