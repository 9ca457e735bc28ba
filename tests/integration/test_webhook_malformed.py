"""A malformed webhook payload fails for good on its first attempt (no retry, payload kept,
a reason without its values); transient errors are still retried, and the rest of the drain
batch is processed."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from rq.job import Job, JobStatus
from rq.registry import ScheduledJobRegistry
from sqlalchemy import update

from jobs import webhooks as webhook_jobs
from jobs.webhooks import process_delivery, requeue_stale
from shopify_app.extensions import db, get_queue, get_redis
from shopify_app.models import Order, Shop, WebhookDelivery, utcnow
from shopify_app.services import flow_triggers
from tests.integration.analytics_support import fixture
from tests.integration.webhook_support import deliveries, post_shopify
from webhooks.handlers import MAX_ATTEMPTS, QUEUE, delivery_job_id

PHONE_DIGITS = "6175550101"  # in the fixtures' customer and address phones
GOOD_ORDER_ID = 5820041936934


def record(shop: Shop, topic: str, body: str, webhook_id: str) -> None:
    """A delivery row as the door records it. The door refuses a body that is not a JSON
    object, so such a row comes from before that check or from a replay by hand."""
    db.session.add(
        WebhookDelivery(
            shop_id=shop.id,
            shop_domain=shop.domain,
            topic=topic,
            webhook_id=webhook_id,
            status="received",
            payload=body,
            payload_bytes=len(body),
            attempts=0,
        )
    )
    db.session.commit()


def order(**changes: Any) -> dict[str, Any]:
    payload = fixture("order_with_codes")
    payload.update(changes)
    return payload


def bad_price() -> dict[str, Any]:
    payload = order()
    payload["total_price_set"]["shop_money"]["amount"] = "abc"
    return payload


def bad_embedded_refund() -> dict[str, Any]:
    refund = fixture("refund_usd")
    refund["transactions"][0]["amount"] = "twelve"
    return order(refunds=[refund])


def bad_refund_amount() -> dict[str, Any]:
    refund = fixture("refund_usd")
    refund["transactions"][0]["amount"] = "twelve"
    return refund


def without_id() -> dict[str, Any]:
    payload = order()
    del payload["id"]
    return payload


# (topic, raw body or payload, the reason recorded after "malformed payload: <topic>: ")
CASES: dict[str, tuple[str, str | Callable[[], dict[str, Any]], str]] = {
    "not JSON": ("orders/create", '{"id": 1, "phone": "+16175550101"', "the body is not JSON"),
    "JSON array": ("orders/create", '[{"id": 1}]', "the body is not a JSON object"),
    "missing id": ("orders/create", without_id, "id is missing"),
    "price abc": ("orders/create", bad_price, "total_price_set.shop_money.amount is not a decimal"),
    "id beyond BIGINT": ("orders/create", lambda: order(id=10**30), "id is not a Shopify id"),
    "address not an object": (
        "orders/updated",
        lambda: order(billing_address="617 555 0101, Boston"),
        "billing_address is not an object",
    ),
    "refund inside the order": (
        "orders/create",
        bad_embedded_refund,
        "refunds[0].transactions[0].amount is not a decimal",
    ),
    "refund amount": (
        "refunds/create",
        bad_refund_amount,
        "transactions[0].amount is not a decimal",
    ),
    "refund without order id": (
        "refunds/create",
        lambda: {**fixture("refund_usd"), "order_id": None},
        "order_id is missing",
    ),
    "checkout total": (
        "checkouts/update",
        lambda: {"token": "tok-1", "phone": "+16175550101", "total_price": {"amount": 1}},
        "total_price is not a decimal",
    ),
}


def no_retry_job(delivery_id: int) -> bool:
    """Nothing in Redis will run the delivery again: no job, queued or scheduled."""
    job_id = delivery_job_id(delivery_id)
    queue = get_queue(QUEUE)
    return (
        not Job.exists(job_id, connection=get_redis())
        and job_id not in queue.get_job_ids()
        and job_id not in ScheduledJobRegistry(queue=queue).get_job_ids()
    )


@pytest.mark.parametrize("case", list(CASES))
def test_malformed_payload_fails_for_good_and_the_batch_goes_on(client, shop, run_jobs, case):
    """First attempt: "failed" with no attempts left, a reason without values, the payload
    kept, no retry job; the well-formed delivery drained with it is processed."""
    shop_id = shop.id
    topic, body, reason = CASES[case]
    if isinstance(body, str):
        record(shop, topic, body, "bad")
    else:
        body = json.dumps(body())
        post_shopify(client, topic, None, body=body.encode(), shop=shop.domain, webhook_id="bad")
    # Posted after the bad one, so both are claimed by the drain this queues, in one batch.
    post_shopify(client, "orders/create", order(), shop=shop.domain, webhook_id="good")
    run_jobs()

    rows = {d.webhook_id: d for d in deliveries()}
    bad, good = rows["bad"], rows["good"]
    assert (bad.status, bad.attempts) == ("failed", MAX_ATTEMPTS)
    assert bad.error == f"malformed payload: {topic}: {reason}"
    assert PHONE_DIGITS not in bad.error
    assert bad.payload == body  # kept for a replay once the code copes with it
    assert no_retry_job(bad.id)
    assert (good.status, good.attempts, good.payload) == ("processed", 1, None)
    orders = db.session.scalars(Order.for_shop(shop_id)).all()
    assert [o.shopify_order_id for o in orders] == [GOOD_ORDER_ID]
    # The sweep does not bring it back either, however late it runs.
    assert requeue_stale(now=utcnow() + timedelta(hours=1)) == 0
    assert no_retry_job(bad.id)


def test_a_value_postgresql_refuses_fails_for_good(client, shop, run_jobs):
    """A total beyond NUMERIC(12,2): PostgreSQL's DataError is the payload's fault, recorded
    without the value. SQLite has no numeric precision and simply stores it."""
    payload = order()
    payload["total_price_set"]["shop_money"]["amount"] = "123456789012.00"
    post_shopify(client, "orders/create", payload, shop=shop.domain, webhook_id="bad")
    post_shopify(client, "orders/create", order(id=GOOD_ORDER_ID + 1), shop=shop.domain)
    run_jobs()
    bad, good = deliveries()
    assert (good.status, good.attempts) == ("processed", 1)
    if db.engine.dialect.name != "postgresql":
        assert (bad.status, bad.attempts) == ("processed", 1)
        return
    assert (bad.status, bad.attempts) == ("failed", MAX_ATTEMPTS)
    assert bad.error.startswith(
        "malformed payload: orders/create: DataError at services/orders.py:"
    )
    assert bad.error.endswith("(NumericValueOutOfRange)")
    assert "123456789012" not in bad.error
    assert bad.payload is not None
    assert no_retry_job(bad.id)


def test_a_retry_that_meets_a_malformed_payload_stops_retrying(client, shop, run_jobs):
    """A delivery already failed once (say, before this check existed) whose retry job runs:
    the job finishes instead of raising, so RQ does not use its remaining retries."""
    post_shopify(client, "orders/create", bad_price(), shop=shop.domain)
    db.session.execute(update(WebhookDelivery).values(status="failed", attempts=1))
    db.session.commit()
    get_redis().flushdb()  # only the retry job below
    [row] = deliveries()
    webhook_jobs._schedule_retry(row.id, 1, wait=False)  # with RQ retries left: 60 s, 300 s
    run_jobs()
    job = Job.fetch(delivery_job_id(row.id), connection=get_redis())
    assert job.get_status() == JobStatus.FINISHED
    assert job.return_value() == "failed"
    [row] = deliveries()
    assert (row.status, row.attempts) == ("failed", MAX_ATTEMPTS)
    assert row.error == (
        "malformed payload: orders/create: total_price_set.shop_money.amount is not a decimal"
    )
    assert ScheduledJobRegistry(queue=get_queue(QUEUE)).get_job_ids() == []
    # A replay by hand after a fix runs it again; still malformed here, still no raise.
    assert process_delivery(row.id) == "failed"


def test_transient_error_in_a_real_handler_is_still_retried(client, shop, run_jobs, monkeypatch):
    """Our own code failing (a ValueError that is not about the payload) keeps the retry
    policy, next to a malformed delivery in the same batch that does not."""

    def broken(shop, order, payload):
        raise ValueError("a bug of ours, not the payload's")

    monkeypatch.setattr(flow_triggers, "order_arrived", broken)
    post_shopify(client, "orders/create", order(), shop=shop.domain, webhook_id="transient")
    post_shopify(client, "orders/create", without_id(), shop=shop.domain, webhook_id="bad")
    run_jobs()
    rows = {d.webhook_id: d for d in deliveries()}
    transient, bad = rows["transient"], rows["bad"]
    assert (transient.status, transient.attempts) == ("failed", 1)
    assert transient.error.startswith("ValueError at ")
    assert transient.payload is not None
    job = Job.fetch(delivery_job_id(transient.id), connection=get_redis())
    assert job.get_status() == JobStatus.SCHEDULED
    assert (bad.status, bad.attempts) == ("failed", MAX_ATTEMPTS)
    assert no_retry_job(bad.id)
    # Its retry runs (the bug still there): raised for RQ, one more attempt counted.
    with pytest.raises(ValueError):
        process_delivery(transient.id)
    assert deliveries()[0].attempts == 2 < MAX_ATTEMPTS


def test_flask_webhooks_replay_runs_failed_deliveries_again(
    app, client, shop, run_jobs, monkeypatch
):
    """After a fix, `flask webhooks replay --malformed` puts the delivery back with its
    attempts reset and drains it; processed deliveries are left alone."""
    post_shopify(client, "orders/create", without_id(), shop=shop.domain, webhook_id="bad")
    post_shopify(client, "orders/create", order(), shop=shop.domain, webhook_id="good")
    run_jobs()
    runner = app.test_cli_runner()
    refused = runner.invoke(args=["webhooks", "replay"])
    assert refused.exit_code == 2 and "Say which deliveries" in refused.output

    seen: list[str] = []

    def fixed(shop, payload, delivery):  # the handler as a later release would have it
        seen.append(delivery.webhook_id)

    monkeypatch.setattr(webhook_jobs, "handler_for", lambda topic: fixed)
    result = runner.invoke(args=["webhooks", "replay", "--malformed", "--topic", "orders/create"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "1 deliveries queued again."
    run_jobs()
    rows = {d.webhook_id: d for d in deliveries()}
    assert seen == ["bad"]
    assert (rows["bad"].status, rows["bad"].attempts, rows["bad"].error) == ("processed", 1, None)
    assert rows["bad"].payload is None
    assert (rows["good"].status, rows["good"].attempts) == ("processed", 1)
    # Nothing failed is left: a second replay finds nothing.
    again = runner.invoke(args=["webhooks", "replay", "--all-failed"])
    assert again.output.strip() == "0 deliveries queued again."
