"""Discount codes against the Shopify stand-in: shared and unique codes, 250-code chunks,
THROTTLED answers in the middle, refused codes, resuming, flows and clean-up."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from time import monotonic
from types import SimpleNamespace

import pytest
from flask import Flask
from sqlalchemy import func, select

from shopify_app.extensions import db
from shopify_app.models import Campaign, Discount, DiscountCode, Message, Shop, utcnow
from shopify_app.services import discount_calls, discounts
from shopify_app.services.codes import ALPHABET
from tests.conftest import API_KEY, API_SECRET, SHOP_DOMAIN
from tests.fakes.shopify_server import TAKEN_MESSAGE, FakeShopify, GraphQLError
from tests.integration.analytics_support import campaign, message, subscriber

CONFIG = {
    "value_type": "percentage",
    "value": "15",
    "minimum_subtotal": "50.00",
    "once_per_customer": True,
    "combines_with": {
        "orderDiscounts": False,
        "productDiscounts": False,
        "shippingDiscounts": True,
    },
    "starts_at": "2026-10-01T00:00:00Z",
    "ends_at": "2026-10-31T23:59:59Z",
    "prefix": "fall",
}


@pytest.fixture(scope="module")
def _fake_server() -> Iterator[FakeShopify]:
    with FakeShopify(API_KEY, API_SECRET) as fake:
        yield fake


@pytest.fixture
def fake(app: Flask, _fake_server: FakeShopify) -> Iterator[FakeShopify]:
    _fake_server.reset()
    _fake_server.bulk_polls_until_done = 1
    saved = app.config["SHOPIFY_ADMIN_BASE_URL"]
    app.config["SHOPIFY_ADMIN_BASE_URL"] = _fake_server.base_url_template
    app.config["DISCOUNT_POLL_SECONDS"] = 0
    _fake_server.add_token(SHOP_DOMAIN, "shpat_test_token")  # the `shop` fixture's token
    try:
        yield _fake_server
    finally:
        app.config["SHOPIFY_ADMIN_BASE_URL"] = saved
        app.config.pop("DISCOUNT_POLL_SECONDS", None)
        _fake_server.on("discountCodeBasicCreate", None)


def unique_campaign(shop: Shop, recipients: int, first: int = 0, **fields) -> Campaign:
    row = campaign(
        shop,
        "Fall sale",
        discount_mode="unique",
        discount_config=fields.pop("discount_config", dict(CONFIG)),
        status="sending",
        **fields,
    )
    for i in range(first, first + recipients):
        sub = subscriber(shop, f"+1617555{i:04d}")
        message(shop, sub, sent=None, status="pending", campaign_id=row.id)
    db.session.commit()
    return row


def codes_of(campaign_id: int, status: str | None = None) -> list[DiscountCode]:
    stmt = select(DiscountCode).where(DiscountCode.campaign_id == campaign_id)
    if status:
        stmt = stmt.where(DiscountCode.status == status)
    return list(db.session.scalars(stmt.order_by(DiscountCode.id)))


def test_shared_code_sends_a_fraction_and_the_settings(fake: FakeShopify, shop: Shop) -> None:
    """15 % goes to Shopify as 0.15, with the minimum, dates, combinations and context."""
    sale = campaign(
        shop, "Spring", discount_mode="shared", discount_config={**CONFIG, "code": "spring15"}
    )
    db.session.commit()
    result = discounts.prepare_campaign_discount(sale.id)
    assert (result.status, result.ok, result.shared_code) == ("ready", True, "SPRING15")
    [call] = fake.calls_for("discountCodeBasicCreate")
    data = call.variables["input"]
    assert data["code"] == "SPRING15"
    assert data["customerGets"] == {"value": {"percentage": 0.15}, "items": {"all": True}}
    assert data["minimumRequirement"] == {"subtotal": {"greaterThanOrEqualToSubtotal": "50.00"}}
    assert data["context"] == {"all": "ALL"} and "customerSelection" not in data
    assert (data["startsAt"], data["endsAt"]) == ("2026-10-01T00:00:00Z", "2026-10-31T23:59:59Z")
    assert data["appliesOncePerCustomer"] is True
    assert data["combinesWith"] == CONFIG["combines_with"]
    assert data["title"] == f"Tidings: Spring (campaign #{sale.id})"
    # Idempotent: a second call creates nothing and answers the same.
    again = discounts.prepare_campaign_discount(sale.id)
    assert again.shared_code == "SPRING15" and len(fake.calls_for("discountCodeBasicCreate")) == 1
    msg = message(
        shop, subscriber(shop, "+16175550100"), sent=None, status="pending", campaign_id=sale.id
    )
    assert discounts.code_for(msg) == "SPRING15"


def test_amount_discount(fake: FakeShopify, shop: Shop) -> None:
    """A fixed amount goes as discountAmount in the shop currency."""
    sale = campaign(
        shop,
        "Ten off",
        discount_mode="shared",
        discount_config={"value_type": "amount", "value": "10.00"},
    )
    db.session.commit()
    assert discounts.prepare_campaign_discount(sale.id).status == "ready"
    value = fake.calls_for("discountCodeBasicCreate")[0].variables["input"]["customerGets"]
    assert value["value"] == {"discountAmount": {"amount": "10.00", "appliesOnEachItem": False}}


def test_merchant_code_taken_stops_the_send(fake: FakeShopify, shop: Shop) -> None:
    """A shared code someone else's discount holds is a final failure with a clear reason."""
    sale = campaign(
        shop, "Taken", discount_mode="shared", discount_config={**CONFIG, "code": "WELCOME"}
    )
    db.session.commit()
    fake.discount_codes.setdefault(SHOP_DOMAIN, {})["WELCOME"] = "gid://shopify/Other/1"
    fake.discounts.setdefault(SHOP_DOMAIN, {})["gid://shopify/Other/1"] = {
        "id": "gid://shopify/Other/1",
        "title": "Merchant's own",
        "codes": ["WELCOME"],
    }
    result = discounts.prepare_campaign_discount(sale.id)
    assert (result.status, result.ok, result.retryable) == ("failed", False, False)
    assert "WELCOME already exists" in result.reason
    assert db.session.get(Discount, result.discount_id).status == "failed"


