"""jobs.webhooks: the handler runs once per delivery, failures retry, lost jobs are re-queued."""

from __future__ import annotations

from datetime import timedelta

import pytest
from rq.job import Job, JobStatus
from rq.registry import ScheduledJobRegistry
from sqlalchemy import select, update

from jobs import webhooks as webhook_jobs
from jobs.scheduler import PERIODIC
from jobs.webhooks import STALE_AFTER, process_delivery, requeue_stale
from shopify_app.extensions import db, get_queue, get_redis
from shopify_app.models import Shop, WebhookDelivery, utcnow
from tests.conftest import SHOP_DOMAIN
from tests.integration.webhook_support import (
    deliveries,
    post_shopify,
    queued_job_args,
    queued_jobs,
)
from webhooks import handlers
from webhooks.handlers import KNOWN_TOPICS, delivery_job_id, handler_for, handles

PHONE = "+14155550123"


@pytest.fixture
def flaky(app):
    """A handler that fails (with personal data in its message) until told to succeed."""
    state = {"fail": True, "calls": 0}

    @handles("tests/flaky")
    def _flaky(shop, payload, delivery):
        state["calls"] += 1
        shop.name = "changed by handler"  # must roll back with the failure
        if state["fail"]:
            raise ValueError(f"cannot parse {payload['phone']}")

    yield state
    handlers.unregister("tests/flaky")


def test_registry_imports_topic_modules_and_lists_known_topics(app):
    from webhooks.handlers.app import app_uninstalled
    from webhooks.handlers.compliance import customers_redact, shop_redact

    assert handler_for("app/uninstalled") is app_uninstalled
    assert handler_for("customers/redact") is customers_redact
    assert handler_for("shop/redact") is shop_redact
    assert handler_for("no/such-topic") is None
    assert {
        "orders/create",
        "refunds/create",
        "customers_marketing_consent/update",
        "customers/data_request",
        "checkouts/update",
    } <= KNOWN_TOPICS
    assert len(KNOWN_TOPICS) == 14


def test_two_handlers_for_one_topic_is_refused(app):
    with pytest.raises(ValueError, match="already handled"):

        @handles("app/uninstalled")
        def _another(shop, payload, delivery):
            pass


def test_failure_rolls_back_records_error_and_keeps_payload(client, shop, run_jobs, flaky):
    shop_id = shop.id
    post_shopify(client, "tests/flaky", {"phone": PHONE}, shop=shop.domain, webhook_id="f-1")
    failed_from = utcnow()
    run_jobs()
    failed_by = utcnow()
    [row] = deliveries()
    # The handler's change was rolled back with the failure.
    assert db.session.get(Shop, shop_id).name == "Tidings Test Shop"
    assert (row.status, row.attempts) == ("failed", 1)
    assert row.error.startswith("ValueError at ")
    assert "test_webhooks_jobs.py" in row.error
    assert PHONE not in row.error and "4155550123" not in row.error
    assert row.payload == f'{{"phone": "{PHONE}"}}'
    # The delivery's own job is scheduled 10 s later; RQ spaces the two after it (60, 300 s).
    job = Job.fetch(delivery_job_id(row.id), connection=get_redis())
    assert job.get_status() == JobStatus.SCHEDULED
    assert job.retries_left == 2
    assert job.retry_intervals == [60, 300]
    at = ScheduledJobRegistry(queue=get_queue("webhooks")).get_scheduled_time(job)
    # Bracketed by the failure itself, not by "now": a slow machine must not fail this.
    # RQ keeps whole seconds, so the stored time may sit up to 1 s before the exact one.
    assert failed_from + timedelta(seconds=9) <= at <= failed_by + timedelta(seconds=10)


def test_retries_until_the_last_then_stays_failed(client, shop, run_jobs, flaky):
    post_shopify(client, "tests/flaky", {"phone": PHONE}, shop=shop.domain)
    run_jobs()
    [row] = deliveries()
    for _ in range(3):  # what RQ's three retries do
        with pytest.raises(ValueError):
            process_delivery(row.id)
    [row] = deliveries()
    assert (row.status, row.attempts, flaky["calls"]) == ("failed", 4, 4)
    assert row.payload is not None


