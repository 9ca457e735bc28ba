"""Tests of the loopback stand-ins and signing helpers themselves.

Run: .venv/bin/python -m pytest tests/fakes -q -p no:cacheprovider --noconftest
"""

from __future__ import annotations

import base64
import concurrent.futures
import datetime as dt
import hashlib
import hmac
import json
import random
import threading
import time

import jwt
import pytest
import requests
from aiohttp import web
from twilio.base.exceptions import TwilioRestException
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from tests.fakes import signing
from tests.fakes._server import FakeService, SpawnedFake, json_response
from tests.fakes.shopify_server import (
    GRANT_TOKEN_EXCHANGE,
    INVALID_TOKEN_ERROR,
    OFFLINE_TOKEN,
    SUBJECT_ID_TOKEN,
    FakeShopify,
    GraphQLError,
    parse_operation,
    root_field_name,
)
from tests.fakes.twilio_server import FakeTwilio, count_segments

SHOP = "tidings-test.myshopify.com"
CLIENT_ID = "client-id-123"
SECRET = "shhh-secret-0123456789abcdef0123456789"
TOKEN = "twilio-auth-token-0123456789abcd"


@pytest.fixture
def http():
    with requests.Session() as session:
        session.trust_env = False  # never route loopback through a proxy
        yield session


class Receiver(FakeService):
    """A tiny app stand-in: records POSTs and checks X-Twilio-Signature."""

    def __init__(self, auth_token: str, status: int = 204):
        super().__init__()
        self.validator = RequestValidator(auth_token)
        self.status = status
        self.received: list[dict] = []
        self.lock = threading.Lock()

    def build_app(self):
        app = web.Application()
        app.router.add_post("/{tail:.*}", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.Response:
        form = dict(await request.post())
        url = f"{self.url}{request.path_qs}"
        valid = self.validator.validate(url, form, request.headers.get("X-Twilio-Signature", ""))
        with self.lock:
            self.received.append({"path": request.path, "form": form, "valid": valid})
        return web.Response(status=self.status if valid else 403, text="<Response/>")


@pytest.fixture
def twilio_fake():
    with FakeTwilio(auth_token=TOKEN, seed=7) as fake:
        yield fake


@pytest.fixture
def client(twilio_fake):
    c = Client(twilio_fake.account_sid, TOKEN)
    c.http_client.session.trust_env = False
    c.api.base_url = twilio_fake.url
    return c


@pytest.fixture
def shopify():
    with FakeShopify(CLIENT_ID, SECRET, shops={SHOP: {"name": "Tidings Test"}}) as fake:
        yield fake


def messages_url(fake: FakeTwilio) -> str:
    return f"{fake.url}/2010-04-01/Accounts/{fake.account_sid}/Messages.json"


# ============================================================================ signing
def test_oauth_hmac_vector():
    params = {
        "code": "0907a61c0c8d55e99db179b68161bc00",
        "shop": "some-shop.myshopify.com",
        "state": "0.6784241404160823",
        "timestamp": "1337178173",
    }
    expected = "700e2dadb827fcc8609e9d5ce208b2e9cdaab9df07390d2cbca10d7c328fc4bf"
    assert signing.oauth_query(params, "hush")["hmac"] == expected
    assert signing.oauth_query({**params, "hmac": "stale"}, "hush")["hmac"] == expected


def test_app_proxy_signature_vector():
    params = {
        "extra": ["1", "2"],
        "shop": "shop-name.myshopify.com",
        "logged_in_customer_id": "1",
        "path_prefix": "/apps/awesome_reviews",
        "timestamp": "1317327555",
    }
    query = signing.app_proxy_query(params, "hush")
    assert query["signature"] == "4c68c8624d737112c91818c11017d24d334b524cb5c2b8ba08daa056f7395ddb"
    assert query["extra"] == ["1", "2"]


def test_shopify_webhook_headers():
    body = b'{"id": 1, "phone": "+15555550100"}'
    headers = signing.shopify_webhook_headers(
        body, "whsec", topic="orders/create", shop=SHOP, webhook_id="w-1"
    )
    digest = hmac.new(b"whsec", body, hashlib.sha256).digest()
    assert headers["X-Shopify-Hmac-Sha256"] == base64.b64encode(digest).decode()
    assert headers["X-Shopify-Topic"] == "orders/create"
    assert headers["X-Shopify-Shop-Domain"] == SHOP
    assert headers["X-Shopify-Webhook-Id"] == "w-1"
    assert headers["X-Shopify-API-Version"] == "2026-10"
    assert headers["X-Shopify-Event-Id"] and headers["X-Shopify-Triggered-At"].endswith("Z")
    at = dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.UTC)
    again = signing.shopify_webhook_headers(body, "whsec", topic="t", shop=SHOP, triggered_at=at)
    assert again["X-Shopify-Triggered-At"] == "2026-11-01T12:00:00Z"
    assert again["X-Shopify-Webhook-Id"] != headers["X-Shopify-Webhook-Id"]