def test_invalid_config_fails_before_calling_shopify(fake: FakeShopify, shop: Shop) -> None:
    """A percentage over 100 is refused here, with the reason, and Shopify is never called."""
    sale = campaign(
        shop,
        "Bad",
        discount_mode="shared",
        discount_config={"value_type": "percentage", "value": "150"},
    )
    db.session.commit()
    result = discounts.prepare_campaign_discount(sale.id)
    assert result.status == "failed" and "exceed 100" in result.reason
    assert fake.graphql_calls == []


def test_unique_codes_in_chunks_with_throttle_in_the_middle(fake: FakeShopify, shop: Shop) -> None:
    """600 recipients: one discount, then 599 codes in 3 bulk adds of at most 250, each
    creation polled until done; THROTTLED answers after the first add are waited out and
    every recipient gets a ready code."""
    sale = unique_campaign(shop, 600)
    fake.bulk_polls_until_done = 2  # Shopify needs a second look before it is done
    adds = {"n": 0}

    def add_then_throttle(ctx):
        adds["n"] += 1
        if adds["n"] == 1:
            fake.throttle_next(2)  # the next two calls (polls of chunk 1) are THROTTLED
        return fake._m_bulk_add(ctx)

    fake.on("discountRedeemCodeBulkAdd", add_then_throttle)
    try:
        result = discounts.prepare_campaign_discount(sale.id)
    finally:
        fake.on("discountRedeemCodeBulkAdd", None)
    assert (result.status, result.codes_ready, result.codes_failed) == ("ready", 600, 0)
    bulk_adds = fake.calls_for("discountRedeemCodeBulkAdd")
    assert [len(c.variables["codes"]) for c in bulk_adds] == [250, 250, 99]
    assert [c.field for c in fake.throttled_calls] == ["discountRedeemCodeBulkCreation"] * 2
    polls = [c for c in fake.calls_for("discountRedeemCodeBulkCreation") if not c.throttled]
    assert len(polls) == 6  # two looks per creation
    gid = db.session.get(Discount, result.discount_id).shopify_id
    assert len(fake.discounts[SHOP_DOMAIN][gid]["codes"]) == 600
    codes = codes_of(sale.id)
    assert len({c.code for c in codes}) == 600 and {c.status for c in codes} == {"ready"}
    assert {c.message_id for c in codes} == set(
        db.session.scalars(select(Message.id).where(Message.campaign_id == sale.id))
    )
    for row in codes:
        prefix, body = row.code.split("-")
        assert prefix == "FALL" and len(body) == 8 and set(body) <= set(ALPHABET)
    assert not set("01OIL") & set(ALPHABET)
    # Every message renders its own code.
    some = db.session.scalars(select(Message).where(Message.campaign_id == sale.id)).first()
    assert discounts.code_for(some) == next(c.code for c in codes if c.message_id == some.id)


