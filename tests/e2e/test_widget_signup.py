"""End to end in headless Chromium: a shopper signs up through the storefront widget, the
confirmation text reaches the Twilio stand-in, and replying Y subscribes them.

The storefront page is the real app embed block (rendered with python-liquid by the storefront
harness) with its JS and CSS; the harness forwards /apps/sms/* to the live app's /proxy/* with
Shopify's app proxy signature. Texts go through the real send path to FakeTwilio, and the reply
comes back from FakeTwilio as a signed inbound webhook.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask

from shopify_app.providers import set_provider
from shopify_app.services import consent
from tests.conftest import API_SECRET, make_shop
from tests.e2e.storefront_harness import StorefrontServer, verify_proxy_query
from tests.fakes.twilio_server import DEFAULT_ACCOUNT_SID, FakeTwilio
from tests.integration.consent_support import kinds, ledger, subscriber, use_sender

pytestmark = pytest.mark.e2e

FROM_NUMBER = "+15005550006"
TWILIO_TOKEN = "test-twilio-token"
TYPED = "(202) 555-0142"
PHONE = "+12025550142"


@pytest.fixture
def twilio(app: Flask, live_server: Any) -> Iterator[FakeTwilio]:
    """FakeTwilio as the app's SMS provider, and the live server as the public APP_URL (Twilio
    signs inbound webhooks over the URL it calls)."""
    keys = (
        "SMS_PROVIDER",
        "TWILIO_ACCOUNT_SID",
        "TWILIO_AUTH_TOKEN",
        "TWILIO_API_BASE_URL",
        "TWILIO_FROM_NUMBER",
        "APP_URL",
    )
    saved = {key: app.config.get(key) for key in keys}
    with FakeTwilio(DEFAULT_ACCOUNT_SID, TWILIO_TOKEN, seed=3) as fake:
        app.config.update(
            SMS_PROVIDER="twilio",
            TWILIO_ACCOUNT_SID=fake.account_sid,
            TWILIO_AUTH_TOKEN=TWILIO_TOKEN,
            TWILIO_API_BASE_URL=fake.url,
            TWILIO_FROM_NUMBER=FROM_NUMBER,
            APP_URL=live_server.url,
        )
        set_provider(app, None)  # rebuilt from the config above on first use
        try:
            yield fake
        finally:
            app.config.update(saved)
            set_provider(app, None)


def test_shopper_signs_up_and_confirms_with_y(
    page: Any, live_server: Any, twilio: FakeTwilio, run_jobs
) -> None:
    shop = use_sender(make_shop(), FROM_NUMBER)
    shop_id, domain = shop.id, shop.domain
    shown = consent.shop_text(shop, "consent_text")

    with StorefrontServer(
        live_server.url, domain, API_SECRET, settings={"delay_seconds": 0}
    ) as storefront:
        home = storefront.url + "/"
        page.goto(home)
        # The widget's script is deferred: it must not block the page's parsing.
        assert page.eval_on_selector("script[src$='tidings-optin.js']", "s => s.defer") is True
        dialog = page.get_by_role("dialog")
        dialog.wait_for()
        assert shown in dialog.inner_text()  # the disclosure, verbatim from the app
        page.get_by_label("Phone").fill(TYPED)
        dialog.get_by_role("button", name="Subscribe").click()
        status = page.get_by_role("status")
        status.filter(has_text="Reply Y").wait_for()

        posts = [r for r in storefront.requests if r["path"] == "/proxy/subscribe"]
        assert len(posts) == 1 and posts[0]["status"] == 200
        assert verify_proxy_query(urlsplit(posts[0]["url"]).query, API_SECRET)

    sub = subscriber(shop_id, PHONE)
    assert sub.status == "pending"
    sub_id = sub.id
    requested = ledger(shop_id, sub_id)[0]
    assert (requested.kind, requested.source, requested.consent_text) == (
        "requested",
        "widget",
        shown,
    )
    assert requested.ip == "127.0.0.1" and "Chrome" in (requested.user_agent or "")
    assert requested.page_url == home

    run_jobs()
    confirmation = twilio.received_to(PHONE)
    assert len(confirmation) == 1
    assert "Reply Y to confirm" in confirmation[0].body
    assert confirmation[0].from_ == FROM_NUMBER

    status_code, _ = twilio.send_inbound(
        f"{live_server.url}/webhooks/twilio/inbound", PHONE, FROM_NUMBER, "Y"
    )
    assert status_code == 200
    assert subscriber(shop_id, PHONE).status == "subscribed"
    assert kinds(shop_id, sub_id) == [("requested", "widget"), ("confirmed", "keyword")]

    run_jobs()
    texts = [m.body for m in twilio.received_to(PHONE)]
    assert len(texts) == 2
    assert "You're subscribed to recurring automated marketing texts" in texts[1]