def test_session_token_claims_and_overrides():
    token = signing.session_token(SHOP, CLIENT_ID, SECRET, now=1_800_000_000, nbf_offset=5)
    claims = jwt.decode(
        token,
        SECRET,
        algorithms=["HS256"],
        audience=CLIENT_ID,
        options={"verify_exp": False, "verify_iat": False, "verify_nbf": False},
    )
    assert claims["iss"] == f"https://{SHOP}/admin"
    assert claims["dest"] == f"https://{SHOP}"
    assert claims["exp"] == 1_800_000_060 and claims["nbf"] == 1_800_000_005
    assert {"sub", "iat", "jti", "sid"} <= set(claims)
    token = signing.session_token(SHOP, CLIENT_ID, SECRET, iss=None, dest="https://evil.com")
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], audience=CLIENT_ID)
    assert "iss" not in claims and claims["dest"] == "https://evil.com"


def test_twilio_signature_validates():
    url = "https://app.example.com/twilio/inbound?x=1"
    params = {"From": "+15555550100", "Body": "STOP", "MessageSid": "SM1"}
    sig = signing.twilio_signature(url, params, TOKEN)
    validator = RequestValidator(TOKEN)
    assert validator.validate(url, params, sig)
    assert not validator.validate(url, {**params, "Body": "START"}, sig)


# ============================================================================ Twilio
def test_segments():
    assert count_segments("a" * 160) == 1
    assert count_segments("a" * 161) == 2
    assert count_segments("a" * 306) == 2 and count_segments("a" * 307) == 3
    assert count_segments("€" * 80) == 1 and count_segments("€" * 81) == 2
    assert count_segments("a" * 152 + "€") == 1
    assert count_segments("a" * 152 + "€" + "a" * 152) == 3  # an escape pair is never split
    assert count_segments("ç" * 70) == 1 and count_segments("ç" * 71) == 2
    assert count_segments("😀" * 35) == 1 and count_segments("😀" * 36) == 2
    assert count_segments("a" * 66 + "😀" + "a" * 67) == 3  # surrogate pair not split


def test_twilio_client_create_fetch_list(twilio_fake, client):
    msg = client.messages.create(
        to="+15555550100",
        from_="+15555550001",
        body="Hello {first}",
        status_callback="http://127.0.0.1:9/status",
        validity_period=600,
    )
    assert msg.sid.startswith("SM") and len(msg.sid) == 34
    assert msg.status == "queued" and msg.num_segments == "1" and msg.price is None
    assert msg.account_sid == twilio_fake.account_sid and msg.error_code is None
    assert isinstance(msg.date_created, dt.datetime)
    svc = client.messages.create(
        to="+15555550101", messaging_service_sid="MG" + "a" * 32, body="x" * 200
    )
    assert svc.status == "accepted" and svc.from_ is None and svc.num_segments == "2"

    fetched = client.messages(msg.sid).fetch()
    assert fetched.body == "Hello {first}" and fetched.to == "+15555550100"
    recorded = twilio_fake.messages[0]
    assert recorded.status_callback == "http://127.0.0.1:9/status"
    assert recorded.validity_period == 600

    for i in range(5):
        client.messages.create(to="+15555550100", from_="+15555550001", body=f"n{i}")
    mine = client.messages.list(to="+15555550100")
    assert len(mine) == 6 and mine[0].body == "n4"  # newest first
    paged = list(client.messages.stream(page_size=2))
    assert len(paged) == 7 and len({m.sid for m in paged}) == 7
    since = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    assert len(client.messages.list(date_sent_after=since, to="+15555550101")) == 1
    later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)
    assert client.messages.list(date_sent_after=later) == []
    assert twilio_fake.count_by_to() == {"+15555550100": 6, "+15555550101": 1}
    assert len(twilio_fake.received_to("+15555550101")) == 1


def test_list_date_filters(twilio_fake, http):
    auth = (twilio_fake.account_sid, TOKEN)
    http.post(
        messages_url(twilio_fake),
        auth=auth,
        data={"To": "+15555550100", "From": "+15555550001", "Body": "x"},
    )
    today = dt.datetime.now(dt.UTC).date()
    for params, n in [
        ({"DateSent": str(today)}, 1),
        ({"DateSent>": str(today)}, 1),
        ({"DateSent<": str(today)}, 1),
        ({"DateSent>": str(today + dt.timedelta(days=1))}, 0),
        ({"DateSent<": str(today - dt.timedelta(days=1))}, 0),
        ({"From": "+15555550001"}, 1),
        ({"From": "+19999999999"}, 0),
    ]:
        page = http.get(messages_url(twilio_fake), params=params, auth=auth).json()
        assert len(page["messages"]) == n, params
        assert page["page"] == 0 and page["page_size"] == 50 and page["next_page_uri"] is None
    bad = http.get(messages_url(twilio_fake), params={"DateSent": "soon"}, auth=auth)
    assert bad.status_code == 400


