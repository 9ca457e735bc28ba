"""/api/outbox: the development outbox lists what was 'sent' and plays what happens next."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask

from shopify_app.extensions import db
from shopify_app.models import Click, ConsentEvent, Message, OutboxMessage, Subscriber
from shopify_app.providers import set_provider
from shopify_app.services import sending
from tests.conftest import ApiClient
from tests.integration.send_support import (
    add_campaign,
    add_campaign_messages,
    add_subscribers,
    fast_shop,
    id_of,
    messages,
)

SALE_URL = "https://tidings-test.myshopify.com/collections/sale"


@pytest.fixture
def outbox_provider(app: Flask) -> Iterator[None]:
    """The configured provider (the outbox), not one another test installed."""
    set_provider(app, None)
    yield
    set_provider(app, None)


@pytest.fixture
def sent(shop, outbox_provider, run_jobs) -> list[OutboxMessage]:
    """Two campaign texts with a link, really sent through the outbox provider."""
    fast_shop(shop)
    subs = add_subscribers(shop, 2)
    campaign = add_campaign(shop, body=f"Hi {{first_name}}! Sale: {SALE_URL}")
    add_campaign_messages(shop, campaign, subs)
    sending.schedule_sending(id_of(shop))
    run_jobs()
    rows = list(db.session.scalars(db.select(OutboxMessage).order_by(OutboxMessage.id)))
    assert len(rows) == 2
    return rows


def _items(api: ApiClient, **query: Any) -> list[dict[str, Any]]:
    resp = api.get("/api/outbox", query_string=query)
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()["items"]


def test_lists_sent_messages_with_their_message_and_links(api, sent):
    """Newest first, each with the Message row it belongs to and its short links."""
    items = _items(api)
    assert [i["sid"] for i in items] == [r.sid for r in reversed(sent)]
    first = items[-1]
    assert first["status"] == "queued" and "/r/" in first["body"]
    assert first["message"]["status"] == "sent" and first["message"]["kind"] == "campaign"
    assert len(first["links"]) == 1 and first["links"][0]["url"] == SALE_URL
    assert first["links"][0]["token"] in first["body"]
    assert [i["to"] for i in _items(api, to=sent[0].to[-4:])] == [sent[0].to]


def test_play_delivered_and_failed(api, sent):
    """Playing a status moves the Message through the status-callback code."""
    resp = api.post(f"/api/outbox/{sent[0].sid}/play", json={"status": "delivered"})
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["status"] == "delivered"
    assert resp.get_json()["message"]["status"] == "delivered"

    resp = api.post(f"/api/outbox/{sent[1].sid}/play", json={"status": "failed"})
    assert resp.status_code == 200
    rows = {m.provider_sid: m for m in messages()}
    assert rows[sent[0].sid].status == "delivered" and rows[sent[0].sid].delivered_at
    assert rows[sent[1].sid].status == "failed" and rows[sent[1].sid].error_code == 30006

    bad = api.post(f"/api/outbox/{sent[0].sid}/play", json={"status": "read"})
    assert bad.status_code == 422


def test_click_records_a_human_click(api, sent):
    """A simulated tap is recorded against the message and answers the redirect target."""
    resp = api.post(f"/api/outbox/{sent[0].sid}/click", json={})
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["redirect_to"].startswith(SALE_URL)
    clicks = list(db.session.scalars(db.select(Click)))
    message = next(m for m in messages() if m.provider_sid == sent[0].sid)
    assert [(c.message_id, c.is_bot) for c in clicks] == [(message.id, False)]
    wrong = api.post(f"/api/outbox/{sent[0].sid}/click", json={"token": "nope"})
    assert wrong.status_code == 409


def test_reply_stop_unsubscribes(api, sent):
    """A STOP reply from the recipient goes through keyword handling and opts them out."""
    resp = api.post(f"/api/outbox/{sent[0].sid}/reply", json={"body": "STOP"})
    assert resp.status_code == 200, resp.get_json()
    db.session.expire_all()
    sub = db.session.scalars(db.select(Subscriber).where(Subscriber.phone == sent[0].to)).one()
    assert sub.status == "unsubscribed"
    kinds = [
        e.kind
        for e in db.session.scalars(
            db.select(ConsentEvent).where(ConsentEvent.subscriber_id == sub.id)
        )
    ]
    assert "opted_out" in kinds


def test_inbound_from_any_number_validates_it(api, shop, outbox_provider):
    resp = api.post("/api/outbox/inbound", json={"from": "12", "body": "JOIN"})
    assert resp.status_code == 422
    resp = api.post("/api/outbox/inbound", json={"from": "+1 202 555 0199", "body": "HELLO"})
    assert resp.status_code == 200


def test_other_shops_messages_are_invisible(client, sent, other_shop):
    """Another shop neither sees nor plays this shop's outbox."""
    other = ApiClient(client, other_shop.domain)
    assert _items(other) == []
    resp = other.post(f"/api/outbox/{sent[0].sid}/play", json={"status": "delivered"})
    assert resp.status_code == 404
    assert db.session.scalars(db.select(Message.status)).all() == ["sent", "sent"]


@pytest.mark.parametrize(("key", "value"), [("SMS_PROVIDER", "twilio"), ("ENV", "production")])
def test_404_unless_development_outbox(app, api, shop, key, value):
    """With Twilio, or in production, the outbox routes do not exist."""
    old = app.config[key]
    app.config[key] = value
    try:
        resp = api.get("/api/outbox")
        assert resp.status_code == 404
        assert resp.get_json()["error"]["code"] == "not_found"
        assert api.post("/api/outbox/SMx/play", json={"status": "delivered"}).status_code == 404
    finally:
        app.config[key] = old
