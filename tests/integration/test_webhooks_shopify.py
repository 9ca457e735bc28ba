"""POST /webhooks/shopify: HMAC first, record once, queue after commit, answer fast."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from shopify_app.extensions import db
from shopify_app.models import Shop, WebhookDelivery
from tests.conftest import OTHER_SHOP_DOMAIN, SHOP_DOMAIN
from tests.integration.webhook_support import (
    deliveries,
    post_shopify,
    queued_job_args,
    queued_jobs,
)
from webhooks import handlers
from webhooks import shopify as shopify_door
from webhooks.handlers import COMPLIANCE_TOPICS, handles

ORDER = {"id": 820982911946154508, "phone": "+14155550123", "total_price": "19.99"}


@pytest.fixture
def counted(app):
    """A throwaway handler that records each call, registered through the public registry."""
    calls: list[tuple[int | None, dict, int]] = []

    @handles("tests/counted")
    def _count(shop, payload, delivery):
        calls.append((shop.id if shop else None, payload, delivery.id))

    yield calls
    handlers.unregister("tests/counted")


def test_valid_delivery_is_recorded_verbatim_and_queued(client, shop):
    """The raw body is stored byte for byte with the headers' metadata; a drain is queued."""
    raw = b'{"id":820982911946154508,  "note":"caf\xc3\xa9 \xe2\x98\x95"}\n'
    res = post_shopify(
        client,
        "app/scopes_update",
        None,
        body=raw,
        shop=shop.domain,
        webhook_id="wh-1",
        X_Shopify_Triggered_At="2026-03-29T18:00:27.877041743Z",
        X_Shopify_Event_Id="ev-9",
        X_Shopify_API_Version="2026-10",
    )
    assert res.status_code == 200
    [row] = deliveries()
    assert (
        row.shop_id,
        row.shop_domain,
        row.topic,
        row.webhook_id,
        row.event_id,
        row.api_version,
        row.status,
    ) == (shop.id, shop.domain, "app/scopes_update", "wh-1", "ev-9", "2026-10", "received")
    assert row.payload == raw.decode("utf-8")
    assert row.payload_bytes == len(raw)
    assert row.triggered_at == datetime(2026, 3, 29, 18, 0, 27, 877041, tzinfo=UTC)
    assert queued_jobs() == [("jobs.webhooks.drain", ())]


def test_a_burst_of_deliveries_queues_one_drain_that_processes_them_all(
    client, shop, run_jobs, counted
):
    """One RQ job per burst, not per delivery: the rows are the queue."""
    domain = shop.domain
    for n in range(5):
        assert post_shopify(client, "tests/counted", {"n": n}, shop=domain).status_code == 200
    assert queued_jobs() == [("jobs.webhooks.drain", ())]
    run_jobs()
    assert sorted(payload["n"] for _, payload, _ in counted) == [0, 1, 2, 3, 4]
    assert {(d.status, d.attempts) for d in deliveries()} == {("processed", 1)}
    # The drain cleared its flag when it started: the next delivery queues the next drain.
    post_shopify(client, "tests/counted", {"n": 5}, shop=domain)
    assert queued_jobs() == [("jobs.webhooks.drain", ())]


def test_delivered_three_times_is_handled_once(client, shop, run_jobs, counted):
    """Shopify retries with the same webhook id: one row, one job, one handler call."""
    shop_id = shop.id
    for _ in range(3):
        res = post_shopify(
            client, "tests/counted", {"n": 1}, shop=shop.domain, webhook_id="same-id"
        )
        assert res.status_code == 200
    assert len(deliveries()) == 1
    assert len(queued_job_args()) == 1
    run_jobs()
    [row] = deliveries()
    assert counted == [(shop_id, {"n": 1}, row.id)]
    assert (row.status, row.payload, row.attempts) == ("processed", None, 1)
    assert row.processed_at is not None
    # A fourth delivery after processing is still a no-op.
    assert (
        post_shopify(
            client, "tests/counted", {"n": 1}, shop=SHOP_DOMAIN, webhook_id="same-id"
        ).status_code
        == 200
    )
    run_jobs()
    assert len(counted) == 1


