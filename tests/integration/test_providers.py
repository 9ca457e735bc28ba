"""Providers: Twilio through the stand-in (results, error classes, timeouts, reconciliation
lookups), the dev outbox, provider selection, and the shared rate limiter."""

from __future__ import annotations

import socket
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from sqlalchemy import select
from twilio.base.exceptions import TwilioException, TwilioServiceException
from twilio.base.version import Version
from twilio.http.response import Response

from shopify_app import create_app
from shopify_app.extensions import db, get_redis
from shopify_app.models import Message, OutboxMessage, Subscriber, utcnow
from shopify_app.providers import get_provider, outbox
from shopify_app.providers.base import (
    ACCEPTED,
    PERMANENT,
    RETRY,
    UNKNOWN,
    Sender,
    classify,
)
from shopify_app.providers.outbox import OutboxProvider
from shopify_app.providers.twilio import TwilioProvider, parse_retry_after
from shopify_app.services.ratelimit import TokenBucket
from tests.conftest import make_test_config
from tests.fakes.twilio_server import DEFAULT_ACCOUNT_SID
from tests.integration.send_support import FROM_NUMBER, make_provider

SENDER = Sender(from_number=FROM_NUMBER, shop_id=1)
CALLBACK = "https://app.example.com/webhooks/twilio/status"


def _send(provider, to: str = "+12025550123", body: str = "Hello", **kw):  # noqa: ANN001, ANN202
    return provider.send(
        to,
        body,
        sender=kw.pop("sender", SENDER),
        status_callback=CALLBACK,
        validity_period=kw.pop("validity_period", 3600),
    )


def test_twilio_create_carries_every_parameter(fake_twilio):
    """To, Body, From, StatusCallback and ValidityPeriod reach Twilio; the answer is accepted."""
    result = _send(make_provider(fake_twilio), body="Hi €5 off")
    assert (result.outcome, result.status, result.http_status) == (ACCEPTED, "queued", 201)
    created = fake_twilio.get(result.sid)
    assert (created.to, created.body, created.from_) == ("+12025550123", "Hi €5 off", FROM_NUMBER)
    assert (created.status_callback, created.validity_period) == (CALLBACK, 3600)
    assert created.messaging_service_sid is None


def test_a_shops_messaging_service_overrides_the_app_wide_number(fake_twilio):
    provider = make_provider(fake_twilio)
    result = _send(provider, sender=Sender(messaging_service_sid="MG123", shop_id=1))
    created = fake_twilio.get(result.sid)
    assert (created.messaging_service_sid, created.from_) == ("MG123", None)
    assert created.status == "accepted"


def test_the_app_wide_messaging_service_is_used_when_the_shop_sets_nothing(fake_twilio):
    provider = make_provider(fake_twilio, messaging_service_sid="MGapp", from_number="")
    result = _send(provider, sender=Sender(shop_id=1))
    assert fake_twilio.get(result.sid).messaging_service_sid == "MGapp"


def test_429_is_retry_with_retry_after(fake_twilio):
    fake_twilio.fail_next(1, 429, 20429, retry_after=7)
    result = _send(make_provider(fake_twilio))
    assert (result.outcome, result.error_code, result.retry_after) == (RETRY, 20429, 7.0)
    assert fake_twilio.messages == []


@pytest.mark.parametrize(("status", "code"), [(500, 20500), (503, 20503)])
def test_5xx_is_retry(fake_twilio, status, code):
    fake_twilio.fail_next(1, status, code)
    assert _send(make_provider(fake_twilio)).outcome == RETRY


@pytest.mark.parametrize("code", [21211, 21614, 21610, 21408])
def test_permanent_errors(fake_twilio, code):
    fake_twilio.configure(fail_numbers={"+12025550123": [400, code]})
    result = _send(make_provider(fake_twilio))
    assert (result.outcome, result.error_code, result.http_status) == (PERMANENT, code, 400)
    assert result.error_message


def test_an_unknown_4xx_code_is_permanent_by_default(fake_twilio):
    """A body over 1 600 characters (21617) would be refused again: not retried."""
    result = _send(make_provider(fake_twilio), body="x" * 1601)
    assert (result.outcome, result.error_code) == (PERMANENT, 21617)


def test_wrong_credentials_are_permanent(fake_twilio):
    provider = TwilioProvider(
        DEFAULT_ACCOUNT_SID, "wrong", base_url=fake_twilio.url, from_number=FROM_NUMBER
    )
    result = _send(provider)
    assert (result.outcome, result.http_status, result.error_code) == (PERMANENT, 401, 20003)


def test_problem_details_errors_are_classified_like_the_twilio_package_raises_them():
    """twilio >= 9.10 raises TwilioServiceException for RFC 9457 answers; we classify both."""
    body = (
        '{"type": "https://www.twilio.com/docs/errors/20429", "title": "Too Many Requests",'
        ' "status": 429, "code": 20429, "detail": "slow down"}'
    )
    error = Version.exception("POST", "/x", Response(429, body, {}), "Unable to create record")
    assert isinstance(error, TwilioServiceException) and isinstance(error, TwilioException)
    provider = TwilioProvider("AC1", "t", base_url="http://127.0.0.1:9")
    result = provider._refused(error, 429, {"retry-after": "3"})
    assert (result.outcome, result.error_code, result.retry_after) == (RETRY, 20429, 3.0)
    assert "slow down" in result.error_message


def test_classification_table():
    assert classify(400, 30007) == PERMANENT
    assert classify(400, 30003) == RETRY
    assert classify(429, None) == RETRY
    assert classify(502, 502) == RETRY
    assert classify(404, 20404) == PERMANENT