def test_validation_errors_and_auth(twilio_fake, http):
    auth = (twilio_fake.account_sid, TOKEN)
    cases = [
        ({"From": "+15555550001", "Body": "x"}, 21604),
        ({"To": "+15555550100", "From": "+15555550001"}, 21602),
        ({"To": "+15555550100", "Body": "x"}, 21603),
        ({"To": "555", "From": "+15555550001", "Body": "x"}, 21211),
        ({"To": "+15555550100", "From": "+1555", "Body": "x", "ValidityPeriod": "36001"}, 21624),
    ]
    for data, code in cases:
        r = http.post(messages_url(twilio_fake), data=data, auth=auth)
        body = r.json()
        assert r.status_code == 400 and body["code"] == code, (data, body)
        assert body["status"] == 400 and body["message"]
        assert body["more_info"] == f"https://www.twilio.com/docs/errors/{code}"
    r = http.post(messages_url(twilio_fake), data=cases[0][0], auth=(twilio_fake.account_sid, "x"))
    assert r.status_code == 401 and r.json()["code"] == 20003
    assert twilio_fake.messages == []
    outcomes = [req.outcome for req in twilio_fake.requests]
    assert outcomes == ["rejected"] * 5 + ["unauthorized"]


def test_permanent_failures(twilio_fake, client):
    twilio_fake.configure(fail_numbers={"+15555550666": (400, 21610), "+15555550667": 21614})
    with pytest.raises(TwilioRestException) as err:
        client.messages.create(to="+15555550666", from_="+15555550001", body="x")
    assert err.value.status == 400 and err.value.code == 21610
    with pytest.raises(TwilioRestException) as err:
        client.messages.create(to="+15555550667", from_="+15555550001", body="x")
    assert err.value.code == 21614
    assert twilio_fake.messages == [] and len(twilio_fake.requests) == 2


def test_injected_429_and_fail_next(twilio_fake, client, http):
    twilio_fake.configure(error_rate=1.0, error_mix={429: 1})
    r = http.post(
        messages_url(twilio_fake),
        auth=(twilio_fake.account_sid, TOKEN),
        data={"To": "+15555550100", "From": "+15555550001", "Body": "x"},
    )
    assert r.status_code == 429 and r.headers["Retry-After"] == "1"
    assert r.json()["code"] == 20429
    with pytest.raises(TwilioRestException) as err:
        client.messages.create(to="+15555550100", from_="+15555550001", body="x")
    assert err.value.status == 429 and err.value.code == 20429
    assert twilio_fake.messages == [] and twilio_fake.stats()["injected"] == 2

    twilio_fake.configure(error_rate=0.0)
    twilio_fake.fail_next(2, status=503, code=20503, retry_after=3)
    statuses = []
    for _ in range(3):
        r = http.post(
            messages_url(twilio_fake),
            auth=(twilio_fake.account_sid, TOKEN),
            data={"To": "+15555550100", "From": "+15555550001", "Body": "x"},
        )
        statuses.append((r.status_code, r.headers.get("Retry-After")))
    assert statuses == [(503, "3"), (503, "3"), (201, None)]
    assert len(twilio_fake.messages) == 1


def test_error_rate_mix_is_seeded():
    def run() -> list[int]:
        with FakeTwilio(auth_token=TOKEN, seed=3, error_rate=0.5) as fake:
            codes = []
            with requests.Session() as s:
                s.trust_env = False
                for _ in range(40):
                    r = s.post(
                        messages_url(fake),
                        auth=(fake.account_sid, TOKEN),
                        data={"To": "+15555550100", "From": "+1555", "Body": "x"},
                    )
                    codes.append(r.status_code)
            assert len(fake.messages) == codes.count(201)
            return codes

    first = run()
    assert first == run()
    assert {201, 429, 500} <= set(first)


def test_latency_does_not_block_loop():
    with FakeTwilio(auth_token=TOKEN, latency_ms=400) as fake:

        def send(i: int) -> int:
            with requests.Session() as s:
                s.trust_env = False
                return s.post(
                    messages_url(fake),
                    auth=(fake.account_sid, TOKEN),
                    data={"To": f"+1555555{i:04d}", "From": "+1555", "Body": "x"},
                ).status_code

        start = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(10) as pool:
            results = list(pool.map(send, range(10)))
        elapsed = time.monotonic() - start
    assert results == [201] * 10
    assert 0.4 <= elapsed < 2.0


def test_drop_mode_hang_and_close(twilio_fake, client, http):
    twilio_fake.configure(drop_after_accept_numbers=["+15555550777"], drop_hang_s=10)
    data = {"To": "+15555550777", "From": "+15555550001", "Body": "lost answer"}
    start = time.monotonic()
    with pytest.raises(requests.exceptions.ReadTimeout):
        http.post(
            messages_url(twilio_fake), data=data, auth=(twilio_fake.account_sid, TOKEN), timeout=0.5
        )
    assert time.monotonic() - start < 3
    # the message left anyway: reconciliation finds it by listing
    assert [m.body for m in twilio_fake.messages] == ["lost answer"]
    assert twilio_fake.requests[-1].outcome == "dropped"
    found = client.messages.list(to="+15555550777")
    assert [m.sid for m in found] == [twilio_fake.messages[0].sid]

    twilio_fake.configure(drop_mode="close", drop_after_accept_numbers=[])
    twilio_fake.drop_next(1)
    with pytest.raises(requests.exceptions.ConnectionError):
        http.post(
            messages_url(twilio_fake), data=data, auth=(twilio_fake.account_sid, TOKEN), timeout=5
        )
    assert len(twilio_fake.messages) == 2
    assert twilio_fake.stats()["dropped"] == 2


