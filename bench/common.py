"""Shared benchmark plumbing: where the data lives, how figures are printed."""

from __future__ import annotations

import cProfile
import os
import pstats
import statistics
import time
from collections.abc import Callable, Sequence

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

DEFAULT_DB = "postgresql://postgres@127.0.0.1:5432/tidings_bench"
DEFAULT_REDIS = "redis://127.0.0.1:6379/15"


def bench_db_url() -> str:
    return os.environ.get("BENCH_DATABASE_URL", DEFAULT_DB)


def bench_redis_url() -> str:
    return os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS)


def ensure_database(url: str) -> None:
    """Create the benchmark database if the server does not have it yet."""
    parsed = make_url(url).set(drivername="postgresql+psycopg")
    admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            exists = conn.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": parsed.database}
            ).scalar()
            if not exists:
                conn.execute(text(f'CREATE DATABASE "{parsed.database}"'))
    finally:
        admin.dispose()


def emit(name: str, value: float, unit: str) -> None:
    """One figure on a line of its own, for scripts: `BENCH <name> <value> <unit>`."""
    shown = f"{value:.0f}" if abs(value) >= 100 else f"{value:.3g}" if value else "0"
    print(f"BENCH {name} {shown} {unit}", flush=True)


def percentile(values: Sequence[float], pct: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1))))
    return ordered[k]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


# Where request-path CPU goes, by layer: the first matching fragment of a frame's file names it.
_LAYERS = (
    ("psycopg", "psycopg (driver)"),
    ("sqlalchemy", "SQLAlchemy"),
    ("flask_sqlalchemy", "SQLAlchemy"),
    ("/redis/", "redis-py"),
    ("/rq/", "RQ"),
    ("werkzeug", "Werkzeug (HTTP)"),
    ("/flask/", "Flask"),
    ("/json/", "json"),
    ("hmac", "HMAC"),
    ("hashlib", "HMAC"),
    ("/work/", "Tidings code"),
    ("shopify_app", "Tidings code"),
    ("webhooks/", "Tidings code"),
)


def cpu_profile(call: Callable[[int], object], n: int, top: int = 8) -> list[str]:
    """Run `call(i)` n times under cProfile with a CPU clock; lines giving CPU ms per call by
    layer (own time of each frame) and the heaviest functions, for the benchmark notes."""
    profiler = cProfile.Profile(time.process_time)
    started = time.process_time()
    profiler.enable()
    for i in range(n):
        call(i)
    profiler.disable()
    total = time.process_time() - started
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    by_layer: dict[str, float] = {}
    by_function: list[tuple[float, str]] = []
    for (filename, line, name), (_cc, _nc, own, _cum, _callers) in stats.items():
        layer = next((label for frag, label in _LAYERS if frag in filename), "stdlib, builtins")
        by_layer[layer] = by_layer.get(layer, 0.0) + own
        by_function.append((own, f"{filename.rsplit('site-packages/', 1)[-1]}:{line} {name}"))
    lines = [f"profile: {total / n * 1000:.2f} ms CPU per request (profiled, {n} requests)"]
    for layer, own in sorted(by_layer.items(), key=lambda kv: -kv[1]):
        lines.append(f"profile:   {layer:<20} {own / n * 1000:6.3f} ms  {own / total:5.1%}")
    for own, where in sorted(by_function, reverse=True)[:top]:
        lines.append(f"profile:   top {own / n * 1000:6.3f} ms  {where}")
    return lines


def fresh_schema() -> None:
    """In an app context: the bench database emptied and the app's tables created afresh
    (the bench owns that database; the tests' schema is never touched)."""
    from shopify_app.extensions import db

    db.session.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public;"))
    db.session.commit()
    db.create_all()


def vacuum_analyze(table: str = "") -> None:
    """In an app context: VACUUM ANALYZE (the whole database, or one table), outside any
    transaction as PostgreSQL requires, so the figures are taken with fresh statistics."""
    from shopify_app.extensions import db

    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f"VACUUM ANALYZE {table}".strip()))