def test_a_lost_answer_is_an_unknown_outcome_not_a_retry(fake_twilio):
    """Twilio created the message but the answer timed out: UNKNOWN (reconcile, never resend)."""
    fake_twilio.configure(drop_hang_s=3)
    fake_twilio.drop_next(1)
    started = time.monotonic()
    result = _send(make_provider(fake_twilio, timeout=0.5))
    assert result.outcome == UNKNOWN
    assert time.monotonic() - started < 2.5
    assert len(fake_twilio.messages) == 1


def test_connection_refused_is_retry_because_nothing_was_sent():
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    provider = TwilioProvider("AC1", "t", base_url=f"http://127.0.0.1:{port}", timeout=1)
    assert _send(provider).outcome == RETRY


def test_one_pooled_provider_is_safe_from_many_threads(fake_twilio):
    """400 concurrent sends through one provider: all accepted, all distinct."""
    provider = make_provider(fake_twilio, pool_size=16)
    with ThreadPoolExecutor(32) as pool:
        results = list(
            pool.map(lambda i: _send(provider, to=f"+1202555{i:04d}", body=f"m{i}"), range(400))
        )
    assert {r.outcome for r in results} == {ACCEPTED}
    assert len({r.sid for r in results}) == 400
    assert all(fake_twilio.get(r.sid).body == f"m{i}" for i, r in enumerate(results))


def test_find_sent_matches_number_body_and_time(fake_twilio):
    """Reconciliation's question: did a message with this body go to this number since then?"""
    provider = make_provider(fake_twilio)
    since = utcnow()
    mine = _send(provider, to="+12025550111", body="The one")
    _send(provider, to="+12025550111", body="Another text")
    _send(provider, to="+12025550199", body="The one")
    found = provider.find_sent("+12025550111", since, "The one")
    assert [m.sid for m in found] == [mine.sid]
    assert found[0].status == "queued"
    assert provider.find_sent("+12025550111", since, "Never sent") == []
    assert provider.find_sent("+12025550111", since + timedelta(hours=1), "The one") == []


def test_get_provider_builds_twilio_from_config(fake_twilio):
    app = create_app(
        make_test_config(
            SMS_PROVIDER="twilio",
            TWILIO_ACCOUNT_SID=DEFAULT_ACCOUNT_SID,
            TWILIO_AUTH_TOKEN="test-twilio-token",
            TWILIO_FROM_NUMBER=FROM_NUMBER,
            TWILIO_API_BASE_URL=fake_twilio.url,
            TWILIO_TIMEOUT_SECONDS="3",
        )
    )
    with app.app_context():
        provider = get_provider()
        assert isinstance(provider, TwilioProvider) and provider.timeout == 3.0
        assert get_provider() is provider
        assert _send(provider).outcome == ACCEPTED


def test_outbox_stores_messages_and_plays_callbacks(app, shop):
    """The outbox answers like Twilio and `play` goes through the status-callback code."""
    provider = get_provider()
    assert isinstance(provider, OutboxProvider)
    sub = Subscriber(shop_id=shop.id, phone="+12025550140", status="subscribed")
    db.session.add(sub)
    db.session.commit()
    result = _send(
        provider, to=sub.phone, body="Hello from the outbox", sender=Sender(shop_id=shop.id)
    )
    assert result.outcome == ACCEPTED and result.sid.startswith("SM")
    stored = db.session.scalars(select(OutboxMessage)).one()
    assert (stored.to, stored.body, stored.status) == (sub.phone, "Hello from the outbox", "queued")
    db.session.add(
        Message(
            shop_id=shop.id,
            subscriber_id=sub.id,
            kind="campaign",
            status="sent",
            due_at=utcnow(),
            sent_at=utcnow(),
            provider_sid=result.sid,
        )
    )
    db.session.commit()
    assert outbox.play(result.sid, "delivered")
    db.session.expire_all()
    message = db.session.scalars(select(Message)).one()
    assert (message.status, message.provider_status) == ("delivered", "delivered")
    assert db.session.scalars(select(OutboxMessage)).one().status == "delivered"
    assert (
        provider.find_sent(sub.phone, utcnow() - timedelta(minutes=1), "Hello from the outbox")[
            0
        ].sid
        == result.sid
    )
    assert not outbox.play("SMunknown", "delivered")


def test_outbox_simulated_stop_reply_opts_out(app, shop):
    sub = Subscriber(shop_id=shop.id, phone="+12025550141", status="subscribed")
    db.session.add(sub)
    db.session.commit()
    outbox.simulate_inbound(shop, sub.phone, "STOP")
    db.session.expire_all()
    assert db.session.get(Subscriber, sub.id).status == "unsubscribed"


def test_token_bucket_is_shared_and_paces(app):
    """Two holders of one sender's bucket share its 5 tokens per second."""
    conn = get_redis()
    first = TokenBucket(conn, "from:+15005550006", 5)
    second = TokenBucket(conn, "from:+15005550006", 5)
    assert first.acquire([1, 1, 1]) == (3, 0.0)
    granted, wait = second.acquire([1, 1, 1])
    assert granted == 2 and 0.1 < wait <= 0.25
    granted, wait = first.acquire([2])
    assert granted == 0 and 0.3 < wait <= 0.45
    time.sleep(wait)
    assert first.acquire([2])[0] == 1
    assert TokenBucket(conn, "from:other", 5).acquire([1, 1, 1, 1, 1, 1]) == (5, 0.2)


def test_a_text_dearer_than_the_bucket_still_goes(app):
    """A 6-segment text on a 3 per second sender is granted once the bucket refills."""
    bucket = TokenBucket(get_redis(), "ms:slow", 3)
    assert bucket.acquire([6]) == (1, 0.0)


def test_parse_retry_after():
    assert parse_retry_after("12") == 12.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert parse_retry_after("soon") is None
