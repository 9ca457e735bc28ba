"""`make faults`: a campaign under each fault, counted against the Twilio stand-in's record.

PostgreSQL (BENCH_DATABASE_URL), a private redis-server on a free loopback port (this module
stops and restarts it; the shared 6379 is never touched), the Twilio stand-in in this process
and two real `flask worker` processes on the sending queue. This process plays the scheduler:
it runs the send sweep, the reconciliation of rows stuck in `sending` and the campaign watch
every second (the periodic jobs, on a shorter tick), and restarts a worker that died, as a
process supervisor would (tests/faults/harness.py).

Cases (each a fresh campaign to N recipients):
  baseline       no fault: the time the others are compared with
  worker_kill    SIGKILL one worker while its batch is on the wire
  redis_restart  Redis stops without saving (queues, rate-limit state gone) and comes back
  pg_drop        pg_terminate_backend of every connection the app holds to the database
  twilio_errors  the stand-in answers one create in five 429 (Retry-After: 1) or 500

Each case ends when no row is pending or sending; then the stand-in's record must hold every
recipient exactly once, every row must be `sent` with the sid the stand-in gave it, and the
campaign must be `sent`. Figures per case: `faults.<case>.duplicates` (recipients texted more
than once, counting the extra texts), `.lost` (recipients never texted), `.recovery_s` (the
time the fault cost: the case's duration minus the baseline's in this run) and `.settle_s`
(from the fault until every row that was in flight at that moment had its outcome).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
from sqlalchemy import Select, create_engine, select, text
from sqlalchemy.engine import make_url

from bench.common import bench_db_url, emit, ensure_database, fresh_schema
from bench.server import free_port
from shopify_app.models import Message

CASES = ("baseline", "worker_kill", "redis_restart", "pg_drop", "twilio_errors")
_MESSAGE = Message.__table__
FAULT_AT = 0.2  # the fault strikes once this share of recipients has been texted


class PrivateRedis:
    """A redis-server of our own on a free port, without persistence, restartable."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="tidings-faults-redis-"))
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.dir),
                "--logfile",
                str(self.dir / "redis.log"),
            ]
        )
        self._wait(up=True)

    def stop(self) -> None:
        """SHUTDOWN NOSAVE: everything in memory (queued jobs, markers, limits) is gone."""
        if self.proc is None:
            return
        with contextlib.suppress(redis.RedisError):
            redis.Redis(port=self.port).shutdown(nosave=True)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def _wait(self, up: bool, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                redis.Redis(port=self.port, socket_timeout=1).ping()
                if up:
                    return
            except (redis.RedisError, OSError):
                if not up:
                    return
            time.sleep(0.05)
        raise RuntimeError(f"private redis-server on port {self.port} did not come up")


@dataclass
class CaseResult:
    case: str
    recipients: int
    duplicates: int = 0
    lost: int = 0
    seconds: float = 0.0
    settle_s: float | None = None
    campaign_status: str = ""
    row_outcomes: dict[str, int] = field(default_factory=dict)
    sids_match: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (
            self.duplicates == 0
            and self.lost == 0
            and self.campaign_status == "sent"
            and self.row_outcomes == {"sent": self.recipients}
            and self.sids_match
        )


def terminate_app_connections(db_url: str) -> int:
    """pg_terminate_backend every other session on the benchmark database: the workers' (and
    this driver's) pooled connections die as they would when PostgreSQL restarts or a proxy
    drops them."""
    url = make_url(db_url).set(drivername="postgresql+psycopg")
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            return int(
                conn.execute(
                    text(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE datname = :db AND pid <> pg_backend_pid()"
                    ),
                    {"db": url.database},
                ).scalar()
                or 0
            )
    finally:
        admin.dispose()


class Striker(threading.Thread):
    """Watches the stand-in's record and injects the fault the moment FAULT_AT of the
    recipients have been texted (the driver's one-second tick is too coarse for that), then
    times how long the rows in flight at that moment take to get their outcomes."""

    def __init__(self, case: str, threshold: int, fake: Any, inject: Callable[[], str]) -> None:
        super().__init__(daemon=True)
        self.case, self.threshold, self.fake, self.inject = case, threshold, fake, inject
        self.engine = create_engine(
            make_url(bench_db_url()).set(drivername="postgresql+psycopg"), pool_pre_ping=True
        )
        self.struck_at: float | None = None
        self.settle_s: float | None = None
        self.in_flight: list[int] = []
        self.note = ""
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set() and len(self.fake.messages) < self.threshold:
            time.sleep(0.005)
        if self.stopping.is_set():
            return
        self.in_flight = self._ids(select(_MESSAGE.c.id).where(_MESSAGE.c.status == "sending"))
        self.struck_at = time.monotonic()
        self.note = f"struck after {len(self.fake.messages)} texts, " + self.inject()
        self.note += f", {len(self.in_flight)} rows in flight"
        while not self.stopping.is_set() and self.in_flight:
            with contextlib.suppress(Exception):  # the database may be what just failed
                open_rows = select(_MESSAGE.c.id).where(
                    _MESSAGE.c.id.in_(self.in_flight),
                    _MESSAGE.c.status.in_(("pending", "sending")),
                )
                if not self._ids(open_rows.limit(1)):
                    break
            time.sleep(0.1)
        if self.in_flight and not self.stopping.is_set():
            self.settle_s = time.monotonic() - self.struck_at

    def _ids(self, query: Select) -> list[int]:
        with self.engine.connect() as conn:
            return list(conn.execute(query).scalars())

    def stop(self) -> None:
        self.stopping.set()
        self.join(30)
        self.engine.dispose()


def quiet_workers(harness: Any, log_path: Path) -> type:
    """harness.Workers with the workers' output (tracebacks while Redis or the database is
    away, by design) in a log file instead of the figures' stdout."""

    class QuietWorkers(harness.Workers):
        def start(self, n: int = 1) -> None:
            with log_path.open("ab") as log, _redirected(log):
                super().start(n)

        def supervise(self) -> None:
            with log_path.open("ab") as log, _redirected(log):
                super().supervise()

    return QuietWorkers


@contextlib.contextmanager
def _redirected(log: Any) -> Iterator[None]:
    """Point fds 1 and 2 at `log` while child processes are spawned (they inherit them)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    os.dup2(log.fileno(), 1)
    os.dup2(log.fileno(), 2)
    try:
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])


def wait_for_workers(conn: redis.Redis, n: int, timeout: float = 60) -> None:
    from rq import Worker

    deadline = time.monotonic() + timeout
    while Worker.count(connection=conn) < n:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{n} workers did not register within {timeout}s")
        time.sleep(0.1)


def run_case(
    case: str, recipients: int, db_url: str, private_redis: PrivateRedis, log_path: Path
) -> CaseResult:
    from flask import Flask
    from sqlalchemy.exc import OperationalError

    from jobs import campaigns as campaign_jobs
    from shopify_app import create_app
    from shopify_app.extensions import db, get_redis
    from shopify_app.models import Campaign, utcnow
    from shopify_app.providers import set_provider
    from tests.conftest import make_test_config
    from tests.fakes.twilio_server import FakeTwilio
    from tests.faults import harness

    app: Flask = create_app(
        make_test_config(DATABASE_URL=db_url, REDIS_URL=private_redis.url, LOG_LEVEL="WARNING")
    )
    result = CaseResult(case, recipients)
    token = "test-twilio-token"  # noqa: S105 - the stand-in's, as the harness's workers use
    with app.app_context(), FakeTwilio(auth_token=token, seed=17) as fake:
        for table in reversed(db.metadata.sorted_tables):
            db.session.execute(table.delete())
        db.session.commit()
        get_redis().flushdb()
        shop_id, phones = harness.seed(recipients)
        campaign = db.session.scalars(select(Campaign).where(Campaign.shop_id == shop_id)).one()
        campaign_id = campaign.id
        # harness.seed writes every recipient row at once: the audience is complete.
        now = utcnow()
        campaign.started_at = campaign.materialized_at = campaign.audience_complete_at = now
        db.session.commit()
        if case == "twilio_errors":
            fake.configure(error_rate=0.2, error_mix={429: 0.5, 500: 0.5})
        else:
            fake.configure(latency_ms=20)
        workers = quiet_workers(harness, log_path)(harness.worker_env(app, fake))
        workers.start(2)
        wait_for_workers(get_redis(), 2)

        def inject() -> str:
            if case == "worker_kill":
                proc = workers.procs[0]
                proc.kill()
                proc.wait(10)
                return f"worker {proc.pid} killed"
            if case == "redis_restart":
                private_redis.restart()
                return "redis restarted"
            return f"{terminate_app_connections(db_url)} connections terminated"

        striker = Striker(case, int(recipients * FAULT_AT), fake, inject)
        if case not in ("baseline", "twilio_errors"):
            striker.start()

        def watch(elapsed: float) -> None:
            # The periodic campaign watch, on the driver's tick; Redis or the database may be
            # the very thing that is failing right now.
            with contextlib.suppress(redis.RedisError, OperationalError):
                campaign_jobs.watch()
            db.session.remove()

        try:
            result.seconds = harness.drive(app, fake, workers, shop_id, timeout=900, during=watch)
            # The periodic watch finishes the campaign once no row is open.
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                watch(0)
                status = db.session.scalar(
                    select(Campaign.status).where(Campaign.id == campaign_id)
                )
                db.session.remove()
                if status == "sent":
                    break
                time.sleep(0.5)
        finally:
            if striker.is_alive() or striker.struck_at is not None:
                striker.stop()
            workers.stop()
            set_provider(app, None)
        result.settle_s = striker.settle_s
        if striker.note:
            result.notes.append(striker.note)
        elif case not in ("baseline", "twilio_errors"):
            result.notes.append("the fault never struck (the campaign finished first)")
        result.campaign_status = str(
            db.session.scalar(select(Campaign.status).where(Campaign.id == campaign_id))
        )
        counts = fake.count_by_to()
        result.duplicates = sum(max(0, counts.get(p, 0) - 1) for p in phones)
        result.lost = sum(1 for p in phones if counts.get(p, 0) == 0)
        result.row_outcomes = harness.outcomes(shop_id)
        sids = harness.recorded_sids(shop_id)
        result.sids_match = all(
            counts.get(p, 0) >= 1 and fake.received_to(p)[0].sid == sids.get(p) for p in phones
        )
        if case == "twilio_errors":
            result.notes.append(f"stand-in injected {fake.stats().get('injected', 0)} errors")
        if workers.restarts:
            result.notes.append(f"{workers.restarts} worker restarts")
        db.session.remove()
        db.engine.dispose()
    return result


@contextlib.contextmanager
def harness_settings(db_url: str, redis_url: str) -> Iterator[None]:
    """tests/faults/harness.py reads its database and Redis from the test settings: point them
    at ours (never the embedded Redis, never the shared 6379)."""
    saved = {k: os.environ.get(k) for k in ("TEST_DATABASE_URL", "TEST_REDIS_URL")}
    os.environ["TEST_DATABASE_URL"] = db_url
    os.environ["TEST_REDIS_URL"] = redis_url
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def reset_schema(db_url: str, redis_url: str) -> None:
    from shopify_app import create_app
    from shopify_app.extensions import db
    from tests.conftest import make_test_config

    app = create_app(make_test_config(DATABASE_URL=db_url, REDIS_URL=redis_url))
    with app.app_context():
        fresh_schema()
        db.engine.dispose()


def report(result: CaseResult, baseline: float | None, emit_figure: Callable[..., None]) -> None:
    print(
        f"{result.case}: {result.recipients} recipients in {result.seconds:.1f}s, rows "
        f"{result.row_outcomes}, campaign {result.campaign_status}, duplicates "
        f"{result.duplicates}, lost {result.lost}, sids match {result.sids_match}"
        + (f"; {'; '.join(result.notes)}" if result.notes else ""),
        flush=True,
    )
    if result.case == "baseline":
        emit_figure("faults.baseline.seconds", result.seconds, "s")
        return
    emit_figure(f"faults.{result.case}.recipients", result.recipients, "recipients")
    emit_figure(f"faults.{result.case}.duplicates", result.duplicates, "recipients")
    emit_figure(f"faults.{result.case}.lost", result.lost, "recipients")
    recovery = max(0.0, result.seconds - baseline) if baseline is not None else result.seconds
    emit_figure(f"faults.{result.case}.recovery_s", recovery, "s")
    if result.settle_s is not None:
        emit_figure(f"faults.{result.case}.settle_s", result.settle_s, "s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.faults")
    parser.add_argument("--quick", action="store_true", help="a tenth of the recipients")
    parser.add_argument("--only", choices=CASES[1:], action="append", help="run only this case")
    parser.add_argument("--recipients", type=int, help="override the campaign size")
    args = parser.parse_args(argv)
    recipients = args.recipients or (1000 if args.quick else 10_000)
    db_url = bench_db_url()
    ensure_database(db_url)
    private_redis = PrivateRedis()
    private_redis.start()
    log_path = private_redis.dir.parent / f"tidings-faults-workers-{os.getpid()}.log"
    print(f"worker output: {log_path}", flush=True)
    results: list[CaseResult] = []
    try:
        with harness_settings(db_url, private_redis.url):
            reset_schema(db_url, private_redis.url)
            baseline: float | None = None
            for case in ("baseline", *(args.only or CASES[1:])):
                result = run_case(case, recipients, db_url, private_redis, log_path)
                if case == "baseline":
                    baseline = result.seconds
                report(result, baseline, emit)
                results.append(result)
    finally:
        private_redis.close()
    failed = [r.case for r in results if not r.ok]
    if failed:
        print(f"not exactly once, or the campaign not sent: {', '.join(failed)}", file=sys.stderr)
        return 1
    print(f"every case: {recipients} recipients texted exactly once, campaign sent")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
