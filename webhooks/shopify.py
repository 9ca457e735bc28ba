"""POST /webhooks/shopify: every topic, compliance ones included.

Verify the HMAC on the raw body, record the delivery (its unique webhook id makes a repeat a
no-op), ask for a drain after commit, answer. Nothing slow happens before the answer: Shopify
times out after five seconds and the endpoint must ack 1 000 deliveries a second — so on
PostgreSQL the request is one autocommitted INSERT (a statement built once, on the door's own
pool: no BEGIN, COMMIT or ping round trips) and one Redis SET NX.
"""

from __future__ import annotations

import json
import logging
import threading
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, current_app, request
from sqlalchemy import Engine, Insert, bindparam, create_engine, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, IntegrityError

from shopify_app.auth.shop_domain import valid_shop_domain
from shopify_app.extensions import db
from shopify_app.logs import log_context
from shopify_app.models import Shop, WebhookDelivery, utcnow
from webhooks.handlers import KNOWN_TOPICS, handler_for, request_drain
from webhooks.verify import verify_shopify_webhook

bp = Blueprint("shopify_webhooks", __name__)
log = logging.getLogger(__name__)

_TABLE = WebhookDelivery.__table__
_MAX_ID = 100  # topic and webhook id columns


def _answer(status: int, text: str = "") -> Response:
    return Response(text, status=status, mimetype="text/plain")


@bp.post("/webhooks/shopify")
def receive() -> Response:
    raw = request.get_data(cache=False)
    headers = request.headers
    topic = headers.get("X-Shopify-Topic", "")
    webhook_id = headers.get("X-Shopify-Webhook-Id", "")
    # Before anything else: an unsigned request learns nothing and changes nothing.
    check = verify_shopify_webhook(
        raw, headers.get("X-Shopify-Hmac-Sha256"), current_app.config["SHOPIFY_API_SECRET"]
    )
    if not check:
        log.warning(
            "shopify webhook refused (%s): topic=%.100s webhook_id=%.100s",
            check.reason,
            topic,
            webhook_id,
        )
        return _answer(401, "invalid signature")
    try:
        body = raw.decode("utf-8")
        if not isinstance(json.loads(body), dict):
            raise ValueError("not a JSON object")
    except ValueError:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        log.warning(
            "shopify webhook with a malformed JSON body: topic=%.100s webhook_id=%.100s",
            topic,
            webhook_id,
        )
        return _answer(400, "malformed JSON body")
    domain = valid_shop_domain(headers.get("X-Shopify-Shop-Domain"))
    if not (topic and webhook_id and domain) or len(topic) > _MAX_ID or len(webhook_id) > _MAX_ID:
        log.warning(
            "shopify webhook without a valid topic, shop domain or webhook id: "
            "topic=%.100s webhook_id=%.100s",
            topic,
            webhook_id,
        )
        return _answer(
            400, "missing or invalid X-Shopify-Topic, X-Shopify-Shop-Domain or X-Shopify-Webhook-Id"
        )
    with log_context(shop=domain):
        try:
            _record(domain, topic, webhook_id, body, len(raw))
        except Exception:
            db.session.rollback()
            # Not recorded at all: a 5xx makes Shopify deliver it again later.
            log.exception(
                "could not record shopify webhook topic=%s webhook_id=%s", topic, webhook_id
            )
            return _answer(500, "not recorded; please retry")
    return _answer(200)


def _record(domain: str, topic: str, webhook_id: str, body: str, size: int) -> None:
    """Record the delivery (a duplicate webhook id inserts nothing), then ask for a drain."""
    handled = handler_for(topic) is not None
    now = utcnow()
    params = {
        "shop_domain": domain,  # also resolves shop_id inside the INSERT: one round trip
        "topic": topic,
        "webhook_id": webhook_id,
        "event_id": (request.headers.get("X-Shopify-Event-Id") or "")[:_MAX_ID] or None,
        "api_version": (request.headers.get("X-Shopify-API-Version") or "")[:20] or None,
        "triggered_at": _parse_time(request.headers.get("X-Shopify-Triggered-At")),
        "status": "received" if handled else "ignored",
        # An ignored delivery is never read again; its body may hold personal data.
        "payload": body if handled else None,
        "payload_bytes": size,
        "attempts": 0,
        "processed_at": None if handled else now,
        "error": None if handled else _ignored_reason(topic),
        "created_at": now,
        "updated_at": now,
    }
    outcome = _insert_once(params)
    if outcome is _DUPLICATE:
        log.info("duplicate shopify webhook %s (%s): already recorded", webhook_id, topic)
        return
    if not handled:
        log.info("shopify webhook %s ignored: %s", topic, _ignored_reason(topic))
        return
    try:
        request_drain()
    except Exception:
        # The row is committed and answered; the scheduler's stale sweep drains it later.
        log.exception("could not queue the webhook drain for %s (%s)", webhook_id, topic)