def test_status_callbacks_signed_and_automatic(twilio_fake, client):
    with Receiver(TOKEN) as app:
        callback = f"{app.url}/twilio/status?shop=a.myshopify.com"
        msg = client.messages.create(
            to="+15555550100", from_="+15555550001", body="hi", status_callback=callback
        )
        assert twilio_fake.post_status(msg.sid, "sent") == 204
        assert twilio_fake.post_status(msg.sid, "undelivered", error_code=30003) == 204
        first, second = app.received
        assert first["valid"] and second["valid"]
        assert first["form"]["MessageStatus"] == "sent" and "ErrorCode" not in first["form"]
        assert second["form"]["ErrorCode"] == "30003"
        assert first["form"]["MessageSid"] == msg.sid == first["form"]["SmsSid"]
        assert first["form"]["AccountSid"] == twilio_fake.account_sid
        assert first["form"]["To"] == "+15555550100" and first["form"]["From"] == "+15555550001"
        assert twilio_fake.get(msg.sid).status == "undelivered"
        assert client.messages(msg.sid).fetch().error_code == 30003

        app.received.clear()
        twilio_fake.configure(
            auto_callbacks=["sent", "delivered"],
            callback_delay_ms=20,
            delivery_failures={"+15555550999": ("undelivered", 30007)},
        )
        sids = [
            client.messages.create(
                to=f"+155555501{i:02d}", from_="+15555550001", body="x", status_callback=callback
            ).sid
            for i in range(20)
        ]
        bad = client.messages.create(
            to="+15555550999", from_="+15555550001", body="x", status_callback=callback
        )
        twilio_fake.wait_for_callbacks(10)
        assert len(app.received) == 20 * 2 + 2
        assert all(r["valid"] for r in app.received)
        statuses = {(r["form"]["MessageSid"], r["form"]["MessageStatus"]) for r in app.received}
        assert all((sid, "delivered") in statuses for sid in sids)
        assert (bad.sid, "undelivered") in statuses
        assert twilio_fake.get(bad.sid).error_code == 30007
        assert twilio_fake.stats()["callbacks"]["pending"] == 0


def test_callback_to_dead_url_is_recorded(twilio_fake, client):
    msg = client.messages.create(
        to="+15555550100",
        from_="+15555550001",
        body="x",
        status_callback="http://127.0.0.1:9/nothing",
    )
    assert twilio_fake.post_status(msg.sid, "sent") is None
    assert twilio_fake.callbacks[-1].error


def test_send_inbound_signed(twilio_fake):
    with Receiver(TOKEN, status=200) as app:
        status, text = twilio_fake.send_inbound(
            f"{app.url}/twilio/inbound",
            "+15555550100",
            "+15555550001",
            "STOP",
            OptOutType="STOP",
            MessagingServiceSid="MG" + "b" * 32,
        )
        assert status == 200 and text == "<Response/>"
        (got,) = app.received
        assert got["valid"]
        form = got["form"]
        assert form["Body"] == "STOP" and form["OptOutType"] == "STOP"
        assert form["From"] == "+15555550100" and form["To"] == "+15555550001"
        assert form["MessageSid"].startswith("SM") and form["NumMedia"] == "0"
        assert form["AccountSid"] == twilio_fake.account_sid


def test_reset_keeps_config(twilio_fake, client):
    twilio_fake.configure(fail_numbers={"+15555550666": 21610})
    client.messages.create(to="+15555550100", from_="+15555550001", body="x")
    twilio_fake.reset()
    assert twilio_fake.messages == [] and twilio_fake.requests == []
    assert twilio_fake.count_by_to() == {}
    assert "+15555550666" in twilio_fake.fail_numbers


# ============================================================================ Shopify
def exchange(http, fake: FakeShopify, token: str, expiring: bool = True, as_json=True):
    data = {
        "client_id": CLIENT_ID,
        "client_secret": SECRET,
        "grant_type": GRANT_TOKEN_EXCHANGE,
        "subject_token": token,
        "subject_token_type": SUBJECT_ID_TOKEN,
        "requested_token_type": OFFLINE_TOKEN,
    }
    if expiring:
        data["expiring"] = "1"
    if as_json:
        return http.post(fake.token_url(SHOP), json=data)
    return http.post(fake.token_url(SHOP), data=data)


def gql(http, fake: FakeShopify, token: str, query: str, variables=None, shop=SHOP):
    return http.post(
        fake.graphql_url(shop),
        json={"query": query, "variables": variables or {}},
        headers={"X-Shopify-Access-Token": token},
    )


