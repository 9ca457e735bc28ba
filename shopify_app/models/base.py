"""Shared column types, the timestamped base, and the one helper that scopes queries to a shop."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Self

from sqlalchemy import JSON, BigInteger, DateTime, ForeignKey, Integer, Numeric, Select, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, declared_attr, mapped_column
from sqlalchemy.types import TypeDecorator

from shopify_app.extensions import db

# SQLite only autoincrements INTEGER PRIMARY KEY; PostgreSQL gets 64-bit ids.
BigId = BigInteger().with_variant(Integer, "sqlite")
JsonType = JSON().with_variant(JSONB(), "postgresql")
Money = Numeric(12, 2)
UnitPrice = Numeric(12, 5)


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """Always aware UTC in Python; timestamptz on PostgreSQL, naive UTC text on SQLite."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; store aware UTC datetimes only")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def to_decimal(value: Any) -> Decimal:
    """Decimal from a Shopify money string or number, never through float."""
    if value is None or value == "":
        return Decimal("0.00")
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        value = repr(value)
    return Decimal(str(value))


class Model(db.Model):
    __abstract__ = True

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, onupdate=utcnow, nullable=False
    )


class ShopScoped(Model):
    """A row that belongs to one shop. Reach rows only through `for_shop` / `get_for_shop`."""

    __abstract__ = True

    @declared_attr
    def shop_id(cls) -> Mapped[int]:  # noqa: N805 - declared_attr takes the class
        return mapped_column(
            BigId, ForeignKey("shop.id", ondelete="CASCADE"), nullable=False, index=True
        )

    @classmethod
    def for_shop(cls, shop_id: int) -> Select[tuple[Self]]:
        """A select of this model already restricted to one shop."""
        return select(cls).where(cls.shop_id == shop_id)

    @classmethod
    def get_for_shop(cls, shop_id: int, row_id: int) -> Self | None:
        return db.session.scalars(cls.for_shop(shop_id).where(cls.id == row_id)).first()
