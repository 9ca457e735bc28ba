"""Helpers for the webhook tests: signed Shopify deliveries and rows to act on."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import func, select

from shopify_app.extensions import db, get_queue
from shopify_app.models import (
    Campaign,
    ConsentEvent,
    Message,
    Shop,
    Subscriber,
    WebhookDelivery,
    utcnow,
)
from tests.conftest import API_SECRET
from tests.fakes.signing import shopify_webhook_headers


def post_shopify(
    client: FlaskClient,
    topic: str,
    payload: Any,
    *,
    shop: str,
    webhook_id: str | None = None,
    body: bytes | None = None,
    secret: str = API_SECRET,
    **header_overrides: str | None,
):
    """POST a delivery signed like Shopify signs it. A header override of None drops it."""
    raw = body if body is not None else json.dumps(payload).encode()
    headers = shopify_webhook_headers(
        raw, secret, topic=topic, shop=shop, webhook_id=webhook_id or str(uuid.uuid4())
    )
    for name, value in header_overrides.items():
        name = name.replace("_", "-")
        if value is None:
            headers.pop(name, None)
        else:
            headers[name] = value
    return client.post("/webhooks/shopify", data=raw, headers=headers)


def deliveries() -> list[WebhookDelivery]:
    db.session.expire_all()
    return list(db.session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)))


def queued_job_args(queue: str = "webhooks") -> list[tuple]:
    return [job.args for job in get_queue(queue).get_jobs()]


def queued_jobs(queue: str = "webhooks") -> list[tuple[str, tuple]]:
    return [(job.func_name, job.args) for job in get_queue(queue).get_jobs()]


def count(model: Any, *where: Any) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*where)) or 0


def add_subscriber(shop: Shop, phone: str, **fields: Any) -> Subscriber:
    sub = Subscriber(
        shop_id=shop.id,
        phone=phone,
        status=fields.pop("status", "subscribed"),
        source=fields.pop("source", "widget"),
        subscribed_at=utcnow(),
        **fields,
    )
    db.session.add(sub)
    db.session.flush()
    db.session.add(
        ConsentEvent(
            shop_id=shop.id,
            subscriber_id=sub.id,
            kind="confirmed",
            source="widget",
            occurred_at=utcnow(),
            ip="203.0.113.9",
            user_agent="Mozilla/5.0 (test)",
            page_url="https://shop.example/?utm=sms",
            consent_text="I agree",
            evidence_id=f"keyword:{phone}",
        )
    )
    return sub


def add_campaign(shop: Shop, status: str = "scheduled", **fields: Any) -> Campaign:
    campaign = Campaign(
        shop_id=shop.id,
        name=fields.pop("name", "Spring sale"),
        status=status,
        body="Hello {{ first_name }}",
        send_at=utcnow() + timedelta(hours=1),
        **fields,
    )
    db.session.add(campaign)
    db.session.flush()
    return campaign


def add_message(shop: Shop, sub: Subscriber, status: str = "pending", **fields: Any) -> Message:
    message = Message(
        shop_id=shop.id,
        subscriber_id=sub.id,
        status=status,
        due_at=fields.pop("due_at", utcnow()),
        price=fields.pop("price", Decimal("0.0079")),
        **fields,
    )
    db.session.add(message)
    db.session.flush()
    return message