def test_base_url_template(shopify):
    assert shopify.base_url_template == f"{shopify.url}/{{shop}}"
    assert shopify.base_url_template.format(shop=SHOP) == f"{shopify.url}/{SHOP}"


def test_token_exchange_and_shop_query(shopify, http):
    r = exchange(http, shopify, signing.session_token(SHOP, CLIENT_ID, SECRET, nbf_offset=5))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["access_token"].startswith("shpat_") and body["expires_in"] == 3600
    assert body["refresh_token"] and body["refresh_token_expires_in"] == 7_776_000
    assert body["scope"]
    r = gql(
        http,
        shopify,
        body["access_token"],
        "query ShopInfo { shop { name ianaTimezone currencyCode } }",
    )
    assert r.status_code == 200
    data = r.json()
    shop = data["data"]["shop"]
    assert shop["name"] == "Tidings Test" and shop["ianaTimezone"] == "America/New_York"
    assert shop["currencyCode"] == "USD" and shop["billingAddress"]["countryCodeV2"] == "US"
    assert shop["myshopifyDomain"] == SHOP
    cost = data["extensions"]["cost"]
    assert cost["throttleStatus"]["maximumAvailable"] == 2000.0
    assert cost["throttleStatus"]["restoreRate"] == 100.0
    assert shopify.graphql_calls[-1][:2] == (SHOP, "shop")

    plain = exchange(
        http, shopify, signing.session_token(SHOP, CLIENT_ID, SECRET), expiring=False, as_json=False
    ).json()
    assert set(plain) == {"access_token", "scope"}


@pytest.mark.parametrize(
    "overrides",
    [
        {"secret": "wrong-secret-0123456789abcdef0123456789"},
        {"now": time.time() - 120},  # expired beyond the 10 s leeway
        {"nbf_offset": 60},  # not yet valid
        {"dest": "https://other.myshopify.com"},
        {"aud": "someone-else"},
        {"iss": None},
    ],
)
def test_token_exchange_rejects_bad_subject_token(shopify, http, overrides):
    secret = overrides.pop("secret", SECRET)
    token = signing.session_token(SHOP, CLIENT_ID, secret, **overrides)
    r = exchange(http, shopify, token)
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_subject_token" and r.json()["error_description"]


def test_token_exchange_leeway(shopify, http):
    token = signing.session_token(SHOP, CLIENT_ID, SECRET, now=time.time() - 65)
    assert exchange(http, shopify, token).status_code == 200  # 5 s past exp, within leeway


def test_authorization_code_grant(shopify, http):
    shopify.register_code(SHOP, "abc")
    payload = {"client_id": CLIENT_ID, "client_secret": SECRET, "code": "abc"}
    r = http.post(shopify.token_url(SHOP), data={**payload, "client_secret": "nope"})
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    r = http.post(shopify.token_url(SHOP), json=payload)
    assert r.status_code == 200 and set(r.json()) == {"access_token", "scope"}
    again = http.post(shopify.token_url(SHOP), json=payload)
    assert again.status_code == 400 and again.json()["error"] == "invalid_request"
    unknown = http.post(shopify.token_url(SHOP), data={**payload, "code": "zzz"})
    assert unknown.status_code == 400 and unknown.json()["error"] == "invalid_request"


def test_refresh_rotation_and_reuse(shopify, http):
    first = exchange(http, shopify, signing.session_token(SHOP, CLIENT_ID, SECRET)).json()
    refresh = {"client_id": CLIENT_ID, "client_secret": SECRET, "grant_type": "refresh_token"}
    r = http.post(
        shopify.token_url(SHOP), json={**refresh, "refresh_token": first["refresh_token"]}
    )
    assert r.status_code == 200
    second = r.json()
    assert second["access_token"] != first["access_token"]
    assert second["refresh_token"] != first["refresh_token"] and second["expires_in"] == 3600
    assert shopify.refresh_count[SHOP] == 1
    reuse = http.post(
        shopify.token_url(SHOP), json={**refresh, "refresh_token": first["refresh_token"]}
    )
    assert reuse.status_code == 400 and reuse.json()["error"] == "invalid_grant"
    assert gql(http, shopify, second["access_token"], "{ shop { name } }").status_code == 200

    # concurrent workers refreshing with the same token: exactly one wins
    def attempt(_):
        with requests.Session() as s:
            s.trust_env = False
            return s.post(
                shopify.token_url(SHOP), data={**refresh, "refresh_token": second["refresh_token"]}
            ).status_code

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(attempt, range(8)))
    assert sorted(codes) == [200] + [400] * 7
    assert shopify.refresh_count[SHOP] == 2

    # a new token exchange retires the older refresh chain
    latest = shopify._refresh_current[SHOP]
    exchange(http, shopify, signing.session_token(SHOP, CLIENT_ID, SECRET))
    r = http.post(shopify.token_url(SHOP), json={**refresh, "refresh_token": latest})
    assert r.status_code == 400


