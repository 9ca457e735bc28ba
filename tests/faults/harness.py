"""Fault-test harness: real worker processes sending through the Twilio stand-in.

Workers are `python -m flask --app shopify_app:create_app worker` processes sharing the test
database (a file: SQLite's temp file, or TEST_DATABASE_URL) and Redis (the Redis-restart test:
a private redis-server on a free port, never the shared one) with this process, which plays
the scheduler: it runs the send sweep and reconciliation every second or two, as the
periodic tick would, and restarts a worker that died, as a process supervisor would.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
from flask import Flask
from sqlalchemy import func, select, text

from jobs import sending as send_jobs
from shopify_app.extensions import db
from shopify_app.models import Campaign, Message, Shop, Subscriber, utcnow
from shopify_app.providers import set_provider
from tests.conftest import make_test_config
from tests.fakes.twilio_server import DEFAULT_ACCOUNT_SID, FakeTwilio
from tests.integration.send_support import FROM_NUMBER, day_zone, make_provider

ROOT = Path(__file__).resolve().parents[2]
LEASE_SECONDS = 15


def worker_env(app: Flask, fake: FakeTwilio) -> dict[str, str]:
    env = dict(os.environ)
    env.update({k: str(v) for k, v in make_test_config().items()})
    env.update(
        {
            "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
            "REDIS_URL": app.config["REDIS_URL"],
            "SMS_PROVIDER": "twilio",
            "TWILIO_ACCOUNT_SID": DEFAULT_ACCOUNT_SID,
            "TWILIO_AUTH_TOKEN": "test-twilio-token",
            "TWILIO_FROM_NUMBER": FROM_NUMBER,
            "TWILIO_API_BASE_URL": fake.url,
            "TWILIO_TIMEOUT_SECONDS": "3",
            "SEND_LEASE_SECONDS": str(LEASE_SECONDS),
            "SEND_BATCH_SIZE": "100",
            "SEND_CONCURRENCY": "8",
            "LOG_LEVEL": "WARNING",
            "TESTING": "false",
        }
    )
    return env


@dataclass
class Workers:
    env: dict[str, str]
    procs: list[subprocess.Popen] = field(default_factory=list)
    restarts: int = 0

    def start(self, n: int = 1) -> None:
        for _ in range(n):
            self.procs.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "flask",
                        "--app",
                        "shopify_app:create_app",
                        "worker",
                        "--queue",
                        "sending",
                    ],
                    cwd=ROOT,
                    env=self.env,
                )
            )

    def kill(self, index: int = 0) -> None:
        """SIGKILL: no warm shutdown, nothing recorded, the batch in flight abandoned."""
        self.procs[index].send_signal(signal.SIGKILL)
        self.procs[index].wait(10)

    def supervise(self) -> None:
        """Replace workers that exited (killed, or crashed when Redis went away)."""
        for i, proc in enumerate(self.procs):
            if proc.poll() is not None:
                self.procs[i] = subprocess.Popen(proc.args, cwd=ROOT, env=self.env)
                self.restarts += 1

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def seed(recipients: int) -> tuple[int, list[str]]:
    """A shop with `recipients` subscribed numbers and one pending campaign row each."""
    now = utcnow()
    shop = Shop(
        domain="faults.myshopify.com",
        name="Faults",
        timezone="America/New_York",
        installed_at=now,
        settings={"messages_per_second": 10_000, "smart_sending_hours": 0},
    )
    db.session.add(shop)
    db.session.flush()
    campaign = Campaign(
        shop_id=shop.id, name="Faults", status="sending", body="Hi {first_name}, the sale is on."
    )
    db.session.add(campaign)
    db.session.flush()
    zone = day_zone()
    phones = [f"+1303555{i:04d}" for i in range(recipients)]
    subs = [
        Subscriber(
            shop_id=shop.id,
            phone=p,
            status="subscribed",
            source="import",
            country="US",
            timezone=zone,
            first_name=f"N{i}",
        )
        for i, p in enumerate(phones)
    ]
    db.session.add_all(subs)
    db.session.flush()
    db.session.add_all(
        Message(
            shop_id=shop.id,
            subscriber_id=s.id,
            kind="campaign",
            campaign_id=campaign.id,
            status="pending",
            due_at=now,
        )
        for s in subs
    )
    db.session.commit()
    return shop.id, phones


def open_count(shop_id: int) -> int:
    count = db.session.scalar(
        select(func.count())
        .select_from(Message)
        .where(Message.shop_id == shop_id, Message.status.in_(("pending", "sending")))
    )
    db.session.rollback()
    return int(count or 0)


def drive(
    app: Flask,
    fake: FakeTwilio,
    workers: Workers,
    shop_id: int,
    *,
    timeout: float = 240,
    during: Callable[[float], None] | None = None,
) -> float:
    """Tick like the scheduler until every row has an outcome. `during(elapsed)` is called
    each round (to inject the fault). Returns the seconds it took."""
    set_provider(app, make_provider(fake, timeout=3.0))
    started = time.monotonic()
    last_reconcile = 0.0
    while True:
        elapsed = time.monotonic() - started
        if during is not None:
            during(elapsed)
        workers.supervise()
        try:
            send_jobs.sweep()
            if elapsed - last_reconcile >= 2:
                send_jobs.reconcile_stuck()
                last_reconcile = elapsed
        except redis.RedisError:
            pass  # Redis is restarting: the next round tries again
        finally:
            db.session.remove()
        if open_count(shop_id) == 0:
            return elapsed
        if elapsed > timeout:
            raise AssertionError(f"{open_count(shop_id)} rows still open after {timeout}s")
        time.sleep(1.0)


def outcomes(shop_id: int) -> dict[str, int]:
    rows = db.session.execute(
        select(Message.status, func.count())
        .where(Message.shop_id == shop_id)
        .group_by(Message.status)
    ).all()
    db.session.rollback()
    return dict(rows)


def recorded_sids(shop_id: int) -> dict[str, str]:
    """phone -> provider sid recorded on our rows."""
    rows = db.session.execute(
        select(Subscriber.phone, Message.provider_sid)
        .join(Subscriber, Subscriber.id == Message.subscriber_id)
        .where(Message.shop_id == shop_id)
    ).all()
    db.session.rollback()
    return {phone: sid for phone, sid in rows}


def assert_exactly_once(fake: FakeTwilio, shop_id: int, phones: list[str]) -> None:
    """The stand-in's record holds every recipient once, and our rows name those messages."""
    counts = fake.count_by_to()
    assert {p: counts.get(p, 0) for p in phones} == {p: 1 for p in phones}
    assert outcomes(shop_id) == {"sent": len(phones)}
    sids = recorded_sids(shop_id)
    assert {p: fake.received_to(p)[0].sid for p in phones} == sids