def test_scopes_update_redelivered_applies_once(client, shop, run_jobs):
    """A real topic through the same path: the scopes are stored, the duplicates ignored."""
    payload = {
        "id": 1,
        "previous": ["read_customers"],
        "current": ["read_orders", "read_customers", "write_discounts"],
    }
    shop_id = shop.id
    for _ in range(3):
        post_shopify(client, "app/scopes_update", payload, shop=shop.domain, webhook_id="s-1")
    run_jobs()
    assert db.session.get(Shop, shop_id).scopes == "read_customers,read_orders,write_discounts"
    assert [(d.topic, d.status) for d in deliveries()] == [("app/scopes_update", "processed")]


def test_malformed_json_is_400_and_stores_nothing(client, shop, caplog):
    caplog.set_level(logging.WARNING, logger="webhooks.shopify")
    res = post_shopify(
        client, "orders/create", None, body=b'{"id": 1,', shop=shop.domain, webhook_id="broken-1"
    )
    assert res.status_code == 400
    assert deliveries() == []
    assert queued_job_args() == []
    assert any(
        "orders/create" in r.getMessage() and "broken-1" in r.getMessage() for r in caplog.records
    )


@pytest.mark.parametrize("body", [b"[1, 2]", b"\xff\xfe{}", b""])
def test_body_that_is_not_a_json_object_is_400(client, shop, body):
    res = post_shopify(client, "orders/create", None, body=body, shop=shop.domain)
    assert res.status_code == 400
    assert deliveries() == []


@pytest.mark.parametrize("topic", ["orders/create", *sorted(COMPLIANCE_TOPICS)])
@pytest.mark.parametrize("tamper", ["wrong_secret", "body_changed", "no_header", "garbage"])
def test_bad_hmac_is_401_and_stores_nothing(client, shop, topic, tamper):
    """Every topic, compliance ones included: refused before parsing or recording."""
    payload = {"shop_domain": shop.domain, "customer": {"phone": "+14155550123"}}
    raw = json.dumps(payload).encode()
    kwargs: dict = {"body": raw}
    if tamper == "wrong_secret":
        kwargs["secret"] = "not-the-secret"
    elif tamper == "body_changed":
        kwargs["X_Shopify_Hmac_Sha256"] = post_hmac(raw.replace(b"0123", b"9999"))
    elif tamper == "no_header":
        kwargs["X_Shopify_Hmac_Sha256"] = None
    else:
        kwargs["X_Shopify_Hmac_Sha256"] = "not base64 at all \u2603"
    res = post_shopify(client, topic, None, shop=shop.domain, **kwargs)
    assert res.status_code == 401
    assert deliveries() == []
    assert queued_job_args() == []


def post_hmac(body: bytes) -> str:
    from tests.conftest import API_SECRET
    from tests.fakes.signing import shopify_webhook_hmac

    return shopify_webhook_hmac(body, API_SECRET)


@pytest.mark.parametrize(
    "override",
    [
        {"X_Shopify_Topic": None},
        {"X_Shopify_Webhook_Id": None},
        {"X_Shopify_Shop_Domain": None},
        {"X_Shopify_Shop_Domain": "evil.com"},
        {"X_Shopify_Shop_Domain": "shop.myshopify.com.evil.com"},
        {"X_Shopify_Webhook_Id": "x" * 101},
    ],
)
def test_missing_or_invalid_headers_are_400(client, shop, override):
    res = post_shopify(client, "orders/create", {"id": 1}, shop=shop.domain, **override)
    assert res.status_code == 400
    assert deliveries() == []


