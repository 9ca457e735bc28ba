"""Helpers for the flow tests: Shopify payloads for checkouts and orders, delivering them as
signed webhooks, switching flows on, letting time pass for runs, and reading what went out."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import select

from shopify_app.extensions import db, get_queue
from shopify_app.models import Flow, FlowRun, Message, Shop, Subscriber, WebhookDelivery
from shopify_app.services import flows
from shopify_app.services.flow_defaults import ensure_default_flows
from tests.integration.consent_support import use_sender
from tests.integration.send_support import day_zone, id_of
from tests.integration.webhook_support import post_shopify

PHONE = "+12025550142"
CUSTOMER_ID = 7012345678
TOKEN = "5f7e0c9d1a2b3c4d5e6f708192a3b4c5"


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def ago(**delta: float) -> datetime:
    return datetime.now(UTC).replace(microsecond=0) - timedelta(**delta)


def flow_shop(shop: Shop, **settings: Any) -> Shop:
    """The test shop with its own sender, no rate limit and (unless given) no smart sending:
    these tests let days pass for runs but not for the texts' send times."""
    return use_sender(shop, **{"smart_sending_hours": 0, **settings})


def enable(shop: Shop | int, kind: str, **changes: Any) -> Flow:
    """Switch one of the shop's default flows on, with optional changes (steps, settings…)."""
    shop_id = id_of(shop)
    ensure_default_flows(shop_id)
    flow = db.session.scalars(Flow.for_shop(shop_id).where(Flow.kind == kind)).one()
    flow.enabled = True
    for key, value in changes.items():
        setattr(flow, key, value)
    db.session.commit()
    return flow


def checkout(
    *,
    token: str = TOKEN,
    accepts_sms: bool = True,
    updated: datetime | None = None,
    phone: str = PHONE,
    completed: datetime | None = None,
    recovery_host: str = "tidings-test.myshopify.com",
) -> dict[str, Any]:
    updated = updated or ago(minutes=1)
    return {
        "token": token,
        "cart_token": "Z2NwLXVzLWVhc3QxOjAxSj",
        "email": "ada@example.com",
        "buyer_accepts_marketing": False,
        "buyer_accepts_sms_marketing": accepts_sms,
        "sms_marketing_phone": phone if accepts_sms else None,
        "created_at": iso(updated - timedelta(minutes=5)),
        "updated_at": iso(updated),
        "currency": "USD",
        "presentment_currency": "USD",
        "completed_at": iso(completed) if completed else None,
        "phone": phone,
        "abandoned_checkout_url": f"https://{recovery_host}/59485/checkouts/ac/{token}/recover"
        "?key=8f3b",
        "total_price": "59.90",
        "subtotal_price": "54.00",
        "line_items": [{"title": "Linen shirt", "quantity": 1, "price": "54.00"}],
        "billing_address": {
            "first_name": "Ada",
            "last_name": "Lovelace",
            "country_code": "US",
            "phone": phone,
        },
        "customer": {
            "id": CUSTOMER_ID,
            "email": "ada@example.com",
            "first_name": "Ada",
            "last_name": "Lovelace",
            "phone": phone,
        },
    }


def order(
    *,
    order_id: int = 820982911946154508,
    token: str | None = TOKEN,
    phone: str = PHONE,
    created: datetime | None = None,
    **fields: Any,
) -> dict[str, Any]:
    created = created or ago(minutes=1)
    payload = {
        "id": order_id,
        "name": f"#{order_id % 10000}",
        "email": "ada@example.com",
        "checkout_token": token,
        "currency": "USD",
        "presentment_currency": "USD",
        "total_price": "59.90",
        "current_total_price": "59.90",
        "created_at": iso(created),
        "updated_at": iso(created),
        "test": False,
        "cancelled_at": None,
        "phone": phone,
        "landing_site": "/",
        "discount_codes": [],
        "financial_status": "paid",
        "fulfillment_status": None,
        "fulfillments": [],
        "billing_address": {
            "first_name": "Ada",
            "last_name": "Lovelace",
            "country_code": "US",
            "phone": phone,
        },
        # No customer id: linking one to a widget subscriber would queue a consent write-back
        # to Shopify, which these tests do not exercise.
        "customer": {
            "email": "ada@example.com",
            "first_name": "Ada",
            "last_name": "Lovelace",
            "phone": phone,
        },
    }
    payload.update(fields)
    return payload


def deliver(
    client: FlaskClient,
    topic: str,
    payload: dict[str, Any],
    run_jobs: Any,
    shop_domain: str = "tidings-test.myshopify.com",
) -> None:
    """Deliver a signed webhook, run its job (and what it queues), check it was processed."""
    webhook_id = f"wh-{uuid.uuid4().hex}"
    assert (
        post_shopify(client, topic, payload, shop=shop_domain, webhook_id=webhook_id).status_code
        == 200
    )
    run_jobs()
    db.session.expire_all()
    status = db.session.scalars(
        select(WebhookDelivery.status).where(WebhookDelivery.webhook_id == webhook_id)
    ).one()
    assert status == "processed", status


def daytime(shop_id: int, phone: str = PHONE) -> Subscriber:
    """Put the subscriber in a zone where it is day now (quiet hours depend on the clock)."""
    sub = db.session.scalars(Subscriber.for_shop(shop_id).where(Subscriber.phone == phone)).one()
    sub.timezone = day_zone()
    db.session.commit()
    return sub


def time_passes(**delta: float) -> None:
    """Every active run lives `delta` later: its next step and its start move back."""
    step = timedelta(**delta)
    for run in db.session.scalars(select(FlowRun).where(FlowRun.status == "active")):
        run.created_at -= step
        if run.next_step_at is not None:
            run.next_step_at -= step
    db.session.commit()


def tick_and_send(run_jobs: Any) -> flows.TickReport:
    """The periodic tick as the scheduler queues it, run by the workers with what it queues
    (send jobs, discount steps). Returns the tick's report."""
    job = get_queue("default").enqueue("jobs.flows.tick")
    run_jobs()
    db.session.expire_all()
    assert job.get_status(refresh=True) == "finished", job.latest_result()
    return flows.TickReport(**job.return_value())


def runs(shop_id: int) -> list[FlowRun]:
    db.session.expire_all()
    return list(db.session.scalars(FlowRun.for_shop(shop_id).order_by(FlowRun.id)))


def flow_texts(shop_id: int) -> list[Message]:
    db.session.expire_all()
    return list(
        db.session.scalars(
            Message.for_shop(shop_id).where(Message.kind == "flow").order_by(Message.id)
        )
    )
