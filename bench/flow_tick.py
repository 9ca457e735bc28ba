"""The flow tick over 100 000 active runs: find every due step with the one indexed query,
check the exits, queue the texts and move the runs on — "ticked in seconds" on PostgreSQL.

Seeds, with set-based INSERT … SELECT over generate_series, 20 installed shops with their
four flows on and one subscriber per run, spread over the four kinds (abandoned-checkout runs
with their checkout rows and recovery URLs, 1 % of those checkouts completed meanwhile so the
"purchased" exit is taken; 1 % of subscribers opted out), every run due at its first message
step, and twice as many finished runs (the history a store accumulates, which the partial
index ix_flow_run_due leaves out). Then times one `services.flows.tick` that walks them all —
due-run query, facts, exits, the Message rows, the run updates, commits and the send-job
scheduling in Redis — and prints `BENCH flows.tick_100k_s <v> s` (and the rate). `--quick`
seeds a tenth and prints `flows.tick_10k_s`.

It checks what it measured: every run was taken, each got its one text or its exit, and the
due-run query's plan uses the partial index.
"""

from __future__ import annotations

import argparse
import time
from datetime import timedelta

from sqlalchemy import text

from bench.common import (
    bench_db_url,
    bench_redis_url,
    emit,
    ensure_database,
    fresh_schema,
    vacuum_analyze,
)
from bench.server import app_env

SHOPS = 20
KINDS = ("abandoned_checkout", "welcome", "post_purchase", "winback")


def seed(runs: int) -> dict[str, int]:
    """Shops, flows (on), subscribers, checkouts and runs. Returns what was seeded."""
    from shopify_app.extensions import db
    from shopify_app.models import Shop, utcnow
    from shopify_app.services.flow_defaults import ensure_default_flows

    now = utcnow()
    shop_ids = []
    for n in range(SHOPS):
        shop = Shop(
            domain=f"tidings-bench-{n}.myshopify.com",
            name=f"Bench {n}",
            timezone="UTC",
            currency="USD",
            installed_at=now - timedelta(days=400),
        )
        db.session.add(shop)
        db.session.flush()
        ensure_default_flows(shop.id)
        shop_ids.append(shop.id)
    db.session.flush()
    db.session.execute(text("UPDATE flow SET enabled = true"))
    # Where each kind's runs stand: at their first message step (after its leading waits).
    first_message = {
        kind: next(i for i, s in enumerate(steps) if s["type"] == "message")
        for kind, steps in db.session.execute(
            text("SELECT DISTINCT ON (kind) kind, steps FROM flow ORDER BY kind")
        ).all()
    }
    p = {"n": runs, "shops": SHOPS, "first": min(shop_ids), "now": now}
    run = db.session.execute
    # Subscribers, round-robin over the shops (shop ids are consecutive); 1 % opted out.
    run(
        text("""
        INSERT INTO subscriber (shop_id, phone, status, source, subscribed_at, unsubscribed_at,
            phone_invalid, orders_count, total_spent, messages_received, timezone,
            last_order_at, created_at, updated_at)
        SELECT :first + i % :shops, '+1' || CAST(2000000000 + i AS TEXT),
               CASE WHEN i % 100 = 7 THEN 'unsubscribed' ELSE 'subscribed' END, 'widget',
               :now - interval '200 days',
               CASE WHEN i % 100 = 7 THEN :now - interval '1 day' END,
               false, 1, 40, 3, 'America/New_York', :now - interval '120 days',
               :now - interval '200 days', :now - interval '200 days'
        FROM generate_series(1, :n) AS i"""),
        p,
    )
    # Each subscriber's kind: by id, so the four kinds share the runs evenly.
    kind_of = "(ARRAY['abandoned_checkout','welcome','post_purchase','winback'])[1 + s.id % 4]"
    run(
        text(f"""
        INSERT INTO checkout (shop_id, token, subscriber_id, phone, recovery_url, total,
            currency, completed_at, shopify_updated_at, created_at, updated_at)
        SELECT s.shop_id, 'bench' || CAST(s.id AS TEXT), s.id, s.phone,
               'https://tidings-bench-' || CAST(s.shop_id - :first AS TEXT)
                   || '.myshopify.com/1/checkouts/ac/bench' || CAST(s.id AS TEXT)
                   || '/recover?key=k' || CAST(s.id AS TEXT),
               59.90, 'USD',
               CASE WHEN s.id % 100 = 12 THEN :now - interval '10 minutes' END,
               :now - interval '40 minutes', :now - interval '45 minutes', :now
        FROM subscriber s WHERE {kind_of} = 'abandoned_checkout'"""),  # noqa: S608 - constants
        p,
    )
    # The active runs: every one due within the last ten minutes, at its first message step.
    run(
        text(f"""
        INSERT INTO flow_run (shop_id, flow_id, subscriber_id, trigger_key, status, step_index,
            next_step_at, held_out, context, created_at, updated_at)
        SELECT s.shop_id, f.id, s.id,
               CASE f.kind WHEN 'abandoned_checkout' THEN 'checkout:bench' || CAST(s.id AS TEXT)
                           WHEN 'welcome' THEN 'welcome:' || CAST(s.id AS TEXT)
                           WHEN 'post_purchase' THEN 'order:' || CAST(s.id AS TEXT)
                           ELSE 'winback:' || CAST(s.id AS TEXT) || ':' || '1' END,
               'active',
               CASE f.kind WHEN 'abandoned_checkout' THEN :ac WHEN 'welcome' THEN :wel
                           WHEN 'post_purchase' THEN :pp ELSE :wb END,
               :now - make_interval(secs => s.id % 600), false,
               CASE WHEN f.kind = 'abandoned_checkout' THEN jsonb_build_object(
                   'checkout_token', 'bench' || CAST(s.id AS TEXT))
                    ELSE CAST('{{}}' AS jsonb) END,
               :now - interval '1 hour', :now - interval '1 hour'
        FROM subscriber s JOIN flow f ON f.shop_id = s.shop_id AND f.kind = {kind_of}"""),  # noqa: S608
        {
            **p,
            "ac": first_message["abandoned_checkout"],
            "wel": first_message["welcome"],
            "pp": first_message["post_purchase"],
            "wb": first_message["winback"],
        },
    )
    # History: two finished runs per subscriber in the same flows (earlier checkouts, orders).
    run(
        text(f"""
        INSERT INTO flow_run (shop_id, flow_id, subscriber_id, trigger_key, status, step_index,
            next_step_at, held_out, context, exit_reason, ended_at, created_at, updated_at)
        SELECT s.shop_id, f.id, s.id, 'old:' || CAST(s.id AS TEXT) || ':' || CAST(k AS TEXT),
               CASE WHEN k = 1 THEN 'completed' ELSE 'exited' END, 4, NULL, false, '{{}}',
               CASE WHEN k = 2 THEN 'purchased' END, :now - make_interval(days => 30 * k),
               :now - make_interval(days => 31 * k), :now - make_interval(days => 30 * k)
        FROM subscriber s JOIN flow f ON f.shop_id = s.shop_id AND f.kind = {kind_of}
        CROSS JOIN generate_series(1, 2) AS k"""),  # noqa: S608
        p,
    )
    db.session.commit()
    counts = {
        "runs_active": run(text("SELECT count(*) FROM flow_run WHERE status = 'active'")).scalar(),
        "runs_total": run(text("SELECT count(*) FROM flow_run")).scalar(),
        "checkouts_completed": run(
            text("SELECT count(*) FROM checkout WHERE completed_at IS NOT NULL")
        ).scalar(),
        "opted_out": run(
            text("SELECT count(*) FROM subscriber WHERE status = 'unsubscribed'")
        ).scalar(),
    }
    db.session.commit()
    return counts