def test_refresh_grace_mode(http):
    with FakeShopify(CLIENT_ID, SECRET, refresh_reuse="until_replacement_used") as fake:
        tok = exchange(http, fake, signing.session_token(SHOP, CLIENT_ID, SECRET)).json()
        refresh = {"client_id": CLIENT_ID, "client_secret": SECRET, "grant_type": "refresh_token"}

        def use(rt):
            return http.post(fake.token_url(SHOP), json={**refresh, "refresh_token": rt})

        r1 = use(tok["refresh_token"]).json()  # answer "lost"
        r1b = use(tok["refresh_token"])  # retry with the stored token still works
        assert r1b.status_code == 200
        assert use(r1["refresh_token"]).status_code == 400  # the unused replacement was dropped
        r2 = use(r1b.json()["refresh_token"])  # using the replacement retires the old one
        assert r2.status_code == 200
        assert use(tok["refresh_token"]).status_code == 400


def test_access_token_expiry_and_bad_tokens(shopify, http):
    tok = exchange(http, shopify, signing.session_token(SHOP, CLIENT_ID, SECRET)).json()
    assert gql(http, shopify, tok["access_token"], "{ shop { name } }").status_code == 200
    shopify.advance(3601)
    r = gql(http, shopify, tok["access_token"], "{ shop { name } }")
    assert r.status_code == 401 and r.json() == {"errors": INVALID_TOKEN_ERROR}
    assert gql(http, shopify, "shpat_unknown", "{ shop { name } }").status_code == 401
    other = shopify.add_token("other.myshopify.com")
    assert gql(http, shopify, other, "{ shop { name } }").status_code == 401
    shopify.add_token(SHOP, "shpat_fixed")
    assert gql(http, shopify, "shpat_fixed", "{ shop { name } }").status_code == 200


def test_throttled_then_success(shopify, http):
    token = shopify.add_token(SHOP)
    shopify.throttle_next(2)
    q = "query { shop { name } }"
    first, second, third = (gql(http, shopify, token, q) for _ in range(3))
    for r in (first, second):
        body = r.json()
        assert r.status_code == 200 and "data" not in body
        assert body["errors"][0]["extensions"]["code"] == "THROTTLED"
        assert body["errors"][0]["message"] == "Throttled"
        assert body["extensions"]["cost"]["actualQueryCost"] is None
    assert third.json()["data"]["shop"]["name"] == "Tidings Test"
    assert len(shopify.throttled_calls) == 2 and shopify.graphql_calls[0].throttled

    shopify.throttle_next(1, http_status=429)
    r = gql(http, shopify, token, q)
    assert r.status_code == 429 and r.json()["errors"][0]["extensions"]["code"] == "THROTTLED"

    # bucket accounting: a mutation costs 10
    shopify.set_bucket(SHOP, available=15, restore_rate=0)
    m = 'mutation { discountCodeDelete(id: "gid://x/1") { userErrors { code } } }'
    ok = gql(http, shopify, token, m).json()
    assert ok["extensions"]["cost"]["requestedQueryCost"] == 10
    assert ok["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"] == 5.0
    throttled = gql(http, shopify, token, m).json()
    assert throttled["errors"][0]["extensions"]["code"] == "THROTTLED"
    shopify.set_bucket(SHOP, restore_rate=100)
    shopify.advance(1)
    assert "data" in gql(http, shopify, token, m).json()


CREATE = """
mutation CreateDiscount($input: DiscountCodeBasicInput!) {
  discountCodeBasicCreate(basicCodeDiscount: $input) {
    codeDiscountNode {
      id
      codeDiscount { ... on DiscountCodeBasic { title codes(first: 1) { nodes { code } } } }
    }
    userErrors { field code message }
  }
}
"""
BULK_ADD = """
mutation ($id: ID!, $codes: [DiscountRedeemCodeInput!]!) {
  discountRedeemCodeBulkAdd(discountId: $id, codes: $codes) {
    bulkCreation { id done codesCount importedCount failedCount }
    userErrors { field code message }
  }
}
"""
BULK_POLL = """
query Poll($id: ID!) {
  discountRedeemCodeBulkCreation(id: $id) {
    id done codesCount importedCount failedCount
    codes(first: 250) { nodes { code errors { code message } } }
  }
}
"""


def discount_input(code: str, pct: float = 0.15) -> dict:
    return {
        "title": f"SMS {code}",
        "code": code,
        "startsAt": "2026-01-01T00:00:00Z",
        "context": {"all": "ALL"},
        "customerGets": {"value": {"percentage": pct}, "items": {"all": True}},
    }


