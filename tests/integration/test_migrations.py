"""The migration chain builds, on an empty database, exactly the schema the models describe."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from shopify_app import create_app
from shopify_app.config import PROJECT_ROOT
from shopify_app.extensions import db
from tests.conftest import make_test_config

MIGRATIONS = str(PROJECT_ROOT / "migrations")


def _schema_differences(app) -> list:
    with app.app_context(), db.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        return compare_metadata(ctx, db.metadata)


def _upgrade_and_compare(url: str) -> None:
    app = create_app(make_test_config(DATABASE_URL=url))
    with app.app_context():
        upgrade(directory=MIGRATIONS)
    assert _schema_differences(app) == []
    with app.app_context():
        downgrade(directory=MIGRATIONS, revision="base")
        upgrade(directory=MIGRATIONS)
    assert _schema_differences(app) == []
    with app.app_context():
        db.engine.dispose()


def test_migrations_upgrade_an_empty_sqlite_database(tmp_path: Path) -> None:
    """`flask db upgrade` on an empty SQLite file gives the models' schema; down and up again."""
    _upgrade_and_compare(f"sqlite:///{tmp_path / 'migrated.db'}")


@pytest.mark.skipif(
    not os.environ.get("TEST_DATABASE_URL", "").startswith("postgres"),
    reason="PostgreSQL is not configured (TEST_DATABASE_URL)",
)
def test_migrations_upgrade_an_empty_postgresql_database() -> None:
    """The same chain on an empty PostgreSQL database."""
    base = make_url(os.environ["TEST_DATABASE_URL"]).set(drivername="postgresql+psycopg")
    name = f"tidings_migrations_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        _upgrade_and_compare(base.set(database=name).render_as_string(hide_password=False))
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