def _ignored_reason(topic: str) -> str:
    return "no handler for this topic yet" if topic in KNOWN_TOPICS else "unknown topic"


_STATEMENTS: dict[str, Insert] = {}


def _insert_statement(dialect: str) -> Insert:
    """INSERT ... ON CONFLICT (webhook_id) DO NOTHING RETURNING id, with bound parameters,
    built once per dialect: constructing it per request cost more than executing it."""
    stmt = _STATEMENTS.get(dialect)
    if stmt is None:
        values = {
            c.name: bindparam(c.name, type_=c.type)
            for c in _TABLE.c
            if c.name not in ("id", "shop_id")
        }
        values["shop_id"] = (
            select(Shop.id).where(Shop.domain == bindparam("shop_domain")).scalar_subquery()
        )
        builder = postgresql.insert if dialect == "postgresql" else sqlite.insert
        stmt = (
            builder(_TABLE)
            .values(values)
            .on_conflict_do_nothing(index_elements=[_TABLE.c.webhook_id])
            .returning(_TABLE.c.id)
        )
        _STATEMENTS[dialect] = stmt
    return stmt


# What _insert_once reports besides a new row's id.
_DUPLICATE = "duplicate"  # the webhook id was recorded before: nothing to do
_UNSURE = "unsure"  # a retry after a lost connection found the row: maybe ours, maybe not


def _insert_once(params: dict[str, Any]) -> int | str:
    """Insert and commit the delivery; its id, _DUPLICATE, or _UNSURE (drain it anyway)."""
    engine = _intake_engine()
    if engine is not None:
        return _insert_autocommit(engine, params)
    dialect = db.session.get_bind().dialect.name
    if dialect == "sqlite":
        new_id = db.session.execute(_insert_statement(dialect), params).scalar_one_or_none()
    else:
        shop_id = select(Shop.id).where(Shop.domain == params["shop_domain"]).scalar_subquery()
        try:
            with db.session.begin_nested():
                new_id = db.session.execute(
                    insert(_TABLE).values(dict(params, shop_id=shop_id)).returning(_TABLE.c.id)
                ).scalar_one()
        except IntegrityError:
            new_id = None
    if new_id is None:
        db.session.rollback()
        return _DUPLICATE
    db.session.commit()
    return new_id


def _insert_autocommit(engine: Engine, params: dict[str, Any]) -> int | str:
    """PostgreSQL: the INSERT ... ON CONFLICT DO NOTHING in autocommit mode is the whole
    transaction, so recording a delivery is one round trip (no BEGIN, COMMIT, pool ping or
    reset). A pooled connection the server dropped fails here instead of at a ping: it is
    tried once more on a fresh one; if that finds the row, the first attempt may have written
    it before the answer was lost."""
    stmt = _insert_statement("postgresql")
    for attempt in (1, 2):
        try:
            with engine.connect() as conn:
                new_id = conn.execute(stmt, params).scalar_one_or_none()
        except DBAPIError as exc:
            if attempt == 2 or not exc.connection_invalidated:
                raise
            log.warning("webhook intake connection was dropped; recording on a fresh one")
            continue
        if new_id is not None:
            return new_id
        return _DUPLICATE if attempt == 1 else _UNSURE
    raise AssertionError("unreachable")


_ENGINE_KEY = "tidings_webhook_intake_engine"
_engine_lock = threading.Lock()


def _intake_engine() -> Engine | None:
    """The door's own engine on PostgreSQL (autocommit, no pre-ping), one per app and
    process; None elsewhere (SQLite is for development: the session's transaction is used)."""
    engine = current_app.extensions.get(_ENGINE_KEY)
    if engine is not None or db.engine.dialect.name != "postgresql":
        return engine
    with _engine_lock:
        engine = current_app.extensions.get(_ENGINE_KEY)
        if engine is None:
            engine = create_engine(
                db.engine.url,
                isolation_level="AUTOCOMMIT",
                pool_pre_ping=False,
                pool_size=10,
                max_overflow=20,
            )
            current_app.extensions[_ENGINE_KEY] = engine
    return engine


def _parse_time(value: str | None) -> datetime | None:
    """X-Shopify-Triggered-At, e.g. 2026-03-29T18:00:27.877041743Z; None if unreadable."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
