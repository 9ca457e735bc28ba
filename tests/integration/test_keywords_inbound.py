"""Inbound keywords at /webhooks/twilio/inbound: STOP always wins (and answers once), HELP, Y,
START/UNSTOP/YES, the join keyword, and everything else kept for the merchant."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from shopify_app.extensions import db
from shopify_app.models import InboundMessage, Message, Shop
from shopify_app.services import sending
from tests.conftest import make_shop
from tests.integration.consent_support import (
    add_subscriber,
    inbound,
    kinds,
    ledger,
    messages_of,
    subscriber,
    use_sender,
)
from tests.integration.send_support import (
    FROM_NUMBER,
    add_campaign,
    add_campaign_messages,
)

PHONE = "+12025550142"
OTHER = "+12025550143"
BRAND = "Tidings Test Shop"


def bodies(fake, number: str) -> list[str]:  # noqa: ANN001
    return [m.body for m in fake.received_to(number)]


@pytest.mark.parametrize(
    "body",
    [
        "STOP",
        "stop",
        "  Stop.  ",
        "STOP!!",
        "Stop please",
        "stopall",
        "UNSUBSCRIBE",
        "cancel",
        "End",
        "quit",
        "REVOKE",
        "optout",
        "Opt out",
        "opt-out",
        "stop texting me",
        "Please stop sending me these texts",
        "unsubscribe me",
        "no more texts",
        "Arrêt",
        "STOP SMS",
        "darme de baja",
        "No más mensajes",
        "ne plus recevoir",
    ],
)
def test_opt_out_phrasings_unsubscribe_and_confirm_once(
    client: FlaskClient,
    shop: Shop,
    fake_twilio,
    run_jobs,
    body: str,
) -> None:
    """Every way of saying stop unsubscribes at once and gets exactly one confirmation."""
    shop_id = use_sender(shop).id
    sub_id = add_subscriber(shop, PHONE).id
    resp = inbound(client, PHONE, body, sid="SMstop0001")
    assert resp.status_code == 200
    assert resp.mimetype == "text/xml"

    row = subscriber(shop_id, PHONE)
    assert row.status == "unsubscribed" and row.unsubscribed_at is not None
    last = ledger(shop_id, sub_id)[-1]
    assert (last.kind, last.source, last.evidence_id) == ("opted_out", "keyword", "SMstop0001")
    run_jobs()
    assert bodies(fake_twilio, PHONE) == [
        f"{BRAND}: You're unsubscribed and will receive no further messages."
    ]


def test_twilio_filtered_stop_gets_no_second_confirmation(
    client: FlaskClient, shop: Shop, fake_twilio, run_jobs
) -> None:
    """With OptOutType present Twilio already answered: we unsubscribe and send nothing."""
    shop_id = use_sender(shop).id
    sub_id = add_subscriber(shop, PHONE).id
    inbound(client, PHONE, "STOP", OptOutType="STOP")
    run_jobs()
    assert subscriber(shop_id, PHONE).status == "unsubscribed"
    assert kinds(shop_id, sub_id)[-1] == ("opted_out", "keyword")
    assert bodies(fake_twilio, PHONE) == []


def test_second_stop_gets_no_second_reply(
    client: FlaskClient,
    shop: Shop,
    fake_twilio,
    run_jobs,
) -> None:
    """A repeated STOP neither writes a second event nor sends a second confirmation."""
    shop_id = use_sender(shop).id
    sub_id = add_subscriber(shop, PHONE).id
    inbound(client, PHONE, "STOP")
    run_jobs()
    inbound(client, PHONE, "stop")
    inbound(client, PHONE, "Stop texting me")
    run_jobs()
    assert [k for k, _ in kinds(shop_id, sub_id)].count("opted_out") == 1
    assert len(bodies(fake_twilio, PHONE)) == 1


def test_stop_while_a_campaign_is_sending(
    client: FlaskClient,
    shop: Shop,
    fake_twilio,
    run_jobs,
) -> None:
    """STOP arriving with campaign rows still pending: nothing but the confirmation goes to
    that number afterwards; other subscribers still get the campaign."""
    shop_id = use_sender(shop).id
    stopper = add_subscriber(shop, PHONE)
    other = add_subscriber(shop, OTHER)
    campaign = add_campaign(shop, status="sending")
    add_campaign_messages(shop, campaign, [stopper, other])

    inbound(client, PHONE, "STOP")
    stopped = [m for m in messages_of(shop_id, stopper.id) if m.kind == "campaign"]
    assert [(m.status, m.skip_reason) for m in stopped] == [("skipped", "opted_out")]

    sending.schedule_sending(shop_id)
    run_jobs()
    assert bodies(fake_twilio, PHONE) == [
        f"{BRAND}: You're unsubscribed and will receive no further messages."
    ]
    assert len(bodies(fake_twilio, OTHER)) == 1  # the campaign went to the other subscriber
    assert "Sale today" in bodies(fake_twilio, OTHER)[0]


def test_stop_to_a_shared_number_applies_in_every_shop(
    app: Flask,
    client: FlaskClient,
    shop: Shop,
    fake_twilio,
    run_jobs,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A STOP to the app-wide number unsubscribes the sender in every shop that has it, with
    one confirmation in all."""
    monkeypatch.setitem(app.config, "TWILIO_FROM_NUMBER", FROM_NUMBER)
    second = make_shop("second-shop.myshopify.com", name="Second Shop")
    third = make_shop("third-shop.myshopify.com", name="Third Shop")
    first_id = add_subscriber(shop, PHONE).id
    second_id = add_subscriber(second, PHONE).id
    add_subscriber(third, OTHER)
    ids = (shop.id, second.id, third.id)

    inbound(client, PHONE, "STOP")
    assert subscriber(ids[0], PHONE).status == "unsubscribed"
    assert subscriber(ids[1], PHONE).status == "unsubscribed"
    assert kinds(ids[0], first_id)[-1] == ("opted_out", "keyword")
    assert kinds(ids[1], second_id)[-1] == ("opted_out", "keyword")
    assert subscriber(ids[2], OTHER).status == "subscribed"
    run_jobs()
    assert len(bodies(fake_twilio, PHONE)) == 1


