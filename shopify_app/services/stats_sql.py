"""SQL pieces the stats share: portable time arithmetic, money sums, and output formatting.

SQLite (development) and PostgreSQL (production) disagree on date arithmetic; every
expression that adds time to a column goes through `plus_hours` so both give the same answer.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, cast, func, literal_column

from shopify_app.extensions import db
from shopify_app.models.base import to_decimal

CENT = Decimal("0.01")
RATE = Decimal("0.0001")


def is_postgres() -> bool:
    return db.engine.dialect.name == "postgresql"


def plus_hours(column: Any, hours: int) -> ColumnElement[Any]:
    """`column + hours` as a timestamp comparable with other timestamp columns."""
    hours = int(hours)
    if is_postgres():
        return column + literal_column(f"interval '{hours} hours'")
    # SQLite stores UTCDateTime as 'YYYY-MM-DD HH:MM:SS.ffffff'; strftime's %f gives
    # milliseconds, so three zeros keep the text comparable with stored values.
    return func.strftime("%Y-%m-%d %H:%M:%f000", column, f"{hours:+d} hours")


def cents(column: Any) -> ColumnElement[Any]:
    """A money column as whole cents (exact sums and squares even on SQLite's floats)."""
    return cast(func.round(column * 100), BigInteger)


def money(value: Any) -> Decimal:
    return to_decimal(value if value is not None else 0).quantize(CENT, rounding=ROUND_HALF_UP)


def money_str(value: Any) -> str:
    return str(money(value))


def from_cents(value: Any) -> Decimal:
    return (Decimal(int(value or 0)) / 100).quantize(CENT)


def ratio(numerator: Any, denominator: Any, places: Decimal = RATE) -> str | None:
    """numerator / denominator rounded half-up, as a string; None when the denominator is 0."""
    den = to_decimal(denominator or 0)
    if den == 0:
        return None
    return str((to_decimal(numerator or 0) / den).quantize(places, rounding=ROUND_HALF_UP))