def test_codes_wait_for_the_cost_bucket_as_shopify_reports_it(
    fake: FakeShopify, shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 25-point bucket refilling at 2 points/s: the 10-point mutations run it dry and
    Shopify answers THROTTLED on its own. Each wait comes from the throttleStatus of that
    answer — (cost - available) / restore rate, not a blind back-off — and is just enough: the
    retried call goes through. Polling costs a point (the codes are not fetched when none
    failed). The campaign gets every code; nobody sleeps for real (the fake clock moves)."""
    sale = unique_campaign(shop, 520)
    fake.set_bucket(SHOP_DOMAIN, available=25, maximum=25, restore_rate=2)
    waits: list[tuple[float, float]] = []  # (seconds waited, points in the bucket before)

    def sleep(seconds: float) -> None:
        bucket = fake._bucket(SHOP_DOMAIN)
        bucket.refill(fake.now())
        waits.append((seconds, bucket.available))
        fake.advance(seconds)

    monkeypatch.setattr(discount_calls, "time", SimpleNamespace(sleep=sleep, monotonic=monotonic))
    result = discounts.prepare_campaign_discount(sale.id)
    assert (result.status, result.codes_ready, result.codes_failed) == ("ready", 520, 0)
    adds = [c for c in fake.calls_for("discountRedeemCodeBulkAdd") if not c.throttled]
    assert [len(c.variables["codes"]) for c in adds] == [250, 250, 19]
    throttled = fake.throttled_calls
    assert "discountRedeemCodeBulkAdd" in {c.field for c in throttled}
    assert len(waits) == len(throttled)
    for (seconds, available), call in zip(waits, throttled, strict=True):
        # Shopify reports whole points; the client adds 50 ms of slack for clock skew.
        needed = (call.cost - int(available)) / 2 + 0.05
        assert abs(seconds - needed) < 0.6, (seconds, needed)
        assert seconds <= call.cost / 2 + 0.06  # never more than the call itself needs
    # Each throttled call was retried at once and went through.
    calls = fake.graphql_calls
    for call in throttled:
        retry = calls[calls.index(call) + 1]
        assert (retry.field, retry.throttled) == (call.field, False)
    polls = [c for c in fake.calls_for("discountRedeemCodeBulkCreation") if not c.throttled]
    assert len(polls) == 3 and {c.cost for c in polls} == {1}
    gid = db.session.get(Discount, result.discount_id).shopify_id
    assert len(fake.discounts[SHOP_DOMAIN][gid]["codes"]) == 520


def test_refused_codes_get_fresh_ones(fake: FakeShopify, shop: Shop) -> None:
    """Codes Shopify refuses (TAKEN) in a bulk creation are replaced and added again."""
    sale = unique_campaign(shop, 5)
    original = fake._m_bulk_add
    refused: list[str] = []

    def take_two(ctx):
        if not refused:
            for item in ctx.args["codes"][:2]:
                refused.append(item["code"])
                fake.discount_codes[SHOP_DOMAIN][item["code"].upper()] = "gid://other"
        return original(ctx)

    fake.on("discountRedeemCodeBulkAdd", take_two)
    try:
        result = discounts.prepare_campaign_discount(sale.id)
    finally:
        fake.on("discountRedeemCodeBulkAdd", None)
    assert (result.status, result.codes_ready) == ("ready", 5)
    current = {c.code for c in codes_of(sale.id)}
    assert not current & set(refused)
    adds = fake.calls_for("discountRedeemCodeBulkAdd")
    assert [len(c.variables["codes"]) for c in adds] == [4, 2]
    # The refused codes (and why) were read once, for the creation that refused some.
    detailed = [c for c in fake.calls_for("discountRedeemCodeBulkCreation") if "codes(" in c.query]
    assert len(detailed) == 1


def test_codes_refused_every_time_fail_the_preparation(fake: FakeShopify, shop: Shop) -> None:
    """When Shopify keeps refusing codes, the result is failed (texting dead codes is worse)."""
    sale = unique_campaign(shop, 3)
    submitted: dict[str, list[str]] = {}

    def accept(ctx):
        gid = f"gid://shopify/DiscountRedeemCodeBulkCreation/{900 + len(submitted)}"
        submitted[gid] = [c["code"] for c in ctx.args["codes"]]
        return {
            "bulkCreation": {
                "id": gid,
                "done": False,
                "codesCount": 0,
                "importedCount": 0,
                "failedCount": 0,
            },
            "userErrors": [],
        }

    def all_failed(ctx):
        codes = submitted[ctx.args["id"]]
        return {
            "id": ctx.args["id"],
            "done": True,
            "codesCount": len(codes),
            "importedCount": 0,
            "failedCount": len(codes),
            "codes": {
                "nodes": [
                    {
                        "code": code,
                        "errors": [{"field": ["code"], "code": "TAKEN", "message": TAKEN_MESSAGE}],
                    }
                    for code in codes
                ]
            },
        }

    fake.on("discountRedeemCodeBulkAdd", accept)
    fake.on("discountRedeemCodeBulkCreation", all_failed)
    try:
        result = discounts.prepare_campaign_discount(sale.id)
    finally:
        fake.on("discountRedeemCodeBulkAdd", None)
        fake.on("discountRedeemCodeBulkCreation", None)
    assert result.status == "failed" and not result.ok and not result.retryable
    assert "refused 2 discount codes" in result.reason and TAKEN_MESSAGE in result.reason
    assert len(fake.calls_for("discountRedeemCodeBulkAdd")) == 3  # first try + 2 fresh rounds


def test_interrupted_preparation_resumes_without_adding_twice(
    fake: FakeShopify, shop: Shop
) -> None:
    """Polling broke after a chunk was submitted: the next run polls that creation instead of
    adding its codes again, and issues no second code to anyone."""
    sale = unique_campaign(shop, 300)

    def broken(ctx):
        raise GraphQLError(
            "Internal error. Looks like something went wrong on our end.", "INTERNAL_SERVER_ERROR"
        )

    fake.on("discountRedeemCodeBulkCreation", broken)
    try:
        first = discounts.prepare_campaign_discount(sale.id)
    finally:
        fake.on("discountRedeemCodeBulkCreation", None)
    assert first.status == "failed" and len(codes_of(sale.id, "submitted")) == 250
    again = discounts.prepare_campaign_discount(sale.id)
    assert (again.status, again.codes_ready) == ("ready", 300)
    assert [len(c.variables["codes"]) for c in fake.calls_for("discountRedeemCodeBulkAdd")] == [
        250,
        49,
    ]
    assert len(fake.calls_for("discountCodeBasicCreate")) == 1
    assert db.session.scalar(select(func.count()).select_from(DiscountCode)) == 300


def test_throttled_beyond_the_deadline_is_retry_not_failure(
    fake: FakeShopify, app: Flask, shop: Shop
) -> None:
    """Shopify throttling for longer than we wait: 'retry', never 'failed'."""
    sale = campaign(shop, "Busy", discount_mode="shared", discount_config=dict(CONFIG))
    db.session.commit()
    app.config["DISCOUNT_DEADLINE_SECONDS"] = 0
    fake.throttle_next(50)
    try:
        result = discounts.prepare_campaign_discount(sale.id)
    finally:
        app.config.pop("DISCOUNT_DEADLINE_SECONDS")
        fake._throttle_next.clear()
    assert (result.status, result.retryable, result.ok) == ("retry", True, False)
    assert "throttl" in result.reason.lower()


def test_no_discount_mode(fake: FakeShopify, shop: Shop) -> None:
    """A campaign without a discount is ready at once, with no Shopify call."""
    plain = campaign(shop, "Plain")
    db.session.commit()
    assert discounts.prepare_campaign_discount(plain.id).status == "none"
    assert fake.graphql_calls == []


def test_flow_discount_is_single_use_and_idempotent(fake: FakeShopify, shop: Shop) -> None:
    """One code per flow message, usage limit 1, valid 7 days by default; asking again for
    the same message returns the same code without calling Shopify."""
    sub = subscriber(shop, "+16175550177")
    msg = message(shop, sub, sent=None, status="pending", kind="flow")
    db.session.commit()
    code = discounts.create_flow_discount(
        shop, 99, sub.id, msg.id, {"value_type": "amount", "value": "5.00"}
    )
    db.session.commit()
    assert code.startswith("SMS-")
    data = fake.calls_for("discountCodeBasicCreate")[0].variables["input"]
    assert data["usageLimit"] == 1 and data["code"] == code
    assert discounts.create_flow_discount(shop, 99, sub.id, msg.id, {}) == code
    assert len(fake.calls_for("discountCodeBasicCreate")) == 1
    assert discounts.code_for(msg) == code


def test_cleanup_expired(fake: FakeShopify, shop: Shop) -> None:
    """Past their end: a shared discount is deactivated, a unique one deleted; codes stay
    (expired) so late orders are still attributed."""
    shared = campaign(
        shop, "Old shared", discount_mode="shared", discount_config={**CONFIG, "code": "OLD10"}
    )
    db.session.commit()
    discounts.prepare_campaign_discount(shared.id)
    unique = unique_campaign(shop, 2)
    discounts.prepare_campaign_discount(unique.id)
    retired = discounts.cleanup_expired(now=utcnow() + timedelta(days=3650))
    assert retired == 2
    assert len(fake.calls_for("discountCodeDeactivate")) == 1
    assert len(fake.calls_for("discountCodeDelete")) == 1
    assert {d.status for d in db.session.scalars(select(Discount))} == {"expired"}
    assert {c.status for c in db.session.scalars(select(DiscountCode))} == {"expired"}
    assert discounts.cleanup_expired(now=utcnow() + timedelta(days=3650)) == 0


def test_cleanup_retires_codes_of_campaigns_that_never_texted(
    fake: FakeShopify, shop: Shop
) -> None:
    """A campaign stopped before its first text (its codes failed, or the merchant ended it)
    leaves codes nobody will receive: the clean-up deletes them from Shopify. A stopped
    campaign that did text keeps its codes — someone may be about to use one."""
    later = {**CONFIG, "ends_at": "2099-01-01T00:00:00Z"}  # none has reached its end
    stopped = unique_campaign(shop, 3, discount_config=later)
    discounts.prepare_campaign_discount(stopped.id)
    texted = unique_campaign(shop, 2, first=10, discount_config=later)
    discounts.prepare_campaign_discount(texted.id)
    first = db.session.scalars(select(Message).where(Message.campaign_id == texted.id)).first()
    first.status, first.sent_at = "sent", utcnow()
    running = unique_campaign(
        shop, 2, first=20, discount_config=later
    )  # still sending: not touched either
    discounts.prepare_campaign_discount(running.id)
    stopped.status = texted.status = "cancelled"
    db.session.commit()
    gids = {
        d.campaign_id: d.shopify_id
        for d in db.session.scalars(select(Discount).where(Discount.shopify_id.is_not(None)))
    }

    assert discounts.cleanup_expired() == 1
    [deleted] = fake.calls_for("discountCodeDelete")
    assert deleted.variables["id"] == gids[stopped.id]
    assert gids[stopped.id] not in fake.discounts[SHOP_DOMAIN]
    assert {gids[texted.id], gids[running.id]} <= set(fake.discounts[SHOP_DOMAIN])
    status = {d.campaign_id: d.status for d in db.session.scalars(select(Discount))}
    assert status == {stopped.id: "expired", texted.id: "ready", running.id: "ready"}
    assert {c.status for c in codes_of(stopped.id)} == {"expired"}
    assert discounts.code_for(first) is not None
    assert discounts.cleanup_expired() == 0


def test_value_precision(fake: FakeShopify, shop: Shop) -> None:
    """12.5 % is 0.125 for Shopify."""
    sale = campaign(
        shop,
        "Odd",
        discount_mode="shared",
        discount_config={"value_type": "percentage", "value": "12.5"},
    )
    db.session.commit()
    result = discounts.prepare_campaign_discount(sale.id)
    value = fake.calls_for("discountCodeBasicCreate")[0].variables["input"]["customerGets"]
    assert value["value"]["percentage"] == 0.125
    assert db.session.get(Discount, result.discount_id).value == Decimal("12.5")


def test_jobs_wrap_the_services(fake: FakeShopify, shop: Shop, run_jobs) -> None:
    """The RQ jobs: prepare a campaign's codes (queued like the campaign engine would), and
    the periodic clean-up, which the scheduler lists."""
    from jobs.discounts import cleanup_expired
    from jobs.scheduler import PERIODIC
    from shopify_app.jobqueue import enqueue_now

    sale = campaign(
        shop,
        "Queued",
        discount_mode="shared",
        discount_config={**CONFIG, "code": "QUEUED5", "ends_at": "2099-01-01T00:00:00Z"},
    )
    db.session.commit()
    sale_id = sale.id
    enqueue_now("jobs.discounts.prepare_campaign_discount", sale_id)
    assert run_jobs() >= 1
    row = db.session.scalars(select(Discount)).one()
    assert (row.status, row.campaign_id) == ("ready", sale_id)
    assert cleanup_expired() == {"retired": 0}
    assert "jobs.discounts.cleanup_expired" in {p.func for p in PERIODIC}
