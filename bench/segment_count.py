"""Segment count over 1 000 000 subscribers and 5 000 000 orders: a 5-rule segment (with the
usual "not messaged in the last day" exclusion) must count in well under a second on
PostgreSQL.

Seeds with the demo generator (`services/demo_data.seed_demo`: set-based INSERT … SELECT, a
finished campaign with clicks included), then times `segments.count` (median of several warm
runs) and prints `BENCH segments.count_1m_ms <v> ms`; the seeding time is printed too.
`--quick` seeds a tenth. Database: BENCH_DATABASE_URL, else `tidings_bench_seg`; Redis:
BENCH_REDIS_URL, else db 14.
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

from sqlalchemy import text

from bench.common import emit, ensure_database, fresh_schema, median, vacuum_analyze
from bench.server import app_env

SHOP = "tidings-bench-segments.myshopify.com"
DEFAULT_DB = "postgresql://postgres@127.0.0.1:5432/tidings_bench_seg"
DEFAULT_REDIS = "redis://127.0.0.1:6379/14"
RUNS = 7

# Five rules: two on the subscriber row, two on the order counters, and an OR between the
# last order and a recent click (an EXISTS over the clicks).
SEGMENT: dict[str, Any] = {
    "op": "and",
    "rules": [
        {"field": "source", "operator": "in", "value": ["widget", "checkout"]},
        {"field": "orders_count", "operator": ">=", "value": 2},
        {"field": "total_spent", "operator": ">", "value": "150"},
        {
            "op": "or",
            "rules": [
                {"field": "last_order", "operator": "within_days", "value": 30},
                {"field": "clicked", "operator": "within_days", "value": 30},
            ],
        },
    ],
}
EXCLUSIONS = {"messaged_within_hours": 24}


def urls() -> tuple[str, str]:
    return (
        os.environ.get("BENCH_DATABASE_URL", DEFAULT_DB),
        os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.segment_count")
    parser.add_argument(
        "--quick", action="store_true", help="100 000 subscribers and 500 000 orders"
    )
    args = parser.parse_args(argv)
    subscribers, orders = (100_000, 500_000) if args.quick else (1_000_000, 5_000_000)
    db_url, redis_url = urls()
    ensure_database(db_url)

    from shopify_app import create_app
    from shopify_app.extensions import db
    from shopify_app.services import segments
    from shopify_app.services.demo_data import seed_demo

    app = create_app(app_env(db_url, redis_url))
    with app.app_context():
        fresh_schema()
        started = time.monotonic()
        summary = seed_demo(SHOP, subscribers=subscribers, orders=orders)
        seeded = time.monotonic() - started
        vacuum_analyze()
        shop_id = db.session.scalar(text("SELECT id FROM shop WHERE domain = :d"), {"d": SHOP})
        everyone = segments.count(shop_id, {"builtin": "all"})
        found = segments.count(shop_id, SEGMENT, EXCLUSIONS)  # warm the caches once
        timings = []
        for _ in range(RUNS):
            db.session.rollback()
            t0 = time.perf_counter()
            found = segments.count(shop_id, SEGMENT, EXCLUSIONS)
            timings.append((time.perf_counter() - t0) * 1000)
        db.session.rollback()
        print(
            f"seeded {summary} in {seeded:.1f}s; sendable {everyone}, segment {found}; "
            f"runs (ms): {', '.join(f'{t:.0f}' for t in timings)}",
            flush=True,
        )
        db.engine.dispose()
    emit("demo.seed_s" if not args.quick else "demo.seed_quick_s", seeded, "s")
    name = "segments.count_1m_ms" if not args.quick else "segments.count_100k_ms"
    emit(name, median(timings), "ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