def test_retry_that_succeeds_processes_and_clears_payload(client, shop, run_jobs, flaky):
    shop_id = shop.id
    post_shopify(client, "tests/flaky", {"phone": PHONE}, shop=shop.domain)
    run_jobs()
    flaky["fail"] = False
    [row] = deliveries()
    assert process_delivery(row.id) == "processed"
    [row] = deliveries()
    assert (row.status, row.payload, row.error, row.attempts) == ("processed", None, None, 2)
    assert db.session.get(Shop, shop_id).name == "changed by handler"


def test_processing_twice_is_harmless(client, shop, run_jobs, flaky):
    flaky["fail"] = False
    post_shopify(client, "tests/flaky", {"phone": PHONE}, shop=shop.domain)
    run_jobs()
    [row] = deliveries()
    assert process_delivery(row.id) == "processed"
    assert process_delivery(row.id) == "processed"
    assert flaky["calls"] == 1
    assert process_delivery(987654) == "missing"


def test_stale_received_delivery_is_drained(client, shop, run_jobs, flaky):
    """Deliveries whose drain was lost with Redis are found by the sweep and processed."""
    flaky["fail"] = False
    for webhook_id in ("old", "new"):
        post_shopify(
            client, "tests/flaky", {"phone": PHONE}, shop=SHOP_DOMAIN, webhook_id=webhook_id
        )
    get_redis().flushdb()  # Redis lost every job (and the drain flag)
    assert requeue_stale() == 0  # both younger than two minutes: maybe just a backlog
    db.session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.webhook_id == "old")
        .values(created_at=utcnow() - STALE_AFTER - timedelta(seconds=5))
    )
    db.session.commit()
    assert requeue_stale() == 1  # one drain, which takes every waiting delivery
    run_jobs()
    assert {d.webhook_id: d.status for d in deliveries()} == {
        "old": "processed",
        "new": "processed",
    }
    assert flaky["calls"] == 2
    assert requeue_stale(now=utcnow() + timedelta(minutes=3)) == 0


def test_sweep_leaves_a_delivery_whose_drain_is_still_queued(client, shop, flaky):
    post_shopify(client, "tests/flaky", {"phone": PHONE}, shop=shop.domain)
    assert len(queued_job_args()) == 1
    assert requeue_stale(now=utcnow() + timedelta(minutes=5)) == 0
    assert len(queued_job_args()) == 1


def test_sweep_requeues_a_failed_delivery_whose_retry_was_lost(client, shop, run_jobs, flaky):
    """A retry lost with Redis comes back once its interval (plus slack) has passed."""
    post_shopify(client, "tests/flaky", {"phone": PHONE}, shop=shop.domain)
    run_jobs()
    [row] = deliveries()
    assert (row.status, row.attempts) == ("failed", 1)
    assert requeue_stale(now=utcnow() + timedelta(minutes=5)) == 0  # its retry is scheduled
    get_redis().flushdb()
    assert requeue_stale() == 0  # not due yet: 10 s + the two minutes' slack
    flaky["fail"] = False
    assert requeue_stale(now=utcnow() + STALE_AFTER + timedelta(seconds=11)) == 1
    run_jobs()
    [row] = deliveries()
    assert (row.status, row.attempts, row.payload) == ("processed", 2, None)


def test_one_failing_delivery_does_not_poison_its_batch(client, shop, run_jobs, flaky):
    """Handlers run in their own savepoints: the others in the batch commit."""
    shop_id = shop.id

    @handles("tests/fine")
    def _fine(shop, payload, delivery):
        shop.name = f"fine {payload['n']}"

    try:
        post_shopify(client, "tests/fine", {"n": 1}, shop=shop.domain, webhook_id="a")
        post_shopify(client, "tests/flaky", {"phone": PHONE}, shop=shop.domain, webhook_id="b")
        post_shopify(client, "tests/fine", {"n": 3}, shop=shop.domain, webhook_id="c")
        run_jobs()
    finally:
        handlers.unregister("tests/fine")
    assert {d.webhook_id: (d.status, d.attempts) for d in deliveries()} == {
        "a": ("processed", 1),
        "b": ("failed", 1),
        "c": ("processed", 1),
    }
    assert db.session.get(Shop, shop_id).name == "fine 3"


