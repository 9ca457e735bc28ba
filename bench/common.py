"""Shared benchmark plumbing: where the data lives, how figures are printed."""

from __future__ import annotations

import os
import statistics
from collections.abc import Sequence

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