class PrivateRedis:
    """A redis-server of the test's own on a free port: stopping it (without saving: queued
    jobs, rate-limit state and markers are lost) never touches the Redis that other tests,
    helpers or CI share. The app and its workers are pointed at it for the test."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = _free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5)

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
                "--logfile",
                str(self.directory / "redis.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait_up(self._client().ping)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(redis.RedisError):  # the server answers SHUTDOWN by going away
            self._client().shutdown(nosave=True)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    def restart(self) -> None:
        """Stop without saving and start again on the same port."""
        self.stop()
        _wait_down(self._client().ping)
        self.start()


@contextlib.contextmanager
def app_on_redis(app: Flask, url: str) -> Iterator[None]:
    """Point the app (this process's Redis connection) at `url` for a while."""
    saved_url = app.config["REDIS_URL"]
    saved_conn = app.extensions.pop("tidings_redis", None)
    app.config["REDIS_URL"] = url
    try:
        yield
    finally:
        conn = app.extensions.pop("tidings_redis", None)
        if conn is not None:
            conn.close()
        app.config["REDIS_URL"] = saved_url
        if saved_conn is not None:
            app.extensions["tidings_redis"] = saved_conn


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_down(ping: Callable[[], Any], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            ping()
        except (redis.RedisError, OSError):
            return
        time.sleep(0.1)
    raise AssertionError("Redis did not stop")


def _wait_up(ping: Callable[[], Any], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            ping()
            return
        except (redis.RedisError, OSError):
            time.sleep(0.1)
    raise AssertionError("Redis did not come back")


def require_shared_database() -> None:
    """The shared database must be a file or a server, never SQLite in memory."""
    url = str(db.engine.url)
    assert ":memory:" not in url and url != "sqlite://", "fault tests need a file database"
    db.session.execute(text("SELECT 1"))