def test_a_backlog_drains_in_batches_with_helpers(client, shop, run_jobs, flaky, monkeypatch):
    flaky["fail"] = False
    monkeypatch.setattr(webhook_jobs, "BATCH_SIZE", 2)
    for n in range(5):
        post_shopify(client, "tests/flaky", {"phone": PHONE, "n": n}, shop=shop.domain)
    db.session.remove()
    # The posts queued one drain; a full batch queues one helper, which takes over when
    # this drain's time is up after its first batch.
    assert webhook_jobs.drain(max_seconds=0) == 2
    assert [f for f, _ in queued_jobs()] == ["jobs.webhooks.drain", "jobs.webhooks.drain"]
    run_jobs()
    assert {d.status for d in deliveries()} == {"processed"}
    assert flaky["calls"] == 5


class _WorkerKilled(BaseException):
    """What a SIGKILL looks like from inside: nothing after it runs, no `except Exception`."""


def test_a_drain_that_dies_mid_batch_loses_nothing(client, shop, run_jobs, flaky):
    """The worker running the drain dies in the middle of a batch: the batch's transaction
    never commits, so its rows are still "received" (the handler's effects undone); the next
    delivery queues a new drain (the dead one had cleared the flag), and every delivery is
    processed exactly once."""
    shop_id, domain = shop.id, shop.domain
    for n in range(3):
        post_shopify(client, "tests/flaky", {"phone": PHONE, "n": n}, shop=domain)
    db.session.remove()
    get_redis().flushdb()  # the queued drain is the one we run by hand below
    handlers.unregister("tests/flaky")
    calls = []

    @handles("tests/flaky")
    def dies_on_the_second(shop_row, payload, delivery):
        calls.append(payload["n"])
        shop_row.name = "changed by a handler whose batch died"
        if payload["n"] == 1:
            raise _WorkerKilled

    with pytest.raises(_WorkerKilled):
        webhook_jobs.drain()
    db.session.rollback()  # what the dead process's connection closing amounts to
    assert {d.status for d in deliveries()} == {"received"}
    assert db.session.get(Shop, shop_id).name != "changed by a handler whose batch died"
    assert not get_redis().exists(handlers.DRAIN_FLAG)
    assert calls == [0, 1]

    handlers.unregister("tests/flaky")
    calls.clear()

    @handles("tests/flaky")
    def healthy_again(shop_row, payload, delivery):
        calls.append(payload["n"])

    post_shopify(client, "tests/flaky", {"phone": PHONE, "n": 3}, shop=domain)
    assert [f for f, _ in queued_jobs()] == ["jobs.webhooks.drain"]
    run_jobs()
    assert [d.status for d in deliveries()] == ["processed"] * 4
    assert sorted(calls) == [0, 1, 2, 3]


def test_a_drain_lost_with_its_worker_is_replaced_by_the_sweep(client, shop, run_jobs, flaky):
    """No later delivery comes: the periodic sweep finds the rows the dead drain left."""
    flaky["fail"] = False
    post_shopify(client, "tests/flaky", {"phone": PHONE}, shop=shop.domain)
    get_redis().flushdb()  # the drain job died with its worker; its flag expired
    later = utcnow() + STALE_AFTER + timedelta(seconds=5)
    assert requeue_stale(now=later) == 1
    run_jobs()
    assert [d.status for d in deliveries()] == ["processed"]
    assert flaky["calls"] == 1


def test_concurrent_drains_skip_each_others_rows(app, client, shop, flaky):
    """PostgreSQL: rows another drain holds are skipped, not waited for or run twice."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("row locks need PostgreSQL")
    flaky["fail"] = False
    for n in range(4):
        post_shopify(client, "tests/flaky", {"phone": PHONE, "n": n}, shop=shop.domain)
    first_two = [d.id for d in deliveries()][:2]
    db.session.remove()
    with db.engine.connect() as other:  # another drain, mid-batch, holding two rows
        other.execute(
            select(WebhookDelivery.id).where(WebhookDelivery.id.in_(first_two)).with_for_update()
        )
        assert webhook_jobs.drain() == 2
        other.rollback()
    assert [d.status for d in deliveries()] == ["received", "received", "processed", "processed"]
    assert webhook_jobs.drain() == 2
    assert flaky["calls"] == 4


def test_sweep_is_a_periodic_job(app):
    [sweep] = [p for p in PERIODIC if p.func == "jobs.webhooks.requeue_stale"]
    assert sweep.every_seconds == 60