def test_discount_create_duplicate_and_bulk_codes(http):
    with FakeShopify(CLIENT_ID, SECRET, bulk_polls_until_done=2) as fake:
        token = fake.add_token(SHOP)
        r = gql(http, fake, token, CREATE, {"input": discount_input("WELCOME15")}).json()
        payload = r["data"]["discountCodeBasicCreate"]
        assert payload["userErrors"] == []
        node = payload["codeDiscountNode"]
        assert node["id"].startswith("gid://shopify/DiscountCodeNode/")
        assert node["codeDiscount"]["codes"]["nodes"] == [{"code": "WELCOME15"}]
        assert node["codeDiscount"]["title"] == "SMS WELCOME15"

        dup = gql(http, fake, token, CREATE, {"input": discount_input("welcome15")}).json()
        err = dup["data"]["discountCodeBasicCreate"]["userErrors"][0]
        assert err["code"] == "TAKEN" and err["field"] == ["basicCodeDiscount", "code"]
        pct = gql(http, fake, token, CREATE, {"input": discount_input("BIG", pct=15)}).json()
        assert pct["data"]["discountCodeBasicCreate"]["userErrors"][0]["code"] == (
            "VALUE_OUTSIDE_RANGE"
        )

        too_many = [{"code": f"C{i}"} for i in range(251)]
        r = gql(http, fake, token, BULK_ADD, {"id": node["id"], "codes": too_many}).json()
        assert "data" not in r and "250" in r["errors"][0]["message"]

        codes = [{"code": f"U{i}"} for i in range(250)]
        codes[3] = {"code": "WELCOME15"}  # already exists
        r = gql(http, fake, token, BULK_ADD, {"id": node["id"], "codes": codes}).json()
        bulk = r["data"]["discountRedeemCodeBulkAdd"]["bulkCreation"]
        assert bulk["done"] is False and bulk["codesCount"] == 250
        assert bulk["id"].startswith("gid://shopify/DiscountRedeemCodeBulkCreation/")

        first = gql(http, fake, token, BULK_POLL, {"id": bulk["id"]}).json()
        assert first["data"]["discountRedeemCodeBulkCreation"]["done"] is False
        second = gql(http, fake, token, BULK_POLL, {"id": bulk["id"]}).json()
        done = second["data"]["discountRedeemCodeBulkCreation"]
        assert done["done"] is True and done["importedCount"] == 249 and done["failedCount"] == 1
        failed = [n for n in done["codes"]["nodes"] if n["errors"]]
        assert failed[0]["code"] == "WELCOME15" and failed[0]["errors"][0]["code"] == "TAKEN"
        assert len(fake.discounts[SHOP][node["id"]]["codes"]) == 250

        delete = "mutation ($id: ID!) { discountCodeDelete(id: $id) { deletedCodeDiscountId } }"
        deleted = gql(http, fake, token, delete, {"id": node["id"]}).json()
        assert deleted["data"]["discountCodeDelete"]["deletedCodeDiscountId"] == node["id"]
        again = gql(http, fake, token, CREATE, {"input": discount_input("WELCOME15")}).json()
        assert again["data"]["discountCodeBasicCreate"]["userErrors"] == []


def test_sms_consent_update(shopify, http):
    token = shopify.add_token(SHOP)
    gid = shopify.add_customer(SHOP, 42, phone="+15555550100")
    q = """mutation consent($input: CustomerSmsMarketingConsentUpdateInput!) {
      customerSmsMarketingConsentUpdate(input: $input) {
        customer { id defaultPhoneNumber { phoneNumber marketingState marketingOptInLevel } }
        userErrors { field message }
      }
    }"""
    consent = {
        "marketingState": "SUBSCRIBED",
        "marketingOptInLevel": "SINGLE_OPT_IN",
        "consentUpdatedAt": "2026-11-20T10:00:00Z",
    }
    r = gql(http, shopify, token, q, {"input": {"customerId": gid, "smsMarketingConsent": consent}})
    payload = r.json()["data"]["customerSmsMarketingConsentUpdate"]
    assert payload["userErrors"] == []
    phone = payload["customer"]["defaultPhoneNumber"]
    assert phone["marketingState"] == "SUBSCRIBED" and phone["phoneNumber"] == "+15555550100"
    assert shopify.consent[gid]["marketingState"] == "SUBSCRIBED"
    assert shopify.consent[gid]["consentUpdatedAt"] == "2026-11-20T10:00:00Z"
    bad = {"customerId": gid, "smsMarketingConsent": {"marketingState": "YES"}}
    r = gql(http, shopify, token, q, {"input": bad}).json()
    assert r["data"]["customerSmsMarketingConsentUpdate"]["userErrors"]

    found = gql(
        http,
        shopify,
        token,
        'query { customers(first: 5, query: "phone:+15555550100") { nodes { id } } }',
    ).json()
    assert [n["id"] for n in found["data"]["customers"]["nodes"]] == [gid]
    one = gql(http, shopify, token, f'{{ customer(id: "{gid}") {{ id }} }}').json()
    assert one["data"]["customer"]["id"] == gid


