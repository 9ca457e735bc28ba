"""Campaign start for 500 000 recipients: the set-based INSERT … SELECT that materialises the
recipients as Message rows with their due times must take under 10 seconds on PostgreSQL.

Seeds 500 000 subscribed numbers over ten US places (zone, state) with generate_series, then
times the whole start job body (`campaign_start.advance`: audience snapshot, due times per
place, the INSERT … SELECT with a 5 % holdout in shares on two connections, the recipient
count, the commit and the hand-over to the send path), several times over an emptied message
table, and prints
`BENCH start.500k_s <v> s` (the median). `--quick` seeds a tenth. Database:
BENCH_DATABASE_URL, else `tidings_bench_seg`; Redis: BENCH_REDIS_URL, else db 14 (emptied:
the start queues send jobs that no worker takes here).
"""

from __future__ import annotations

import argparse
import time

import redis
from sqlalchemy import text

from bench.common import emit, ensure_database, fresh_schema, median, vacuum_analyze
from bench.segment_count import urls
from bench.server import app_env

SHOP = "tidings-bench-start.myshopify.com"
RUNS = 3
PLACES = [
    ("212", "America/New_York", "NY"),
    ("617", "America/New_York", "MA"),
    ("404", "America/New_York", "GA"),
    ("312", "America/Chicago", "IL"),
    ("512", "America/Chicago", "TX"),
    ("303", "America/Denver", "CO"),
    ("602", "America/Phoenix", "AZ"),
    ("415", "America/Los_Angeles", "CA"),
    ("206", "America/Los_Angeles", "WA"),
    ("808", "Pacific/Honolulu", "HI"),
]


def seed(recipients: int) -> tuple[int, int]:
    """One shop with `recipients` subscribed numbers and a campaign to all of them."""
    from shopify_app.extensions import db
    from shopify_app.models import Campaign, Shop, utcnow
    from shopify_app.services.demo_data import case_sql

    now = utcnow()
    shop = Shop(
        domain=SHOP,
        name="Bench",
        timezone="America/New_York",
        currency="USD",
        country="US",
        installed_at=now,
        settings={"brand_name": "Bench", "messages_per_second": 10_000},
    )
    db.session.add(shop)
    db.session.flush()
    db.session.execute(
        text(f"""
        INSERT INTO subscriber (shop_id, phone, first_name, country, region, timezone, status,
            source, subscribed_at, phone_invalid, orders_count, total_spent, messages_received,
            created_at, updated_at)
        SELECT :shop, '+1' || {case_sql("i", [a for a, _, _ in PLACES])}
                      || CAST(2000000 + i / 10 AS TEXT),
               'Ann', 'US', {case_sql("i", [r for _, _, r in PLACES])},
               {case_sql("i", [z for _, z, _ in PLACES])}, 'subscribed', 'widget',
               :now - make_interval(days => CAST(i % 300 AS int)), false, 0, 0, 0, :now, :now
        FROM generate_series(CAST(1 AS BIGINT), CAST(:n AS BIGINT)) AS seq(i)"""),  # noqa: S608
        {"shop": shop.id, "n": recipients, "now": now},
    )
    campaign = Campaign(
        shop_id=shop.id,
        name="Bench start",
        status="sending",
        body="Bench: the spring sale is on, 20% off everything https://bench.example/sale",
        audience={"rules": {"builtin": "all"}, "exclusions": {}},
        holdout_percent=5,
        send_at=now,
        started_at=now,
    )
    db.session.add(campaign)
    db.session.commit()
    return shop.id, campaign.id


def reset(campaign_id: int) -> None:
    """Back to "just switched to sending": no rows, nothing materialised."""
    from shopify_app.extensions import db

    db.session.execute(text("TRUNCATE message CASCADE"))
    db.session.execute(
        text(
            "UPDATE campaign SET materialized_at = NULL, audience_complete_at = NULL, "
            "recipients_count = 0, audience = :audience WHERE id = :cid"
        ),
        {"cid": campaign_id, "audience": '{"rules": {"builtin": "all"}, "exclusions": {}}'},
    )
    db.session.commit()
    vacuum_analyze("message")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.campaign_start")
    parser.add_argument("--quick", action="store_true", help="50 000 recipients")
    args = parser.parse_args(argv)
    recipients = 50_000 if args.quick else 500_000
    db_url, redis_url = urls()
    ensure_database(db_url)
    redis.Redis.from_url(redis_url).flushdb()

    from shopify_app import create_app
    from shopify_app.extensions import db
    from shopify_app.services import campaign_start

    app = create_app(app_env(db_url, redis_url))
    with app.app_context():
        fresh_schema()
        started = time.monotonic()
        _, campaign_id = seed(recipients)
        seeded = time.monotonic() - started
        vacuum_analyze()
        timings, inserted = [], []
        for _ in range(RUNS):
            reset(campaign_id)
            db.session.remove()
            t0 = time.perf_counter()
            step = campaign_start.advance(campaign_id)
            timings.append(time.perf_counter() - t0)
            inserted.append(step.inserted)
            assert step.outcome == "sending", step
        rows, held = db.session.execute(
            text(
                "SELECT count(*), count(*) FILTER (WHERE skip_reason = 'holdout') "
                "FROM message WHERE campaign_id = :cid"
            ),
            {"cid": campaign_id},
        ).one()
        db.session.rollback()
        print(
            f"seeded {recipients} subscribers in {seeded:.1f}s; rows {rows} "
            f"(held out {held}); inserted per run {inserted}; "
            f"runs (s): {', '.join(f'{t:.2f}' for t in timings)}",
            flush=True,
        )
        db.engine.dispose()
    redis.Redis.from_url(redis_url).flushdb()
    name = "start.500k_s" if not args.quick else "start.50k_s"
    emit(name, median(timings), "s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