def due_query_uses_index() -> bool:
    """The tick's query (as `services.flows.due_runs` builds it) reads ix_flow_run_due."""
    from sqlalchemy import select
    from sqlalchemy.dialects import postgresql

    from shopify_app.extensions import db
    from shopify_app.models import FlowRun, utcnow
    from shopify_app.services import flows

    query = (
        select(FlowRun.id)
        .where(FlowRun.status == "active", FlowRun.next_step_at <= utcnow())
        .order_by(FlowRun.next_step_at)
        .limit(flows.TICK_BATCH)
    )
    compiled = query.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True})
    plan = "\n".join(r[0] for r in db.session.execute(text(f"EXPLAIN {compiled}")))  # noqa: S608
    db.session.rollback()
    return "ix_flow_run_due" in plan


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.flow_tick")
    parser.add_argument("--quick", action="store_true", help="10 000 runs")
    args = parser.parse_args(argv)
    runs = 10_000 if args.quick else 100_000
    db_url, redis_url = bench_db_url(), bench_redis_url()
    ensure_database(db_url)

    from shopify_app import create_app
    from shopify_app.extensions import db, get_redis
    from shopify_app.services import flows

    app = create_app(app_env(db_url, redis_url))
    with app.app_context():
        get_redis().flushdb()  # the bench's own Redis db: send jobs of earlier runs
        fresh_schema()
        started = time.monotonic()
        seeded = seed(runs)
        seed_s = time.monotonic() - started
        vacuum_analyze()
        indexed = due_query_uses_index()

        t0 = time.perf_counter()
        report = flows.tick(time_budget=3600)
        elapsed = time.perf_counter() - t0

        texts = db.session.execute(
            text("SELECT count(*), count(DISTINCT flow_run_id) FROM message WHERE kind = 'flow'")
        ).one()
        left = db.session.execute(
            text("SELECT count(*) FROM flow_run WHERE status = 'active' AND next_step_at <= now()")
        ).scalar()
        send_jobs = len(get_redis().keys("rq:job:*"))
        db.session.rollback()
        print(
            f"seeded {seeded['runs_active']} active runs ({seeded['runs_total']} in all, "
            f"{seeded['checkouts_completed']} checkouts completed, {seeded['opted_out']} opted "
            f"out) in {seed_s:.1f}s; due-run query uses ix_flow_run_due: {indexed}; "
            f"tick: {report.runs} runs in {report.batches} batches, {report.messages} texts "
            f"queued ({texts[0]} rows, {texts[1]} runs), {report.completed} completed, "
            f"exits {report.exits}, {left} still due, {send_jobs} send jobs queued; "
            f"{elapsed:.2f}s",
            flush=True,
        )
        problems = []
        if report.runs != seeded["runs_active"] or left:
            problems.append("not every due run was taken")
        if texts[0] != texts[1] or texts[0] != report.messages:
            problems.append("texts are not one per run")
        if report.messages + report.exited != report.runs:
            problems.append("a run got neither its text nor its exit")
        if not indexed:
            problems.append("the due-run query does not use ix_flow_run_due")
        db.engine.dispose()
    name = "flows.tick_10k_s" if args.quick else "flows.tick_100k_s"
    emit(name, elapsed, "s")
    emit("flows.tick_runs_per_s", report.runs / elapsed if elapsed else 0.0, "runs/s")
    for problem in problems:
        print(f"CHECK FAILED: {problem}", flush=True)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