def test_stop_from_an_unknown_number_is_remembered(client: FlaskClient, shop: Shop) -> None:
    """A STOP from a number the shop never had leaves an unsubscribed row (no later import or
    stale webhook can add it without new consent)."""
    shop_id = use_sender(shop).id
    inbound(client, PHONE, "STOP")
    row = subscriber(shop_id, PHONE)
    assert row.status == "unsubscribed"
    assert kinds(shop_id, row.id) == [("opted_out", "keyword")]


@pytest.mark.parametrize("body", ["HELP", "help", " Help? ", "INFO", "info please"])
def test_help_answers_with_the_shop_help_text(
    client: FlaskClient,
    shop: Shop,
    fake_twilio,
    run_jobs,
    body: str,
) -> None:
    """HELP/INFO get the shop's help text; the subscriber's status is untouched."""
    shop = use_sender(shop, support_contact="help@tidings-test.example")
    shop_id = shop.id
    add_subscriber(shop, PHONE)
    inbound(client, PHONE, body)
    run_jobs()
    assert bodies(fake_twilio, PHONE) == [
        f"{BRAND}: Recurring automated marketing texts. Msg frequency varies. Msg & data rates "
        "may apply. Reply STOP to cancel. Help: help@tidings-test.example"
    ]
    assert subscriber(shop_id, PHONE).status == "subscribed"


def test_help_from_an_unknown_number_is_answered_in_twiml(client: FlaskClient, shop: Shop) -> None:
    """A stranger asking HELP gets the help text straight back (no subscriber row made)."""
    shop_id = use_sender(shop).id
    resp = inbound(client, PHONE, "HELP")
    assert "Recurring automated marketing texts" in resp.get_data(as_text=True)
    assert "<Message>" in resp.get_data(as_text=True)
    assert subscriber(shop_id, PHONE) is None


@pytest.mark.parametrize("body", ["Y", "y", "YES", " yes! ", "Yes please"])
def test_reply_y_confirms_a_pending_opt_in(
    client: FlaskClient,
    shop: Shop,
    fake_twilio,
    run_jobs,
    body: str,
) -> None:
    """Y confirms: subscribed, a `confirmed` event with the text's sid, the welcome text."""
    shop_id = use_sender(shop).id
    sub_id = add_subscriber(shop, PHONE, status="pending").id
    inbound(client, PHONE, body, sid="SMconfirm01")
    row = subscriber(shop_id, PHONE)
    assert row.status == "subscribed" and row.subscribed_at is not None
    last = ledger(shop_id, sub_id)[-1]
    assert (last.kind, last.source, last.evidence_id) == ("confirmed", "keyword", "SMconfirm01")
    run_jobs()
    welcome = bodies(fake_twilio, PHONE)
    assert len(welcome) == 1
    for part in (
        BRAND,
        "recurring automated marketing",
        "Msg frequency varies",
        "Msg & data rates may apply",
        "HELP",
        "STOP",
    ):
        assert part in welcome[0]


def test_welcome_carries_the_merchants_welcome_code(
    client: FlaskClient, shop: Shop, fake_twilio, run_jobs
) -> None:
    """With a welcome code set, the welcome text after Y includes it."""
    use_sender(shop, widget={"welcome_discount": "WELCOME10"})
    add_subscriber(shop, PHONE, status="pending")
    inbound(client, PHONE, "Y")
    run_jobs()
    assert bodies(fake_twilio, PHONE)[0].endswith("Your code: WELCOME10")


