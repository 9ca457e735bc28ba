"""POST /webhooks/twilio/inbound and /status: signature over the public URL, inbound texts
stored once, delivery statuses that only move forward."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from shopify_app.extensions import db, get_redis
from shopify_app.models import InboundMessage, Message, Shop, Subscriber, utcnow
from shopify_app.services.twilio_events import (
    apply_early_status,
    pending_status,
    shops_for_inbound,
)
from tests.fakes.signing import twilio_signature
from tests.integration.webhook_support import add_message, add_subscriber, count

TOKEN = "test-twilio-token"  # TWILIO_AUTH_TOKEN in the test config
APP_URL = "http://localhost"  # APP_URL in the test config
SHOP_NUMBER = "+18005550100"
PHONE = "+14155550123"


def post_twilio(
    client,
    path: str,
    params: dict[str, str],
    *,
    token: str = TOKEN,
    signed_url: str | None = None,
    send_signature: bool = True,
    base_url: str = "http://localhost",
    tamper: dict[str, str] | None = None,
):
    """POST form `params` like Twilio: signed over `signed_url` (the public URL by default),
    then optionally altered in transit (`tamper`)."""
    url = signed_url or APP_URL + path
    headers = {"X-Twilio-Signature": twilio_signature(url, params, token)} if send_signature else {}
    return client.post(path, data={**params, **(tamper or {})}, headers=headers, base_url=base_url)


def inbound_params(sid: str = "SM_in_1", body: str = "When is the sale?", **extra: str):
    return {
        "MessageSid": sid,
        "SmsSid": sid,
        "AccountSid": "AC123",
        "From": PHONE,
        "To": SHOP_NUMBER,
        "Body": body,
        "NumMedia": "0",
        **extra,
    }


def status_params(sid: str, status: str, **extra: str):
    return {
        "MessageSid": sid,
        "SmsSid": sid,
        "MessageStatus": status,
        "SmsStatus": status,
        "AccountSid": "AC123",
        "To": PHONE,
        "From": SHOP_NUMBER,
        **extra,
    }


@pytest.fixture
def owned_shop(shop):
    """The shop with its own sender number and the texting customer as a subscriber."""
    shop.settings["sender"] = {"from_number": SHOP_NUMBER, "messaging_service_sid": ""}
    sub = add_subscriber(shop, PHONE)
    db.session.commit()
    return {"shop_id": shop.id, "subscriber_id": sub.id}


@pytest.fixture
def sent_message(shop):
    sub = db.session.scalars(Subscriber.for_shop(shop.id).where(Subscriber.phone == PHONE)).first()
    sub = sub or add_subscriber(shop, PHONE)
    message = add_message(shop, sub, "sent", provider_sid="SM_out_1", sent_at=utcnow())
    db.session.commit()
    return message.id


def _message(message_id: int) -> Message:
    db.session.expire_all()
    return db.session.get(Message, message_id)


# --- signatures -------------------------------------------------------------------------


def test_valid_inbound_is_stored_and_answered_with_twiml(client, owned_shop):
    res = post_twilio(client, "/webhooks/twilio/inbound", inbound_params())
    assert res.status_code == 200
    assert res.mimetype == "text/xml"
    assert res.get_data(as_text=True) == '<?xml version="1.0" encoding="UTF-8"?><Response />'
    row = db.session.scalars(select(InboundMessage)).one()
    assert (row.shop_id, row.subscriber_id, row.provider_sid, row.from_phone, row.to, row.body) == (
        owned_shop["shop_id"],
        owned_shop["subscriber_id"],
        "SM_in_1",
        PHONE,
        SHOP_NUMBER,
        "When is the sale?",
    )


@pytest.mark.parametrize("path", ["/webhooks/twilio/inbound", "/webhooks/twilio/status"])
@pytest.mark.parametrize(
    "case",
    [
        "tampered_param",
        "added_param",
        "wrong_token",
        "missing_header",
        "empty_header",
        "url_from_host",
    ],
)
def test_invalid_signature_is_403_and_does_nothing(client, owned_shop, sent_message, path, case):
    params = (
        inbound_params() if path.endswith("inbound") else status_params("SM_out_1", "delivered")
    )
    kwargs: dict = {}
    if case == "tampered_param":
        kwargs["tamper"] = {"Body" if path.endswith("inbound") else "MessageStatus": "failed"}
    elif case == "added_param":
        kwargs["tamper"] = {"ErrorCode": "30007"}
    elif case == "wrong_token":
        kwargs["token"] = "someone-elses-token"
    elif case == "missing_header":
        kwargs["send_signature"] = False
    elif case == "url_from_host":
        # Signed over the URL the request's Host header names, not the public one.
        kwargs["signed_url"] = "http://internal-host:8080" + path
        kwargs["base_url"] = "http://internal-host:8080"
    if case == "empty_header":
        res = client.post(path, data=params, headers={"X-Twilio-Signature": ""})
    else:
        res = post_twilio(client, path, params, **kwargs)
    assert res.status_code == 403
    assert count(InboundMessage) == 0
    message = _message(sent_message)
    assert (message.status, message.provider_status, message.error_code) == ("sent", None, None)


@pytest.mark.parametrize("path", ["/webhooks/twilio/inbound", "/webhooks/twilio/status"])
def test_url_is_built_from_app_url_not_the_host_header(client, owned_shop, sent_message, path):
    """Behind a proxy the request arrives for an internal host; Twilio signed the public URL."""
    params = (
        inbound_params() if path.endswith("inbound") else status_params("SM_out_1", "delivered")
    )
    res = post_twilio(client, path, params, base_url="http://10.0.0.7:8080")
    assert res.status_code in (200, 204)


def test_query_string_is_signed_as_sent(client, sent_message):
    """The raw query string is part of the signed URL, byte for byte (no re-encoding)."""
    path = "/webhooks/twilio/status?shop=a%2Fb&x=%7E1&y=1+2"
    res = post_twilio(client, path, status_params("SM_out_1", "delivered"))
    assert res.status_code == 204
    assert _message(sent_message).status == "delivered"
    # The same query decoded and re-encoded differently no longer matches.
    res = post_twilio(
        client,
        "/webhooks/twilio/status?shop=a/b&x=~1&y=1%202",
        status_params("SM_out_1", "failed"),
        signed_url=APP_URL + path,
    )
    assert res.status_code == 403


# --- inbound ----------------------------------------------------------------------------


def test_repeated_message_sid_is_stored_once(client, owned_shop):
    for _ in range(3):
        res = post_twilio(client, "/webhooks/twilio/inbound", inbound_params())
        assert res.status_code == 200
    assert count(InboundMessage) == 1


def test_inbound_by_messaging_service(client, shop):
    shop.settings["sender"] = {"messaging_service_sid": "MG999", "from_number": ""}
    db.session.commit()
    shop_id = shop.id
    params = inbound_params(To="+18885550000", MessagingServiceSid="MG999")
    assert post_twilio(client, "/webhooks/twilio/inbound", params).status_code == 200
    row = db.session.scalars(select(InboundMessage)).one()
    assert (row.shop_id, row.subscriber_id) == (shop_id, None)


def test_app_wide_number_finds_shops_where_the_sender_subscribed(
    client, app, shop, other_shop, monkeypatch
):
    monkeypatch.setitem(app.config, "TWILIO_FROM_NUMBER", SHOP_NUMBER)
    add_subscriber(shop, PHONE, last_message_at=utcnow() - timedelta(days=3))
    add_subscriber(other_shop, PHONE, last_message_at=utcnow() - timedelta(hours=1))
    add_subscriber(other_shop, "+14155550188")
    uninstalled = Shop(domain="gone.myshopify.com", installed_at=utcnow(), uninstalled_at=utcnow())
    db.session.add(uninstalled)
    db.session.flush()
    add_subscriber(uninstalled, PHONE, last_message_at=utcnow())
    db.session.commit()
    shop_id, other_id = shop.id, other_shop.id

    params = inbound_params()
    assert [s.id for s in shops_for_inbound(params)] == [other_id, shop_id]
    assert post_twilio(client, "/webhooks/twilio/inbound", params).status_code == 200
    # Stored once, for the shop that texted them most recently.
    assert db.session.scalars(select(InboundMessage.shop_id)).all() == [other_id]
    # A number no shop knows, on the app-wide sender: nobody's text.
    assert shops_for_inbound(inbound_params(From="+14155550100")) == []


def test_inbound_to_an_unknown_number_is_answered_not_stored(client, shop):
    res = post_twilio(client, "/webhooks/twilio/inbound", inbound_params(To="+18889990000"))
    assert res.status_code == 200
    assert res.mimetype == "text/xml"
    assert count(InboundMessage) == 0


# --- status callbacks -------------------------------------------------------------------


def _status(client, sid: str, status: str, **extra: str) -> None:
    res = post_twilio(client, "/webhooks/twilio/status", status_params(sid, status, **extra))
    assert res.status_code == 204


def test_statuses_move_forward_and_record_times(client, sent_message):
    _status(client, "SM_out_1", "queued")
    assert (_message(sent_message).status, _message(sent_message).provider_status) == (
        "sent",
        "queued",
    )
    _status(client, "SM_out_1", "sent")
    _status(client, "SM_out_1", "delivered")
    message = _message(sent_message)
    assert (message.status, message.provider_status) == ("delivered", "delivered")
    assert message.delivered_at is not None and message.failed_at is None


def test_late_sent_never_overwrites_delivered(client, sent_message):
    _status(client, "SM_out_1", "delivered")
    delivered_at = _message(sent_message).delivered_at
    for late in ("sent", "sending", "queued", "delivered", "undelivered"):
        _status(client, "SM_out_1", late)
    message = _message(sent_message)
    assert (message.status, message.provider_status, message.delivered_at) == (
        "delivered",
        "delivered",
        delivered_at,
    )


def test_failure_keeps_its_error_code(client, sent_message):
    _status(client, "SM_out_1", "failed", ErrorCode="30007")
    _status(client, "SM_out_1", "sent")
    _status(client, "SM_out_1", "failed")  # a duplicate without the code
    message = _message(sent_message)
    assert (message.status, message.error_code) == ("failed", 30007)
    assert message.failed_at is not None


def test_duplicate_failure_fills_a_missing_code(client, sent_message):
    _status(client, "SM_out_1", "undelivered")
    _status(client, "SM_out_1", "undelivered", ErrorCode="30003")
    message = _message(sent_message)
    assert (message.status, message.error_code) == ("undelivered", 30003)


def test_canceled_is_terminal(client, sent_message):
    _status(client, "SM_out_1", "canceled")
    _status(client, "SM_out_1", "delivered")
    message = _message(sent_message)
    assert (message.status, message.provider_status) == ("failed", "canceled")


def test_early_callback_is_parked_then_applied(client, shop):
    """Twilio can call back before the send path has recorded the sid."""
    _status(client, "SM_early", "sent")
    _status(client, "SM_early", "failed", ErrorCode="30007")
    _status(client, "SM_early", "queued")
    early = pending_status("SM_early")
    assert (early.status, early.error_code) == ("failed", 30007)
    assert 0 < get_redis().ttl("tidings:twilio:early-status:SM_early") <= 3600

    sub = add_subscriber(shop, PHONE)
    message = add_message(shop, sub, "sent", provider_sid="SM_early", sent_at=utcnow())
    assert apply_early_status(message) is True
    db.session.commit()
    message = _message(message.id)
    assert (message.status, message.provider_status, message.error_code) == (
        "failed",
        "failed",
        30007,
    )
    assert pending_status("SM_early") is None
    assert apply_early_status(message) is False


def test_unknown_status_and_missing_fields_are_harmless(client, sent_message):
    _status(client, "SM_out_1", "read")
    res = post_twilio(client, "/webhooks/twilio/status", {"AccountSid": "AC123"})
    assert res.status_code == 204
    assert _message(sent_message).status == "sent"


def test_opted_out_error_on_a_callback_unsubscribes_the_number(client, sent_message):
    """21610: the recipient told the carrier STOP. The subscriber is opted out, not just the
    message marked failed."""
    _status(client, "SM_out_1", "failed", ErrorCode="21610")
    message = _message(sent_message)
    assert (message.status, message.error_code) == ("failed", 21610)
    assert db.session.get(Subscriber, message.subscriber_id).status == "unsubscribed"
