"""Campaign stats over 1 000 000 messages: the whole report (delivery, clicks, orders by
reason, spend, opt-outs, holdout) must take well under a second on PostgreSQL.

Seeds with set-based INSERT … SELECT over generate_series (a million rows in seconds), then
times `campaign_stats` (median of several warm runs) and prints
`BENCH stats.campaign_1m_ms <v> ms`. `--quick` seeds a tenth.
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
    median,
    vacuum_analyze,
)
from bench.server import app_env

SHOP = "tidings-bench.myshopify.com"
RUNS = 7


def seed(messages: int) -> tuple[int, int]:
    """One shop, `messages` subscribers each texted once by one A/B campaign with a 5 %
    holdout (after two earlier campaigns to half the list each); ~8 % clicked (some twice,
    some bots), ~3 % ordered, ~0.5 % opted out."""
    from shopify_app.extensions import db
    from shopify_app.models import Campaign, Shop, Variant, utcnow

    now = utcnow()
    shop = Shop(
        domain=SHOP, name="Bench", timezone="America/New_York", currency="USD", installed_at=now
    )
    db.session.add(shop)
    db.session.flush()
    sent = now - timedelta(days=3)
    campaign = Campaign(
        shop_id=shop.id,
        name="Bench campaign",
        status="sent",
        discount_mode="unique",
        holdout_percent=5,
        send_at=sent,
    )
    db.session.add(campaign)
    db.session.flush()
    variants = []
    for label in ("A", "B"):
        variant = Variant(shop_id=shop.id, campaign_id=campaign.id, label=label, body=label)
        db.session.add(variant)
        variants.append(variant)
    db.session.flush()
    earlier = []
    for weeks in (3, 2):
        older = Campaign(
            shop_id=shop.id,
            name=f"{weeks} weeks ago",
            status="sent",
            send_at=sent - timedelta(weeks=weeks),
        )
        db.session.add(older)
        earlier.append(older)
    db.session.flush()
    p = {
        "shop": shop.id,
        "cid": campaign.id,
        "va": variants[0].id,
        "vb": variants[1].id,
        "n": messages,
        "sent": sent,
    }
    run = db.session.execute
    run(
        text("""
        INSERT INTO subscriber (shop_id, phone, status, source, subscribed_at, phone_invalid,
            orders_count, total_spent, messages_received, created_at, updated_at)
        SELECT :shop, '+1' || CAST(2000000000 + i AS TEXT), 'subscribed', 'widget',
               :sent - interval '30 days', false, 0, 0, 0, :sent, :sent
        FROM generate_series(1, :n) AS i"""),
        p,
    )
    # The shop's history: two earlier campaigns to half the list each, so the measured
    # campaign is a third of the table, as it would be in a store that texts regularly.
    for older in earlier:
        run(
            text("""
            INSERT INTO message (shop_id, subscriber_id, kind, campaign_id, status, marketing,
                due_at, segments, price, attempts, sent_at, delivered_at, body, encoding,
                provider_sid, provider_status, created_at, updated_at)
            SELECT s.shop_id, s.id, 'campaign', :old, 'delivered', true, :at, 1, 0.0079, 1,
                   :at, :at, 'Bench: last month''s sale, 20% off https://tdg.example/r/o'
                   || CAST(s.id AS TEXT) || ' Reply STOP to opt out', 'GSM-7',
                   'SMo' || md5(CAST(:old AS TEXT) || '-' || CAST(s.id AS TEXT)), 'delivered',
                   :at, :at
            FROM subscriber s WHERE s.shop_id = :shop AND (s.id + :old) % 2 = 0"""),
            {**p, "old": older.id, "at": older.send_at},
        )
    # status by a hash of the row: 5 % held out, 2 % sent without receipt, 2 % undelivered,
    # 1 % failed, the rest delivered; cost 1 or 2 segments at 0.0079.
    run(
        text("""
        INSERT INTO message (shop_id, subscriber_id, kind, campaign_id, variant_id, status,
            skip_reason, marketing, due_at, segments, price, error_code, attempts, sent_at,
            delivered_at, body, encoding, provider_sid, provider_status, created_at,
            updated_at)
        SELECT s.shop_id, s.id, 'campaign', :cid,
               CASE WHEN h < 5 THEN NULL WHEN s.id % 2 = 0 THEN :va ELSE :vb END,
               CASE WHEN h < 5 THEN 'skipped' WHEN h < 7 THEN 'sent'
                    WHEN h < 9 THEN 'undelivered' WHEN h < 10 THEN 'failed'
                    ELSE 'delivered' END,
               CASE WHEN h < 5 THEN 'holdout' END, true, :sent,
               CASE WHEN h < 5 THEN NULL ELSE 1 + (s.id % 3 = 0)::int END,
               CASE WHEN h < 5 THEN NULL ELSE 0.0079 * (1 + (s.id % 3 = 0)::int) END,
               CASE WHEN h BETWEEN 7 AND 8 THEN 30003 WHEN h = 9 THEN 30007 END,
               CASE WHEN h < 5 THEN 0 ELSE 1 END,
               CASE WHEN h < 5 THEN NULL ELSE :sent + make_interval(secs => s.id % 3600) END,
               CASE WHEN h >= 10 THEN :sent + make_interval(secs => s.id % 3600 + 5) END,
               CASE WHEN h >= 5 THEN 'Bench: Black Friday starts now for subscribers: 25% off '
                    || 'with BF-' || CAST(s.id AS TEXT) || ' https://tdg.example/r/b'
                    || CAST(s.id AS TEXT) || ' Reply STOP to opt out' END,
               CASE WHEN h >= 5 THEN 'GSM-7' END,
               CASE WHEN h >= 5 THEN 'SMb' || md5(CAST(s.id AS TEXT)) END,
               CASE WHEN h >= 10 THEN 'delivered' WHEN h >= 5 THEN 'sent' END,
               :sent, :sent
        FROM (SELECT id, shop_id, (id * 7919) % 100 AS h FROM subscriber
              WHERE shop_id = :shop) AS s"""),
        p,
    )
    # A link for every sent message, as the sender makes them.
    run(
        text("""
        INSERT INTO link (shop_id, token, message_id, subscriber_id, campaign_id, url,
            created_at, updated_at)
        SELECT m.shop_id, 'b' || CAST(m.id AS TEXT), m.id, m.subscriber_id, m.campaign_id,
               'https://bench.example/sale', m.sent_at, m.sent_at
        FROM message m WHERE m.campaign_id = :cid AND m.sent_at IS NOT NULL"""),
        p,
    )
    # A click on ~9 % of the delivered messages' links; a second human click on a third of
    # those, a bot preview on a tenth.
    run(
        text("""
        INSERT INTO click (shop_id, link_id, message_id, subscriber_id, clicked_at, is_bot,
            created_at, updated_at)
        SELECT l.shop_id, l.id, l.message_id, l.subscriber_id,
               l.created_at + make_interval(mins => 1 + k * 90), k = 2, l.created_at,
               l.created_at
        FROM link l JOIN message m ON m.id = l.message_id CROSS JOIN generate_series(0, 2) AS k
        WHERE l.campaign_id = :cid AND m.status = 'delivered' AND (m.id * 104729) % 100 < 9
          AND (k = 0 OR (k = 1 AND l.id % 3 = 0) OR (k = 2 AND l.id % 10 = 0))"""),
        p,
    )
    # Orders: a third of clickers bought (click), 1 % used their code (discount), and 0.5 %
    # of everyone (held-out recipients included) bought without a touch.
    run(
        text("""
        INSERT INTO shop_order (shop_id, shopify_order_id, name, subscriber_id, currency, total,
            refunded, test, ordered_at, discount_codes, message_id, campaign_id,
            attribution_reason, attributed_at, created_at, updated_at)
        SELECT m.shop_id, 5000000000 + m.id, '#B' || CAST(m.id AS TEXT), m.subscriber_id,
               'USD', 20 + (m.id % 180), CASE WHEN m.id % 17 = 0 THEN 10 ELSE 0 END,
               m.id % 101 = 0, m.due_at + make_interval(hours => CAST(2 + m.id % 90 AS int)),
               '[]',
               CASE WHEN r.reason IS NOT NULL THEN m.id END,
               CASE WHEN r.reason IS NOT NULL THEN m.campaign_id END, r.reason,
               CASE WHEN r.reason IS NOT NULL THEN m.due_at END, m.due_at, m.due_at
        FROM message m CROSS JOIN LATERAL (SELECT CASE
                 WHEN m.status = 'delivered' AND (m.id * 104729) % 100 < 9 AND m.id % 3 = 0
                     THEN 'click'
                 WHEN m.status = 'delivered' AND (m.id * 31) % 100 = 0 THEN 'discount'
                 END AS reason) AS r
        WHERE m.campaign_id = :cid
          AND (r.reason IS NOT NULL OR (m.id * 613) % 1000 < 5)"""),
        p,
    )
    run(
        text("""
        INSERT INTO consent_event (shop_id, subscriber_id, kind, source, occurred_at,
            created_at, updated_at)
        SELECT m.shop_id, m.subscriber_id, 'opted_out', 'keyword',
               m.sent_at + make_interval(hours => CAST(m.id % 72 AS int)), m.sent_at, m.sent_at
        FROM message m WHERE m.campaign_id = :cid AND m.sent_at IS NOT NULL
          AND (m.id * 4391) % 1000 < 5"""),
        p,
    )
    db.session.commit()
    return shop.id, campaign.id


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.stats_campaign")
    parser.add_argument("--quick", action="store_true", help="100 000 messages")
    args = parser.parse_args(argv)
    messages = 100_000 if args.quick else 1_000_000
    db_url, redis_url = bench_db_url(), bench_redis_url()
    ensure_database(db_url)

    from shopify_app import create_app
    from shopify_app.extensions import db
    from shopify_app.services.stats import campaign_stats

    app = create_app(app_env(db_url, redis_url))
    with app.app_context():
        fresh_schema()
        started = time.monotonic()
        shop_id, campaign_id = seed(messages)
        seeded = time.monotonic() - started
        vacuum_analyze()
        report = campaign_stats(shop_id, campaign_id)  # warm the caches once
        timings = []
        for _ in range(RUNS):
            db.session.expire_all()
            t0 = time.perf_counter()
            report = campaign_stats(shop_id, campaign_id)
            timings.append((time.perf_counter() - t0) * 1000)
            db.session.rollback()
        print(
            f"seeded {messages} messages in {seeded:.1f}s; recipients {report['recipients']}, "
            f"delivered {report['delivered']}, clicks {report['clicks']}, "
            f"orders {report['orders']}, revenue {report['revenue']}, "
            f"opt-outs {report['opt_outs']}, held out {report['held_out']}; "
            f"runs (ms): {', '.join(f'{t:.0f}' for t in timings)}",
            flush=True,
        )
        db.engine.dispose()
    name = "stats.campaign_1m_ms" if not args.quick else "stats.campaign_100k_ms"
    emit(name, median(timings), "ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