def test_unknown_field_and_overrides(shopify, http):
    token = shopify.add_token(SHOP)
    r = gql(http, shopify, token, "{ nothingHere { id } }").json()
    assert r["errors"][0]["message"] == "Field 'nothingHere' doesn't exist on type 'QueryRoot'"
    assert r["errors"][0]["extensions"]["code"] == "undefinedField"

    shopify.on("nothingHere", lambda ctx: {"id": ctx.args["id"], "shop": ctx.shop})
    r = gql(http, shopify, token, 'query { x: nothingHere(id: "7") { id } }').json()
    assert r["data"] == {"x": {"id": "7", "shop": SHOP}}

    def boom(ctx):
        raise GraphQLError("Internal error", "INTERNAL_SERVER_ERROR")

    shopify.on("shop", boom)
    r = gql(http, shopify, token, "{ shop { name } }").json()
    assert r["errors"][0]["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    shopify.on("shop", lambda ctx: json_response({"errors": "bad gateway"}, 502))
    assert gql(http, shopify, token, "{ shop { name } }").status_code == 502
    shopify.on("shop", None)
    assert gql(http, shopify, token, "{ shop { name } }").json()["data"]["shop"]["name"]


def test_parse_operation():
    q = """
    # a comment { not a field
    fragment F on Shop { name }
    query Named($id: ID!, $n: Int = 5, $o: In = {a: [1, 2]}) @dir(x: 1) {
      alias: discountRedeemCodeBulkCreation(id: $id, n: 3, s: "a\\"b", e: ENUM, l: [1, 2.5, null]) {
        id ...F
      }
      shop { ...F }
    }
    mutation Other { discountCodeDelete(id: "x") { deletedCodeDiscountId } }
    """
    op = parse_operation(q, {"id": "gid://1"})
    assert op.type == "query" and op.name == "Named"
    first, second = op.fields
    assert first.name == "discountRedeemCodeBulkCreation" and first.alias == "alias"
    assert first.args == {"id": "gid://1", "n": 3, "s": 'a"b', "e": "ENUM", "l": [1, 2.5, None]}
    assert second.name == "shop"
    other = parse_operation(q, {}, "Other")
    assert other.type == "mutation" and other.fields[0].name == "discountCodeDelete"
    assert root_field_name("{ shop { id } }") == "shop"
    assert root_field_name("mutation M { customerSmsMarketingConsentUpdate(input: {}) { a } }") == (
        "customerSmsMarketingConsentUpdate"
    )
    with pytest.raises(GraphQLError):
        parse_operation("query { shop { name }")


# ============================================================================ separate processes
def test_spawned_fakes_control_api(http):
    with SpawnedFake("tests.fakes.twilio_server", "--auth-token", TOKEN) as tw:
        config = tw.control("config", {"latency_ms": 1, "auto_callbacks": ["sent"]})
        assert config["latency_ms"] == 1.0 and config["auto_callbacks"] == ["sent"]
        sid = "AC" + "0" * 31 + "1"
        url = f"{tw.url}/2010-04-01/Accounts/{sid}/Messages.json"
        for to in ("+15555550100", "+15555550100", "+15555550101"):
            r = http.post(url, auth=(sid, TOKEN), data={"To": to, "From": "+1555", "Body": "x"})
            assert r.status_code == 201
        tw.control("fail_next", {"n": 1, "status": 429, "code": 20429, "retry_after": 2})
        r = http.post(url, auth=(sid, TOKEN), data={"To": "+1555555", "From": "+1", "Body": "x"})
        assert r.status_code == 429 and r.headers["Retry-After"] == "2"
        stats = tw.control("stats")
        assert stats["accepted"] == 3 and stats["injected"] == 1
        assert stats["duplicates"] == {"+15555550100": 2}
        messages = tw.control("messages")
        assert [m["to"] for m in messages] == ["+15555550100", "+15555550100", "+15555550101"]
        assert {
            "sid",
            "to",
            "from",
            "body",
            "status_callback",
            "validity_period",
            "created_at",
        } <= set(messages[0])
        tw.control("reset", {})
        assert tw.control("stats")["requests"] == 0

    with SpawnedFake(
        "tests.fakes.shopify_server",
        "--client-id",
        CLIENT_ID,
        "--client-secret",
        SECRET,
        "--shop",
        SHOP,
    ) as sh:
        token = sh.control("add_token", {"shop": SHOP})["token"]
        sh.control("throttle_next", {"n": 1})
        gql_url = f"{sh.url}/{SHOP}/admin/api/2026-10/graphql.json"
        headers = {"X-Shopify-Access-Token": token}
        for expected in ("THROTTLED", None):
            body = http.post(gql_url, json={"query": "{ shop { name } }"}, headers=headers).json()
            code = body["errors"][0]["extensions"]["code"] if "errors" in body else None
            assert code == expected
        calls = sh.control("calls")
        assert [c["field"] for c in calls] == ["shop", "shop"] and calls[0]["throttled"]
        sh.control("reset", {})
        assert sh.control("calls") == []


def test_json_response_helper():
    r = json_response({"a": 1}, 201, {"X-A": "b"})
    assert r.status == 201 and json.loads(r.body) == {"a": 1} and r.headers["X-A"] == "b"


def test_segments_match_smsutil_oracle():
    smsutil = pytest.importorskip("smsutil")
    rng = random.Random(5)
    common = list("abcXYZ 0123@£$\n") + list("€^{}[]~|\\")
    rare = list("çé😀—’")
    for _ in range(3000):
        text = "".join(
            rng.choice(rare) if rng.random() < 0.01 else rng.choice(common)
            for _ in range(rng.randint(1, 400))
        )
        assert count_segments(text) == len(smsutil.split(text).parts), text
