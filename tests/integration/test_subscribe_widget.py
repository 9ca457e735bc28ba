"""The storefront widget's app proxy endpoints: /proxy/widget and /proxy/subscribe (double
opt-in step one), with the limits against SMS pumping and readable errors."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from shopify_app.extensions import db
from shopify_app.models import ConsentEvent, Message, Shop, Subscriber
from shopify_app.services import consent
from tests.integration.consent_support import (
    PAGE_URL,
    SHOPPER_IP,
    SHOPPER_UA,
    add_subscriber,
    kinds,
    ledger,
    messages_of,
    proxy_url,
    subscribe,
    subscriber,
    use_sender,
)

PHONE_TYPED = "(202) 555-0142"
PHONE = "+12025550142"


def total(model) -> int:  # noqa: ANN001
    return db.session.scalar(select(func.count()).select_from(model)) or 0


def test_widget_config_gives_the_current_consent_text(client: FlaskClient, shop: Shop) -> None:
    """GET /proxy/widget: the texts the widget shows, the disclosure rendered with the brand."""
    resp = client.get(proxy_url("widget"))
    assert resp.status_code == 200
    assert resp.headers["Cache-Control"] == "no-store"
    body = resp.get_json()
    assert set(body) == {
        "enabled",
        "headline",
        "body",
        "consent_text",
        "offer_text",
        "button_label",
        "country",
    }
    assert body["enabled"] is True and body["country"] == "US"
    text = body["consent_text"]
    assert "Tidings Test Shop" in text and "{brand}" not in text
    for part in (
        "recurring automated marketing",
        "not a condition of purchase",
        "Msg frequency varies",
        "Msg & data rates may apply",
        "HELP",
        "STOP",
    ):
        assert part in text


def test_subscribe_creates_pending_subscriber_with_evidence(
    client: FlaskClient, shop: Shop, fake_twilio, run_jobs
) -> None:
    """A sign-up: pending subscriber, `requested` event with IP, user agent, page and the exact
    text shown, and one "Reply Y" text."""
    shop_id = use_sender(shop).id
    shown = consent.shop_text(shop, "consent_text")
    resp = subscribe(client, shop, PHONE_TYPED)
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json() == {
        "ok": True,
        "status": "pending",
        "message": "Almost done! Reply Y to the text we just sent you to confirm.",
    }
    sub = subscriber(shop_id, PHONE)
    assert (sub.status, sub.source, sub.country) == ("pending", "widget", "US")
    assert sub.timezone == "America/New_York"
    event = ledger(shop_id, sub.id)[0]
    assert (event.kind, event.source) == ("requested", "widget")
    assert event.ip == SHOPPER_IP  # the first X-Forwarded-For hop, not Shopify's proxy
    assert event.user_agent == SHOPPER_UA
    assert event.page_url == PAGE_URL
    assert event.consent_text == shown
    sub_id = sub.id
    run_jobs()
    received = fake_twilio.received_to(PHONE)
    assert len(received) == 1
    assert received[0].body.startswith("Tidings Test Shop: Reply Y to confirm")
    assert [m.kind for m in messages_of(shop_id, sub_id)] == ["transactional"]


def test_double_submit_sends_one_confirmation(
    client: FlaskClient,
    shop: Shop,
    fake_twilio,
    run_jobs,
) -> None:
    """Two submits of the same number: one ledger request, one confirmation text."""
    shop_id = use_sender(shop).id
    first = subscribe(client, shop, PHONE_TYPED)
    second = subscribe(client, shop, "+1 202 555 0142")
    assert first.get_json()["status"] == second.get_json()["status"] == "pending"
    sub_id = subscriber(shop_id, PHONE).id
    assert kinds(shop_id, sub_id) == [("requested", "widget")]
    run_jobs()
    assert len(fake_twilio.received_to(PHONE)) == 1


def test_honeypot_pretends_success_and_stores_nothing(client: FlaskClient, shop: Shop) -> None:
    """A bot filling the hidden field gets the normal answer; nothing is stored or sent."""
    resp = subscribe(client, shop, PHONE_TYPED, company="Acme Bots Ltd")
    assert resp.status_code == 200
    assert resp.get_json()["ok"] is True
    assert total(Subscriber) == total(ConsentEvent) == total(Message) == 0


def test_outdated_consent_text_is_refused(client: FlaskClient, shop: Shop) -> None:
    """A page showing an older disclosure cannot collect consent to the current one."""
    resp = subscribe(client, shop, PHONE_TYPED, consent_text="Sign me up for texts!")
    assert resp.status_code == 400
    assert resp.get_json()["error"] == {
        "code": "form_outdated",
        "details": None,
        "message": "This form is out of date, please reload the page and try again.",
    }
    assert total(Subscriber) == 0


@pytest.mark.parametrize(
    "typed,message",
    [
        ("", "Please enter a phone number."),
        ("555", "That number looks too short."),
        ("not a number", "That doesn't look like a valid phone number."),
        ("+1 800 555 0100", "That number can't receive texts (it is a toll-free number)."),
        ("+44 7400 123456", "Sorry, we can't send texts to numbers in that country."),
    ],
)
def test_bad_numbers_get_a_readable_message(
    client: FlaskClient, shop: Shop, typed: str, message: str
) -> None:
    """Each refusal carries a sentence the shopper can act on."""
    resp = subscribe(client, shop, typed)
    assert resp.status_code == 400
    assert resp.get_json()["error"]["message"] == message
    assert total(Subscriber) == 0


def test_other_countries_when_the_merchant_allows_them(client: FlaskClient, shop: Shop) -> None:
    """A UK number is accepted once the merchant lists GB."""
    use_sender(shop, widget={"allowed_countries": ["US", "GB"]})
    resp = subscribe(client, shop, "+44 7400 123456")
    assert resp.status_code == 200
    assert subscriber(shop.id, "+447400123456").country == "GB"


def test_per_ip_limit(client: FlaskClient, shop: Shop) -> None:
    """Five attempts per address in ten minutes; the sixth is refused with 429."""
    for i in range(5):
        assert subscribe(client, shop, f"(202) 555-01{i:02d}").status_code == 200
    resp = subscribe(client, shop, "(202) 555-0199")
    assert resp.status_code == 429
    assert resp.get_json()["error"]["message"] == (
        "Too many sign-up attempts. Please try again later."
    )
    assert subscribe(client, shop, "(202) 555-0199", ip="198.51.100.99").status_code == 200


def test_per_number_limit(client: FlaskClient, shop: Shop) -> None:
    """Three attempts per number a day, whatever the address."""
    for i in range(3):
        assert subscribe(client, shop, PHONE_TYPED, ip=f"198.51.100.{i}").status_code == 200
    resp = subscribe(client, shop, PHONE_TYPED, ip="198.51.100.50")
    assert resp.status_code == 429


def test_already_subscribed_gets_no_text(
    client: FlaskClient,
    shop: Shop,
    fake_twilio,
    run_jobs,
) -> None:
    """A subscribed number signing up again: told so, nothing written or sent."""
    shop_id = use_sender(shop).id
    sub_id = add_subscriber(shop, PHONE).id
    resp = subscribe(client, shop, PHONE_TYPED)
    assert resp.get_json()["status"] == "already_subscribed"
    assert len(ledger(shop_id, sub_id)) == 2
    run_jobs()
    assert fake_twilio.received_to(PHONE) == []


def test_opted_out_number_can_sign_up_again(
    client: FlaskClient,
    shop: Shop,
    fake_twilio,
    run_jobs,
) -> None:
    """After a STOP, a new sign-up starts a new double opt-in (pending until Y)."""
    shop_id = use_sender(shop).id
    sub_id = add_subscriber(shop, PHONE, status="unsubscribed").id
    resp = subscribe(client, shop, PHONE_TYPED)
    assert resp.get_json()["status"] == "pending"
    assert subscriber(shop_id, PHONE).status == "pending"
    assert kinds(shop_id, sub_id)[-1] == ("requested", "widget")
    run_jobs()
    assert len(fake_twilio.received_to(PHONE)) == 1


def test_logged_in_customer_is_linked(client: FlaskClient, shop: Shop) -> None:
    """The app proxy's logged_in_customer_id links the subscriber to its Shopify customer."""
    resp = subscribe(client, shop, PHONE_TYPED, customer="7012345")
    assert resp.status_code == 200
    assert subscriber(shop.id, PHONE).customer_id == 7012345


def test_closed_widget_and_unsigned_requests(client: FlaskClient, shop: Shop) -> None:
    """A disabled widget refuses readably; a request without Shopify's signature is 401."""
    assert client.post("/proxy/subscribe", data={"phone": PHONE}).status_code == 401
    use_sender(shop, widget={"enabled": False})
    resp = subscribe(client, shop, PHONE_TYPED)
    assert resp.status_code == 403
    assert resp.get_json()["error"]["message"] == "Text sign-up is not available right now."
    assert client.get(proxy_url("widget")).get_json()["enabled"] is False