@pytest.mark.parametrize("body", ["START", "start", "UNSTOP", "Yes", "Unstop."])
def test_start_resubscribes_an_opted_out_number(
    client: FlaskClient,
    shop: Shop,
    fake_twilio,
    run_jobs,
    body: str,
) -> None:
    """START/UNSTOP/YES from an opted-out number: `resubscribed` (source keyword), welcome."""
    shop_id = use_sender(shop).id
    sub_id = add_subscriber(shop, PHONE, status="unsubscribed").id
    inbound(client, PHONE, body)
    assert subscriber(shop_id, PHONE).status == "subscribed"
    assert kinds(shop_id, sub_id)[-1] == ("resubscribed", "keyword")
    run_jobs()
    assert len(bodies(fake_twilio, PHONE)) == 1
    assert "You're subscribed" in bodies(fake_twilio, PHONE)[0]


@pytest.mark.parametrize(
    "body,keywords",
    [("JOIN", ["JOIN"]), ("join", ["JOIN"]), ("Join!", ["JOIN"]), ("vip", ["VIP", "JOIN"])],
)
def test_join_keyword_starts_a_double_opt_in(
    client: FlaskClient,
    shop: Shop,
    fake_twilio,
    run_jobs,
    body: str,
    keywords: list[str],
) -> None:
    """The text-to-join keyword from an unknown number: pending (source keyword, the text's
    sid as evidence), the confirmation request; then Y subscribes."""
    shop_id = use_sender(shop, join_keywords=keywords).id
    inbound(client, PHONE, body, sid="SMjoin0001")
    row = subscriber(shop_id, PHONE)
    assert (row.status, row.source) == ("pending", "keyword")
    row_id = row.id
    event = ledger(shop_id, row_id)[0]
    assert (event.kind, event.source, event.evidence_id) == ("requested", "keyword", "SMjoin0001")
    run_jobs()
    assert len(bodies(fake_twilio, PHONE)) == 1
    assert "Reply Y to confirm" in bodies(fake_twilio, PHONE)[0]

    inbound(client, PHONE, "Y")
    run_jobs()
    assert subscriber(shop_id, PHONE).status == "subscribed"
    assert [k for k, _ in kinds(shop_id, row_id)] == ["requested", "confirmed"]
    assert len(bodies(fake_twilio, PHONE)) == 2


def test_other_texts_are_kept_for_the_merchant(
    client: FlaskClient,
    shop: Shop,
    fake_twilio,
    run_jobs,
) -> None:
    """A question is stored as an inbound message; nothing changes and nothing is sent. A
    subscribed "yes" (perhaps answering a campaign) is kept for the merchant too."""
    shop_id = use_sender(shop).id
    sub_id = add_subscriber(shop, PHONE).id
    inbound(client, PHONE, "Do you ship to Canada?")
    inbound(client, PHONE, "yes")
    run_jobs()
    stored = list(
        db.session.scalars(
            select(InboundMessage)
            .where(InboundMessage.shop_id == shop_id)
            .order_by(InboundMessage.id)
        )
    )
    assert [(m.body, m.keyword, m.subscriber_id) for m in stored] == [
        ("Do you ship to Canada?", "other", sub_id),
        ("yes", "other", sub_id),
    ]
    assert subscriber(shop_id, PHONE).status == "subscribed"
    assert len(ledger(shop_id, sub_id)) == 2
    assert bodies(fake_twilio, PHONE) == []


def test_keyword_texts_are_marked_and_a_repeat_is_acted_on_once(
    client: FlaskClient, shop: Shop, fake_twilio, run_jobs
) -> None:
    """Twilio retrying the same MessageSid changes nothing the second time."""
    shop_id = use_sender(shop).id
    sub_id = add_subscriber(shop, PHONE, status="unsubscribed").id
    inbound(client, PHONE, "START", sid="SMrepeat01")
    inbound(client, PHONE, "START", sid="SMrepeat01")
    run_jobs()
    assert [k for k, _ in kinds(shop_id, sub_id)].count("resubscribed") == 1
    assert len(bodies(fake_twilio, PHONE)) == 1
    stored = db.session.scalars(select(InboundMessage)).one()
    assert stored.keyword == "opt_in"


def test_bad_signature_changes_nothing(client: FlaskClient, shop: Shop) -> None:
    """An unsigned STOP is refused before any work."""
    shop_id = use_sender(shop).id
    add_subscriber(shop, PHONE)
    resp = client.post(
        "/webhooks/twilio/inbound",
        data={"From": PHONE, "To": FROM_NUMBER, "Body": "STOP", "MessageSid": "SMforged"},
        headers={"X-Twilio-Signature": "forged"},
    )
    assert resp.status_code == 403
    assert subscriber(shop_id, PHONE).status == "subscribed"
    assert db.session.scalars(select(Message)).all() == []
