"""Exactly once under faults: real worker processes, the Twilio stand-in, ~2 000 recipients.

In each test the stand-in's record must end with every recipient exactly once and every row
`sent` with the sid the stand-in gave it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from shopify_app.providers import set_provider
from tests.fakes.twilio_server import FakeTwilio
from tests.faults.harness import (
    PrivateRedis,
    Workers,
    app_on_redis,
    assert_exactly_once,
    drive,
    require_shared_database,
    seed,
    worker_env,
)

pytestmark = pytest.mark.slow

RECIPIENTS = 2000


@pytest.fixture
def fake() -> Iterator[FakeTwilio]:
    with FakeTwilio(auth_token="test-twilio-token", seed=11) as server:
        yield server


def _workers(app: Flask, fake: FakeTwilio) -> Iterator[Workers]:
    require_shared_database()
    pool = Workers(worker_env(app, fake))
    try:
        yield pool
    finally:
        pool.stop()
        set_provider(app, None)


@pytest.fixture
def workers(app: Flask, fake: FakeTwilio) -> Iterator[Workers]:
    yield from _workers(app, fake)


@pytest.fixture
def private_redis(app: Flask, tmp_path: Path) -> Iterator[PrivateRedis]:
    """This test's own redis-server, which the app here and its workers use."""
    server = PrivateRedis(tmp_path)
    server.start()
    try:
        with app_on_redis(app, server.url):
            yield server
    finally:
        server.stop()


@pytest.fixture
def workers_on_private_redis(
    app: Flask, fake: FakeTwilio, private_redis: PrivateRedis
) -> Iterator[Workers]:
    yield from _workers(app, fake)


def test_worker_killed_mid_batch(app, fake, workers):
    """SIGKILL one of two workers while its batch is on the wire: the rows it left in
    `sending` are reconciled (sent ones recorded, unsent ones sent later), none twice."""
    shop_id, phones = seed(RECIPIENTS)
    fake.configure(latency_ms=40)
    workers.start(2)
    killed: list[int] = []

    def kill_when_busy(elapsed: float) -> None:
        if not killed and len(fake.messages) >= 300:
            workers.kill(0)
            killed.append(len(fake.messages))

    drive(app, fake, workers, shop_id, during=kill_when_busy)

    assert killed and killed[0] < RECIPIENTS
    assert workers.restarts >= 1
    assert_exactly_once(fake, shop_id, phones)


def test_redis_restart_mid_send(app, fake, private_redis, workers_on_private_redis):
    """Redis (a private server: never the shared one) stops without saving — queued jobs,
    rate-limit state and markers are gone — and comes back: the sweep re-enqueues, every
    recipient still gets exactly one text."""
    workers = workers_on_private_redis
    shop_id, phones = seed(RECIPIENTS)
    fake.configure(latency_ms=30)
    workers.start(2)
    restarted: list[int] = []

    def restart_when_busy(elapsed: float) -> None:
        if not restarted and len(fake.messages) >= 300:
            restarted.append(len(fake.messages))
            private_redis.restart()

    drive(app, fake, workers, shop_id, during=restart_when_busy)

    assert restarted and restarted[0] < RECIPIENTS
    assert_exactly_once(fake, shop_id, phones)


def test_twenty_percent_429_and_500(app, fake, workers):
    """One create in five answered 429 (Retry-After) or 500: retried with backoff until each
    recipient has exactly one message."""
    shop_id, phones = seed(RECIPIENTS)
    fake.configure(error_rate=0.2, error_mix={429: 0.5, 500: 0.5})
    workers.start(2)

    drive(app, fake, workers, shop_id, timeout=300)

    stats = fake.stats()
    assert stats["injected"] >= RECIPIENTS * 0.15
    assert_exactly_once(fake, shop_id, phones)
