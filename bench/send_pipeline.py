"""The send pipeline end to end: 100 000 recipients through real RQ workers to the Twilio stand-in.

    python -m bench.send_pipeline [--quick] [--recipients N] [--workers 2]

PostgreSQL (BENCH_DATABASE_URL, else bench.common's default; never TEST_DATABASE_URL, whose
schema the tests own) gets a fresh schema with one shop, N subscribed recipients and N pending
campaign messages (set-based inserts); the Redis database (BENCH_REDIS_URL, else
bench.common's default) is flushed. The Twilio stand-in runs as its own process
(`python -m tests.fakes.twilio_server`). Worker processes (`python -m bench.send_pipeline
--worker`: the app's AppWorker on the sending queue, plus a statement counter) send until
every row has an outcome. Then the ceiling: the same number of processes, each with the same
thread count, posting the same create requests with a bare keep-alive HTTP client to the
same stand-in.

Figures: send.msgs_per_s, send.ceiling_msgs_per_s, send.ceiling_ratio,
send.db_statements_per_msg (statements the workers issued, an executemany counted per row, and
each COMMIT as one: BEGIN is implicit in the driver and not counted).
The stand-in's record must show every recipient exactly once, or the run fails.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from sqlalchemy import event, text

from bench.common import bench_db_url, bench_redis_url, emit, ensure_database, fresh_schema
from bench.server import app_env

ROOT = Path(__file__).resolve().parent.parent
SHOP = "bench-send.myshopify.com"
AUTH_TOKEN = "bench-twilio-token-0123456789abcd"  # noqa: S105 - the stand-in's
ACCOUNT_SID = "AC" + "0" * 31 + "1"
FROM_NUMBER = "+15005550006"
STATEMENTS_KEY = "bench:send:statements"
BODY = (
    "Hi {first_name}, our summer sale starts now: 20% off everything at "
    f"https://{SHOP}/collections/sale"
)


def database_url() -> str:
    return bench_db_url()


def worker_env(db_url: str, redis_url: str, fake_url: str, concurrency: int) -> dict[str, str]:
    return app_env(
        db_url,
        redis_url,
        SMS_PROVIDER="twilio",
        TWILIO_ACCOUNT_SID=ACCOUNT_SID,
        TWILIO_AUTH_TOKEN=AUTH_TOKEN,
        TWILIO_FROM_NUMBER=FROM_NUMBER,
        TWILIO_API_BASE_URL=fake_url,
        SEND_CONCURRENCY=str(concurrency),
        APP_URL="https://tidings.example.com",
    )


# --- seeding ------------------------------------------------------------------------------


def day_zone() -> str:
    """A fixed-offset zone where it is mid-day now, so quiet hours hold nothing back."""
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    now = datetime.now(UTC)
    for offset in range(-12, 15):
        name = "Etc/GMT" if offset == 0 else f"Etc/GMT{'-' if offset > 0 else '+'}{abs(offset)}"
        if 10 <= now.astimezone(ZoneInfo(name)).hour < 16:
            return name
    raise RuntimeError("no zone at mid-day")


def seed(env: dict[str, str], recipients: int) -> int:
    """Fresh schema, one shop, `recipients` subscribers and pending messages. Returns shop id."""
    from shopify_app import create_app
    from shopify_app.extensions import db, get_redis
    from shopify_app.models import Campaign, Shop, utcnow

    app = create_app(env)
    with app.app_context():
        fresh_schema()
        get_redis().flushdb()
        now = utcnow()
        shop = Shop(
            domain=SHOP,
            name="Bench Shop",
            timezone="America/New_York",
            installed_at=now,
            settings={"messages_per_second": 1_000_000},
        )
        db.session.add(shop)
        db.session.flush()
        campaign = Campaign(
            shop_id=shop.id, name="Bench", body=BODY, status="sending", started_at=now
        )
        db.session.add(campaign)
        db.session.flush()
        params = {
            "shop": shop.id,
            "n": recipients,
            "now": now,
            "zone": day_zone(),
            "campaign": campaign.id,
        }
        db.session.execute(
            text("""
            INSERT INTO subscriber (shop_id, phone, first_name, country, timezone, status,
                source, subscribed_at, phone_invalid, orders_count, total_spent,
                messages_received, created_at, updated_at)
            SELECT :shop, '+1' || CAST(2020000000 + i AS TEXT), 'Ann' || CAST(i AS TEXT), 'US',
                   :zone, 'subscribed', 'import', :now, false, 0, 0, 0, :now, :now
            FROM generate_series(1, :n) AS s(i)
        """),
            params,
        )
        db.session.execute(
            text("""
            INSERT INTO message (shop_id, subscriber_id, kind, campaign_id, status, marketing,
                due_at, attempts, created_at, updated_at)
            SELECT shop_id, id, 'campaign', :campaign, 'pending', true, :now, 0, :now, :now
            FROM subscriber WHERE shop_id = :shop ORDER BY id
        """),
            params,
        )
        db.session.commit()
        db.session.execute(text("ANALYZE"))
        db.session.commit()
        shop_id = shop.id
        db.engine.dispose()
    return shop_id


# --- the worker process -------------------------------------------------------------------


def worker_main() -> None:
    """An RQ worker on the sending queue that reports how many statements it issued."""
    from jobs.worker import make_worker
    from shopify_app import create_app
    from shopify_app.extensions import db, get_redis

    app = create_app()
    counted = [0, 0]  # issued, reported
    lock = threading.Lock()
    with app.app_context():
        conn = get_redis(app)

        @event.listens_for(db.engine, "before_cursor_execute")
        def _count(
            _conn: Any, _cursor: Any, _stmt: str, params: Any, _ctx: Any, executemany: bool
        ) -> None:
            with lock:
                counted[0] += len(params) if executemany and params else 1

        @event.listens_for(db.engine, "commit")
        def _count_commit(_conn: Any) -> None:
            with lock:
                counted[0] += 1

    def report() -> None:
        with lock:
            delta = counted[0] - counted[1]
            counted[1] = counted[0]
        if delta:
            conn.incrby(STATEMENTS_KEY, delta)

    stop = threading.Event()

    def flusher() -> None:
        while not stop.wait(0.5):
            report()

    threading.Thread(target=flusher, daemon=True).start()
    worker = make_worker(app, ("sending",))
    try:
        worker.work(burst=False, logging_level="WARNING")
    finally:
        stop.set()
        report()


def start_workers(n: int, env: dict[str, str]) -> list[subprocess.Popen]:
    return [
        subprocess.Popen(
            [sys.executable, "-m", "bench.send_pipeline", "--worker"], cwd=ROOT, env=env
        )
        for _ in range(n)
    ]


def stop_processes(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.time() + 20
    for proc in procs:
        try:
            proc.wait(max(0.1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


# --- the pipeline run ---------------------------------------------------------------------


def run_pipeline(
    env: dict[str, str], shop_id: int, recipients: int, workers: int, timeout: float
) -> tuple[float, int]:
    """Send everything; returns (seconds until every row had an outcome, statements)."""
    from rq import Worker

    from shopify_app import create_app
    from shopify_app.extensions import db, get_queue, get_redis
    from shopify_app.services.sending import schedule_sending

    app = create_app(env)
    procs = start_workers(workers, env)
    try:
        with app.app_context():
            conn = get_redis()
            deadline = time.time() + 60
            while Worker.count(connection=conn, queue=get_queue("sending")) < workers:
                if time.time() > deadline:
                    raise RuntimeError("workers did not register")
                time.sleep(0.1)
            started = time.perf_counter()
            schedule_sending(shop_id, jobs=workers)
            # "Any row still open?": the first entry of a partial index answers it. Counting
            # them, four times a second, cost the database a fifth of a core beside the
            # workers being measured.
            open_query = text(
                "SELECT EXISTS (SELECT 1 FROM message WHERE shop_id = :s AND status = 'pending')"
                " OR EXISTS (SELECT 1 FROM message WHERE shop_id = :s AND status = 'sending')"
            )
            while True:
                time.sleep(0.25)
                still_open = db.session.execute(open_query, {"s": shop_id}).scalar()
                db.session.rollback()
                if not still_open:
                    break
                if time.perf_counter() - started > timeout:
                    raise RuntimeError(f"messages still open after {timeout:.0f}s")
            elapsed = time.perf_counter() - started
            time.sleep(1.0)  # the workers' counters report every 0.5 s
            statements = int(conn.get(STATEMENTS_KEY) or 0)
            outcomes = dict(
                db.session.execute(
                    text("SELECT status, count(*) FROM message WHERE shop_id = :s GROUP BY status"),
                    {"s": shop_id},
                ).all()
            )
            db.session.rollback()
            db.engine.dispose()
    finally:
        stop_processes(procs)
    if outcomes != {"sent": recipients}:
        raise RuntimeError(f"unexpected outcomes: {outcomes}")
    return elapsed, statements


# --- the ceiling --------------------------------------------------------------------------


def ceiling_main(fake_url: str, count: int, offset: int, concurrency: int, body: str) -> None:
    """One ceiling process: `count` creates over keep-alive connections, `concurrency` threads."""
    parts = urlsplit(fake_url)
    path = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    token = base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
    headers = {
        "Authorization": f"Basic {token}",
        "Accept": "application/json",
        "Content-Type": "application/x-www-form-urlencoded",
    }
    local = threading.local()

    def post(i: int) -> None:
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        form = {
            "To": f"+1{2020000000 + offset + i + 1}",
            "Body": body.format(i=i),
            "From": FROM_NUMBER,
            "StatusCallback": "https://tidings.example.com/webhooks/twilio/status",
            "ValidityPeriod": "14400",
        }
        conn.request("POST", path, body=urlencode(form).encode(), headers=headers)
        response = conn.getresponse()
        data = response.read()
        if response.status != 201:
            raise RuntimeError(f"ceiling create failed: {response.status} {data[:200]!r}")
        json.loads(data)

    print("READY", flush=True)
    sys.stdin.readline()  # go
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(post, range(count)))


def run_ceiling(
    fake_url: str, recipients: int, processes: int, concurrency: int, body: str
) -> float:
    share = recipients // processes
    procs = []
    for p in range(processes):
        count = share if p < processes - 1 else recipients - share * (processes - 1)
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "bench.send_pipeline",
                    "--ceiling",
                    fake_url,
                    str(count),
                    str(p * share),
                    str(concurrency),
                    body,
                ],
                cwd=ROOT,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
        )
    for proc in procs:
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != "READY":
            raise RuntimeError("ceiling client did not start")
    started = time.perf_counter()
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    for proc in procs:
        if proc.wait(600) != 0:
            raise RuntimeError("ceiling client failed")
    return time.perf_counter() - started


# --- main ---------------------------------------------------------------------------------


def sample_body(env: dict[str, str]) -> str:
    """The text one recipient got, with the varying part as {i} (for the ceiling's requests)."""
    from shopify_app import create_app
    from shopify_app.extensions import db
    from shopify_app.models import Message

    app = create_app(env)
    with app.app_context():
        body = db.session.query(Message.body).filter(Message.body.is_not(None)).first()[0]
        db.engine.dispose()
    # Same length and character set as the real texts: a 10-character token and a name.
    head, _, _ = body.rpartition("/r/")
    return head.replace("{", "{{").replace("}", "}}") + "/r/x{i:09d}"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--worker"]:
        worker_main()
        return 0
    if argv[:1] == ["--ceiling"]:
        url, count, offset, concurrency, body = argv[1:6]
        ceiling_main(url, int(count), int(offset), int(concurrency), body)
        return 0
    parser = argparse.ArgumentParser(prog="python -m bench.send_pipeline")
    parser.add_argument("--quick", action="store_true", help="a tenth of the size")
    parser.add_argument("--recipients", type=int, default=None)
    parser.add_argument("--workers", type=int, default=2, help="worker processes")
    parser.add_argument("--concurrency", type=int, default=32, help="threads per worker")
    parser.add_argument("--timeout", type=float, default=900)
    args = parser.parse_args(argv)
    quick = args.quick or os.environ.get("QUICK") == "1"
    recipients = args.recipients or (10_000 if quick else 100_000)

    from tests.fakes._server import SpawnedFake, control_request

    db_url = database_url()
    redis_url = bench_redis_url()
    ensure_database(db_url)
    print(
        f"send pipeline: {recipients} recipients, {args.workers} workers x "
        f"{args.concurrency} threads",
        flush=True,
    )
    with SpawnedFake("tests.fakes.twilio_server", "--auth-token", AUTH_TOKEN) as fake:
        env = worker_env(db_url, redis_url, fake.url, args.concurrency)
        seeded = time.perf_counter()
        shop_id = seed(env, recipients)
        print(f"seeded in {time.perf_counter() - seeded:.1f}s", flush=True)
        elapsed, statements = run_pipeline(env, shop_id, recipients, args.workers, args.timeout)
        stats = control_request(fake.url, "stats")
        if (stats["messages"], stats["unique_to"], stats["duplicates"]) != (
            recipients,
            recipients,
            {},
        ):
            print(f"stand-in record is wrong: {stats}", file=sys.stderr)
            return 1
        print(
            f"stand-in: {stats['messages']} messages to {stats['unique_to']} numbers, "
            "no duplicates",
            flush=True,
        )
        body = sample_body(env)
        control_request(fake.url, "reset", {})
        ceiling = run_ceiling(fake.url, recipients, args.workers, args.concurrency, body)
    rate = recipients / elapsed
    ceiling_rate = recipients / ceiling
    emit("send.msgs_per_s", rate, "msg/s")
    emit("send.ceiling_msgs_per_s", ceiling_rate, "msg/s")
    emit("send.ceiling_ratio", rate / ceiling_rate, "ratio")
    emit("send.db_statements_per_msg", statements / recipients, "stmt/msg")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
