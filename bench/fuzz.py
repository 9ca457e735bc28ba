"""`make fuzz`: schemathesis against /api/openapi.json, and mutated Shopify webhooks.

1. The API: every operation in the OpenAPI document, with schemathesis-generated requests
   (valid ones, then ones that break the schema) carrying a fresh, valid App Bridge session
   token for a seeded shop. Checks: no 5xx, and every response matches the document (status
   code, content type, headers, body schema); invalid input is refused.
2. POST /webhooks/shopify: correctly signed deliveries for every topic whose payloads are real
   Shopify shapes mutated by Hypothesis (keys dropped, values swapped for other JSON, bodies
   that are not JSON objects, duplicate webhook ids). Checks: never a 5xx (200 recorded or
   ignored, 400 malformed), each delivery recorded at most once, and after the drain job runs
   every recorded delivery has an outcome; a delivery whose handler failed left no row behind
   in any other table (its savepoint rolled back: nothing half-written).

Runs in-process on the WSGI app against PostgreSQL (BENCH_DATABASE_URL, schema recreated) and
Redis (BENCH_REDIS_URL, flushed); the Shopify Admin API is the loopback stand-in. Prints
`BENCH fuzz.<part>.cases` and `.failures`; exits 1 when anything failed.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import os
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from flask import Flask
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from bench.common import bench_db_url, bench_redis_url, emit, ensure_database, fresh_schema
from bench.server import BENCH_SECRET, app_env

SHOP = "tidings-fuzz.myshopify.com"
API_KEY = "bench-key"


@dataclass
class Findings:
    """Failures grouped by what failed, with one example each."""

    cases: int = 0
    failures: Counter[tuple[str, str]] = field(default_factory=Counter)
    examples: dict[tuple[str, str], str] = field(default_factory=dict)
    # Webhook handlers that raised on a mutated payload: not a failure of the door (the row is
    # kept as "failed" and retried), but listed so an owner can make the handler stricter.
    handler_errors: Counter[str] = field(default_factory=Counter)
    skipped: list[str] = field(default_factory=list)

    def add(self, where: str, what: str, example: str) -> None:
        key = (where, what.strip().splitlines()[0][:160] if what.strip() else "?")
        self.failures[key] += 1
        self.examples.setdefault(key, example[:1500])

    @property
    def total(self) -> int:
        return sum(self.failures.values())

    def print(self, title: str) -> None:
        print(f"{title}: {self.cases} cases, {self.total} failures", flush=True)
        if self.skipped:
            print(f"  no negative cases possible (nothing to break): {', '.join(self.skipped)}")
        for (where, what), n in sorted(self.failures.items()):
            print(f"  {n:5d} x {where}: {what}")
            print("        " + self.examples[(where, what)].replace("\n", "\n        "))


def session_token(domain: str) -> str:
    from tests.fakes.signing import session_token as sign

    return sign(domain, API_KEY, BENCH_SECRET, exp_in=300)


@contextmanager
def fuzz_app(quick: bool) -> Iterator[Flask]:
    """The app on a fresh schema with one installed shop and some data for reads to find."""
    from shopify_app import create_app
    from shopify_app.extensions import db, get_redis
    from shopify_app.services.demo_data import seed_demo
    from tests.conftest import make_shop
    from tests.fakes.shopify_server import FakeShopify

    db_url, redis_url = bench_db_url(), bench_redis_url()
    ensure_database(db_url)
    with FakeShopify(API_KEY, BENCH_SECRET) as shopify:
        env = app_env(
            db_url,
            redis_url,
            SHOPIFY_API_KEY=API_KEY,
            SHOPIFY_ADMIN_BASE_URL=shopify.base_url_template,
            APP_URL="http://localhost",
            # Handlers refusing mutated payloads log a warning each: the summary lists them.
            LOG_LEVEL="ERROR",
        )
        app = create_app(env)
        with app.app_context():
            fresh_schema()
            get_redis().flushdb()
            make_shop(SHOP, name="Fuzz Shop")
            seed_demo(SHOP, subscribers=50 if quick else 300, orders=50 if quick else 300)
            db.session.remove()
        try:
            yield app
        finally:
            with app.app_context():
                get_redis().flushdb()
                db.session.remove()
                db.engine.dispose()


# --- 1. the API against its OpenAPI document ------------------------------------------------


def fuzz_api(app: Flask, examples: int) -> Findings:
    import schemathesis
    from hypothesis.errors import Unsatisfiable
    from schemathesis import GenerationMode, checks
    from schemathesis.core.failures import Failure, FailureGroup

    findings = Findings()
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    positive = [
        checks.not_a_server_error,
        checks.status_code_conformance,
        checks.content_type_conformance,
        checks.response_headers_conformance,
        checks.response_schema_conformance,
    ]
    negative = [
        checks.not_a_server_error,
        checks.status_code_conformance,
        checks.content_type_conformance,
        checks.negative_data_rejection,
    ]
    operations = [result.ok() for result in schema.get_all_operations()]
    print(f"API: {len(operations)} operations, {examples} examples each way", flush=True)
    for operation in operations:
        for mode, chosen in (
            (GenerationMode.POSITIVE, positive),
            (GenerationMode.NEGATIVE, negative),
        ):
            where = f"{operation.label} ({mode.value})"
            try:
                strategy = operation.as_strategy(generation_mode=mode)
                _api_runner(findings, where, strategy, chosen, examples, (Failure, FailureGroup))()
            except Unsatisfiable:
                # No parameters and no body: nothing to break, so no negative case exists.
                findings.skipped.append(where)
            except Exception as exc:  # noqa: BLE001 - generation itself failed: a finding
                findings.add(where, f"generation: {exc!r}", "")
    return findings


def _api_runner(
    findings: Findings,
    where: str,
    strategy: Any,
    chosen: list[Any],
    examples: int,
    failure_types: tuple[type, type],
) -> Callable[[], None]:
    """One operation in one generation mode as a Hypothesis test that records, not raises."""
    failure_type, group_type = failure_types

    @seed(20261123)
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def run(case: Any) -> None:
        findings.cases += 1
        headers = {"Authorization": f"Bearer {session_token(SHOP)}"}
        try:
            response = case.call(headers=headers)
            case.validate_response(response, checks=chosen, headers=headers)
        except group_type as group:
            for failure in group.exceptions:
                findings.add(where, failure.title, f"{failure.message[:600]}\n{_curl(case)}")
        except failure_type as failure:
            findings.add(where, failure.title, f"{failure.message[:600]}\n{_curl(case)}")
        except Exception as exc:  # noqa: BLE001 - the app raised: a 500 in production
            findings.add(where, repr(exc), _curl(case))

    return run


def _curl(case: Any) -> str:
    try:
        return case.as_curl_command(headers={"Authorization": "Bearer <session token>"})
    except Exception:  # noqa: BLE001
        return repr(case)


# --- 2. signed, mutated Shopify webhooks ----------------------------------------------------


def base_payloads() -> dict[str, dict[str, Any]]:
    """A realistic body per topic (the shapes Shopify sends, trimmed to what we read)."""
    phone = "+13035550142"
    customer = {
        "id": 7001,
        "email": "ana@example.com",
        "phone": phone,
        "first_name": "Ana",
        "last_name": "Silva",
        "sms_marketing_consent": {
            "state": "subscribed",
            "opt_in_level": "single_opt_in",
            "consent_updated_at": "2026-11-20T10:00:00-05:00",
            "consent_collected_from": "SHOPIFY",
        },
        "default_address": {"phone": phone, "country_code": "US", "zip": "80202"},
    }
    order = {
        "id": 9001,
        "name": "#1001",
        "email": "ana@example.com",
        "phone": phone,
        "created_at": "2026-11-20T10:05:00-05:00",
        "updated_at": "2026-11-20T10:05:00-05:00",
        "currency": "USD",
        "presentment_currency": "USD",
        "total_price": "59.00",
        "current_total_price": "59.00",
        "subtotal_price": "54.00",
        "financial_status": "paid",
        "test": False,
        "cancelled_at": None,
        "checkout_token": "ck9001",
        "landing_site": "/collections/sale?tidings_ref=abcdef1234",
        "referring_site": "",
        "discount_codes": [{"code": "SMS-ABC123", "amount": "5.00", "type": "fixed_amount"}],
        "note_attributes": [{"name": "tidings_ref", "value": "abcdef1234"}],
        "customer": customer,
        "billing_address": {"phone": phone, "country_code": "US"},
        "line_items": [{"id": 1, "title": "Scarf", "quantity": 1, "price": "54.00"}],
        "refunds": [],
    }
    checkout = {
        "id": 5001,
        "token": "ck5001",
        "cart_token": "cart5001",
        "email": "ana@example.com",
        "phone": phone,
        "created_at": "2026-11-20T09:00:00-05:00",
        "updated_at": "2026-11-20T09:10:00-05:00",
        "completed_at": None,
        "abandoned_checkout_url": f"https://{SHOP}/checkouts/ck5001/recover",
        "buyer_accepts_sms": True,
        "sms_marketing_phone": phone,
        "currency": "USD",
        "total_price": "54.00",
        "customer": customer,
        "shipping_address": {"phone": phone, "country_code": "US"},
        "line_items": [{"title": "Scarf", "quantity": 1, "price": "54.00"}],
    }
    return {
        "orders/create": order,
        "orders/updated": order,
        "orders/paid": order,
        "refunds/create": {
            "id": 301,
            "order_id": 9001,
            "created_at": "2026-11-21T10:00:00-05:00",
            "transactions": [{"amount": "20.00", "kind": "refund", "status": "success"}],
            "refund_line_items": [],
        },
        "checkouts/create": checkout,
        "checkouts/update": checkout,
        "customers/create": customer,
        "customers/update": customer,
        "customers_marketing_consent/update": {
            "id": 7001,
            "phone": phone,
            "sms_marketing_consent": customer["sms_marketing_consent"],
        },
        "customers/data_request": {
            "shop_id": 1,
            "shop_domain": SHOP,
            "customer": {"id": 7001, "email": "ana@example.com", "phone": phone},
            "orders_requested": [9001],
            "data_request": {"id": 1},
        },
        "customers/redact": {
            "shop_id": 1,
            "shop_domain": SHOP,
            "customer": {"id": 7001, "email": "ana@example.com", "phone": phone},
            "orders_to_redact": [9001],
        },
        "app/scopes_update": {"id": 1, "previous": ["read_orders"], "current": ["read_orders"]},
        "orders/unknown_topic": order,
    }


JSON_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
    st.sampled_from(["", "0", "-1", "1e309", "+1", "+0000000", "NaN", "2026-13-45T99:99:99Z"]),
)
JSON_VALUES = st.recursive(
    JSON_LEAVES,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    paths = [prefix] if prefix else []
    if isinstance(value, dict):
        for k, v in value.items():
            paths += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            paths += _paths(v, (*prefix, i))
    return paths


def _mutate(payload: Any, path: tuple[Any, ...], action: str, value: Any) -> Any:
    """A copy of `payload` with the node at `path` dropped or replaced."""
    copy = json.loads(json.dumps(payload))
    parent = copy
    for key in path[:-1]:
        parent = parent[key]
    last = path[-1]
    if action == "drop":
        del parent[last]
    else:
        parent[last] = value
    return copy


@st.composite
def deliveries(draw: Callable[..., Any]) -> tuple[str, bytes, str]:
    """(topic, raw body, webhook id)."""
    payloads = base_payloads()
    topic = draw(st.sampled_from(sorted(payloads)))
    payload: Any = payloads[topic]
    for _ in range(draw(st.integers(min_value=0, max_value=4))):
        paths = _paths(payload)
        if not paths or not isinstance(payload, dict):
            break
        path = draw(st.sampled_from(paths))
        action = draw(st.sampled_from(["drop", "replace", "replace"]))
        payload = _mutate(payload, path, action, draw(JSON_VALUES))
    shape = draw(st.sampled_from(["object"] * 8 + ["other_json", "not_json"]))
    if shape == "other_json":
        raw = json.dumps(draw(JSON_VALUES)).encode()
    elif shape == "not_json":
        raw = draw(st.binary(max_size=60))
    else:
        raw = json.dumps(payload).encode()
    webhook_id = draw(st.sampled_from(["fresh"] * 6 + ["repeat"]))
    return topic, raw, webhook_id


def table_counts() -> dict[str, int]:
    from shopify_app.extensions import db

    counts = {}
    for table in db.metadata.sorted_tables:
        if table.name == "webhook_delivery":
            continue
        counts[table.name] = int(db.session.scalar(select(func.count()).select_from(table)) or 0)
    db.session.rollback()
    return counts


def fuzz_webhooks(app: Flask, examples: int) -> Findings:
    from jobs import webhooks as webhook_jobs
    from shopify_app.extensions import db
    from shopify_app.models import WebhookDelivery

    findings = Findings()
    client = app.test_client()
    seen: list[str] = []

    @seed(20261124)
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(delivery=deliveries())
    def run(delivery: tuple[str, bytes, str]) -> None:
        topic, raw, which = delivery
        findings.cases += 1
        webhook_id = seen[-1] if which == "repeat" and seen else str(uuid.uuid4())
        seen.append(webhook_id)
        signature = base64.b64encode(hmac.new(BENCH_SECRET.encode(), raw, hashlib.sha256).digest())
        headers = {
            "Content-Type": "application/json",
            "X-Shopify-Topic": topic,
            "X-Shopify-Shop-Domain": SHOP,
            "X-Shopify-Hmac-Sha256": signature.decode(),
            "X-Shopify-Webhook-Id": webhook_id,
            "X-Shopify-API-Version": "2026-10",
            "X-Shopify-Triggered-At": "2026-11-23T10:00:00.123456789Z",
        }
        example = f"{topic} {webhook_id}: {raw[:600]!r}"
        with app.app_context():
            before = table_counts()
            response = client.post("/webhooks/shopify", data=raw, headers=headers)
            if response.status_code >= 500 or response.status_code not in (200, 400):
                findings.add(topic, f"answered {response.status_code}", example)
                return
            rows = list(
                db.session.scalars(
                    select(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook_id)
                )
            )
            db.session.rollback()
            if len(rows) > 1:
                findings.add(topic, f"recorded {len(rows)} times", example)
            if response.status_code == 400 and which == "fresh" and rows:
                findings.add(topic, "refused (400) yet recorded", example)
            try:
                webhook_jobs.drain()
            except Exception as exc:  # noqa: BLE001 - the drain must survive any payload
                db.session.rollback()
                findings.add(topic, f"drain raised {exc!r}", example)
                return
            db.session.remove()
            rows = list(
                db.session.scalars(
                    select(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook_id)
                )
            )
            stuck = [r for r in rows if r.status == "received"]
            failed = [r for r in rows if r.status == "failed"]
            db.session.rollback()
            if stuck:
                findings.add(topic, "still 'received' after the drain", example)
            if failed:
                # A handler that raised must have left nothing behind: the savepoint undone.
                changed = {k: v for k, v in table_counts().items() if v != before.get(k)}
                findings.handler_errors[failed[0].error or "?"] += 1
                if changed and which == "fresh":
                    findings.add(topic, f"failed handler left rows: {changed}", example)
            db.session.remove()

    run()
    return findings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fuzz")
    parser.add_argument("--quick", action="store_true", help="fewer examples")
    parser.add_argument("--only", choices=("api", "webhooks"), action="append")
    args = parser.parse_args(argv)
    parts = args.only or ["api", "webhooks"]
    api_examples = 8 if args.quick else 60
    webhook_examples = 150 if args.quick else 1500
    failed = False
    with fuzz_app(args.quick) as app:
        if "api" in parts:
            started = time.monotonic()
            api = fuzz_api(app, api_examples)
            api.print(f"API fuzz ({time.monotonic() - started:.0f}s)")
            emit("fuzz.api.cases", api.cases, "cases")
            emit("fuzz.api.failures", api.total, "failures")
            failed |= api.total > 0
        if "webhooks" in parts:
            started = time.monotonic()
            hooks = fuzz_webhooks(app, webhook_examples)
            hooks.print(f"webhook fuzz ({time.monotonic() - started:.0f}s)")
            errors = hooks.handler_errors
            if errors:
                print("  handler failures (recorded as 'failed', retried, nothing written):")
                for error, n in errors.most_common():
                    print(f"  {n:5d} x {error}")
            emit("fuzz.webhooks.cases", hooks.cases, "cases")
            emit("fuzz.webhooks.failures", hooks.total, "failures")
            emit("fuzz.webhooks.handler_failures", sum(errors.values()), "deliveries")
            failed |= hooks.total > 0
    return 1 if failed else 0


if __name__ == "__main__":
    os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY", "/tmp/tidings-fuzz-hypothesis")
    sys.exit(main())