def test_unknown_topic_is_200_recorded_ignored_without_job(client, shop, caplog):
    caplog.set_level(logging.INFO, logger="webhooks.shopify")
    res = post_shopify(client, "products/create", {"id": 5, "title": "Mug"}, shop=shop.domain)
    assert res.status_code == 200
    [row] = deliveries()
    assert (row.topic, row.status, row.payload, row.error) == (
        "products/create",
        "ignored",
        None,
        "unknown topic",
    )
    assert queued_job_args() == []
    assert any("products/create" in r.getMessage() for r in caplog.records)


def test_known_topic_without_handler_is_ignored_not_an_error(client, shop, monkeypatch):
    monkeypatch.delitem(handlers._HANDLERS, "orders/paid", raising=False)
    res = post_shopify(client, "orders/paid", ORDER, shop=shop.domain)
    assert res.status_code == 200
    [row] = deliveries()
    assert (row.status, row.payload, row.error) == (
        "ignored",
        None,
        "no handler for this topic yet",
    )
    assert queued_job_args() == []


def test_delivery_for_an_unknown_shop_is_recorded_without_shop(client, shop, counted, run_jobs):
    res = post_shopify(client, "tests/counted", {"x": 1}, shop=OTHER_SHOP_DOMAIN)
    assert res.status_code == 200
    [row] = deliveries()
    assert (row.shop_id, row.shop_domain) == (None, OTHER_SHOP_DOMAIN)
    run_jobs()
    assert counted == [(None, {"x": 1}, row.id)]


def test_delivery_that_cannot_be_recorded_is_500_so_shopify_retries(client, shop, caplog):
    """The one 500: the row could not be written. Nothing half-done, and the retry works."""
    db.session.commit()
    table = WebhookDelivery.__table__
    db.session.execute(text("DROP TABLE webhook_delivery"))
    db.session.commit()
    try:
        res = post_shopify(client, "orders/create", ORDER, shop=shop.domain, webhook_id="r-1")
        assert res.status_code == 500
        assert queued_job_args() == []
    finally:
        db.session.rollback()
        table.create(db.engine, checkfirst=True)
    assert deliveries() == []
    res = post_shopify(client, "orders/create", ORDER, shop=shop.domain, webhook_id="r-1")
    assert res.status_code == 200
    assert [d.webhook_id for d in deliveries()] == ["r-1"]


def test_job_is_queued_only_after_commit(client, shop, monkeypatch):
    """If recording fails (the INSERT's commit), no job is pushed and the answer is a 500."""

    def failing_record(params):
        raise RuntimeError("database went away")

    monkeypatch.setattr(shopify_door, "_insert_once", failing_record)
    res = post_shopify(client, "app/scopes_update", {"current": []}, shop=shop.domain)
    monkeypatch.undo()
    assert res.status_code == 500
    assert queued_job_args() == []
    assert deliveries() == []


def test_a_dropped_intake_connection_is_replaced_not_answered_500(client, shop):
    """PostgreSQL: the door's pool has no pre-ping; a connection the server dropped (restart,
    proxy, pg_terminate_backend) costs one retry on a fresh connection, not a lost delivery."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("the door's own autocommit pool is PostgreSQL's")
    assert (
        post_shopify(client, "tests/none", {}, shop=shop.domain, webhook_id="a").status_code == 200
    )
    db.session.execute(
        text(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    )
    db.session.commit()
    res = post_shopify(client, "orders/create", ORDER, shop=shop.domain, webhook_id="b")
    assert res.status_code == 200
    res = post_shopify(client, "orders/create", ORDER, shop=shop.domain, webhook_id="b")
    assert res.status_code == 200
    assert [(d.webhook_id, d.status) for d in deliveries()] == [
        ("a", "ignored"),
        ("b", "received"),
    ]
    assert len(queued_job_args()) == 1


def test_shop_lookup_uses_the_header_domain(client, shop, other_shop):
    post_shopify(client, "app/scopes_update", {"current": []}, shop=other_shop.domain)
    [row] = deliveries()
    assert row.shop_id == other_shop.id
    assert db.session.get(Shop, row.shop_id).domain == OTHER_SHOP_DOMAIN
