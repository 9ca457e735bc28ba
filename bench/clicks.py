"""Clicks: `GET /r/<token>` against gunicorn (2 workers), beside a bare redirect endpoint.

Each request is the real path a shopper's tap takes: look the token up, store the click, mark
the subscriber engaged, commit, answer 302 to the shop with UTM parameters. The ceiling is
`/_bench/redirect` on the same server: Flask answering a fixed 302 and nothing else.

Figures: redirects per second at saturation (closed loop) and its ratio to the ceiling; p99
latency at fixed arrival rates (open loop, so a server that falls behind shows it). The
headline p99 is at 200 taps/s: a 100 000-recipient campaign whose clicks bunch into the first
minutes after the send peaks well below that.
"""

from __future__ import annotations

import argparse
import random

from sqlalchemy import func, select

from bench.common import (
    bench_db_url,
    bench_redis_url,
    emit,
    ensure_database,
    fresh_schema,
    percentile,
)
from bench.loadgen import build_request, closed_loop, open_loop
from bench.server import app_env, gunicorn, profile_request_path

SHOP = "tidings-bench.myshopify.com"
# A phone's browser: counted as a person's tap (bots and HEAD requests are not stored).
PHONE_UA = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1"
)
HEADLINE_RATE = 200


def prepare(db_url: str, redis_url: str, subscribers: int) -> list[str]:
    """A fresh schema with one shop, its subscribers and one tracked link per subscriber (as a
    sent campaign leaves them). Returns the link tokens."""
    from shopify_app import create_app
    from shopify_app.extensions import db, get_redis
    from shopify_app.models import Shop, Subscriber
    from shopify_app.services import links
    from shopify_app.services.demo_data import seed_demo

    app = create_app(app_env(db_url, redis_url))
    with app.app_context():
        fresh_schema()
        get_redis().flushdb()
        seed_demo(SHOP, subscribers=subscribers, orders=0)
        shop = db.session.scalars(select(Shop).where(Shop.domain == SHOP)).one()
        sub_ids = list(
            db.session.scalars(select(Subscriber.id).where(Subscriber.shop_id == shop.id))
        )
        domains = links.shop_domains(shop)
        rows = [
            links.link_row(
                shop,
                f"https://{SHOP}/collections/sale?ref=sms",
                subscriber_id=sid,
                utm_campaign="black-friday",
                domains=domains,
            )
            for sid in sub_ids
        ]
        for start in range(0, len(rows), 5000):
            links.insert_links(rows[start : start + 5000])
        db.session.commit()
        tokens = [r["token"] for r in rows]
        db.engine.dispose()
    return tokens


def click_factory(host: str, tokens: list[str], seed: int):  # noqa: ANN201
    rng = random.Random(seed)
    order = tokens[:]
    rng.shuffle(order)
    headers = {"User-Agent": PHONE_UA, "Accept": "text/html"}
    requests = [build_request("GET", f"/r/{t}", host, headers) for t in order]
    return lambda seq: requests[seq % len(requests)]


def bare_factory(host: str):  # noqa: ANN201
    request = build_request("GET", "/_bench/redirect", host, {"User-Agent": PHONE_UA})
    return lambda _seq: request


def stored_clicks(db_url: str, redis_url: str) -> int:
    from shopify_app import create_app
    from shopify_app.extensions import db
    from shopify_app.models import Click

    app = create_app(app_env(db_url, redis_url))
    with app.app_context():
        count = db.session.scalar(select(func.count()).select_from(Click).where(~Click.is_bot))
        db.engine.dispose()
    return int(count or 0)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    scale = 0.1 if args.quick else 1.0
    db_url, redis_url = bench_db_url(), bench_redis_url()
    ensure_database(db_url)
    tokens = prepare(db_url, redis_url, max(1000, int(20_000 * scale)))
    before = stored_clicks(db_url, redis_url)
    duration = max(2.0, 10 * scale)
    with gunicorn(app_env(db_url, redis_url), workers=2) as port:
        host = f"127.0.0.1:{port}"
        warm = closed_loop(
            "127.0.0.1", port, click_factory(host, tokens, 0), connections=8, seconds=1.0
        )
        redirected = warm.statuses.get(302, 0)
        bare = closed_loop("127.0.0.1", port, bare_factory(host), connections=32, seconds=duration)
        taps = closed_loop(
            "127.0.0.1", port, click_factory(host, tokens, 1), connections=32, seconds=duration
        )
        print(
            f"saturation: clicks {taps.ok_per_s:.0f}/s (statuses {taps.statuses}), "
            f"bare redirect {bare.ok_per_s:.0f}/s (statuses {bare.statuses})"
        )
        if set(taps.statuses) != {302}:
            print(f"clicks answered other than 302: {taps.statuses}")
            return 1
        redirected += taps.statuses.get(302, 0)
        emit("clicks.per_s", taps.ok_per_s, "redirects/s")
        emit("clicks.ceiling_per_s", bare.ok_per_s, "redirects/s")
        emit("clicks.ceiling_ratio", taps.ok_per_s / bare.ok_per_s if bare.ok_per_s else 0, "ratio")
        headline = None
        for i, rate in enumerate((100, HEADLINE_RATE, 400)):
            step = open_loop(
                "127.0.0.1", port, click_factory(host, tokens, 10 + i), rate=rate, seconds=duration
            )
            redirected += step.statuses.get(302, 0)
            p50 = percentile(step.latencies_ms, 50)
            p99 = percentile(step.latencies_ms, 99)
            print(
                f"open loop {rate}/s: {step.ok_per_s:.0f}/s redirected, p50 {p50:.1f} ms, "
                f"p99 {p99:.1f} ms, errors {step.errors}, statuses {step.statuses}"
            )
            emit(f"clicks.at_{rate}.p99_ms", p99, "ms")
            if rate == HEADLINE_RATE:
                headline = p99
        ceiling = open_loop(
            "127.0.0.1", port, bare_factory(host), rate=HEADLINE_RATE, seconds=duration
        )
        emit("clicks.ceiling_p99_ms", percentile(ceiling.latencies_ms, 99), "ms")
    assert headline is not None
    emit("clicks.p99_ms", headline, "ms")
    for line in profile_request_path(
        app_env(db_url, redis_url),
        click_factory("localhost", tokens, 99),
        max(200, int(2000 * scale)),
        expect=302,
    ):
        print(line.replace("profile:", "profile click:"))
    redirected += max(200, int(2000 * scale)) + 50  # the profile's taps, warm-up included
    # Every 302 for a person's tap stored a click: the redirects were not answered for free.
    stored = stored_clicks(db_url, redis_url) - before
    print(f"clicks stored: {stored} for {redirected} redirects")
    return 0 if stored == redirected else 1


if __name__ == "__main__":
    raise SystemExit(main())
