"""app/uninstalled stops a shop's queued work and forgets its tokens; app/scopes_update."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from shopify_app.extensions import db
from shopify_app.models import Campaign, Flow, FlowRun, ImportJob, Message, Shop, utcnow
from tests.integration.webhook_support import (
    add_campaign,
    add_message,
    add_subscriber,
    deliveries,
    post_shopify,
)


def _queued_work(shop: Shop) -> None:
    """One of each kind of waiting work for `shop`, plus finished work that must not change."""
    sub = add_subscriber(shop, "+14155550123")
    scheduled = add_campaign(shop, "scheduled", name="scheduled")
    sending = add_campaign(shop, "sending", name="sending")
    add_campaign(shop, "draft", name="draft")
    add_campaign(shop, "sent", name="sent")
    add_message(shop, sub, "pending", campaign_id=scheduled.id)
    add_message(shop, sub, "sending", campaign_id=sending.id, lease_expires_at=utcnow())
    add_message(shop, sub, "delivered", kind="transactional", dedupe_key="welcome")
    flow = Flow(shop_id=shop.id, kind="welcome", name="Welcome", enabled=True)
    db.session.add(flow)
    db.session.flush()
    db.session.add(
        FlowRun(
            shop_id=shop.id,
            flow_id=flow.id,
            subscriber_id=sub.id,
            trigger_key="t-1",
            status="active",
            next_step_at=utcnow(),
        )
    )
    db.session.add(
        ImportJob(
            shop_id=shop.id, filename="list.csv", status="queued", csv_text="phone\n+14155550199\n"
        )
    )
    db.session.add(ImportJob(shop_id=shop.id, filename="old.csv", status="done"))
    db.session.commit()


def _state(shop_id: int) -> dict[str, list]:
    db.session.expire_all()
    return {
        "messages": sorted(
            (m.status, m.skip_reason) for m in db.session.scalars(Message.for_shop(shop_id))
        ),
        "campaigns": sorted(
            (c.name, c.status, c.status_reason)
            for c in db.session.scalars(Campaign.for_shop(shop_id))
        ),
        "runs": [
            (r.status, r.exit_reason, r.ended_at is not None)
            for r in db.session.scalars(FlowRun.for_shop(shop_id))
        ],
        "imports": sorted(
            (j.filename, j.status, j.csv_text is None)
            for j in db.session.scalars(ImportJob.for_shop(shop_id))
        ),
    }


def test_uninstall_stops_queued_work_and_leaves_other_shop_alone(
    client, shop, other_shop, run_jobs
):
    shop_id, other_id, domain = shop.id, other_shop.id, shop.domain
    _queued_work(shop)
    _queued_work(other_shop)
    other_before = _state(other_id)

    res = post_shopify(client, "app/uninstalled", {"id": 1, "domain": domain}, shop=domain)
    assert res.status_code == 200
    run_jobs()

    assert _state(shop_id) == {
        "messages": [
            ("delivered", None),
            ("skipped", "shop_uninstalled"),
            ("skipped", "shop_uninstalled"),
        ],
        "campaigns": [
            ("draft", "draft", None),
            ("scheduled", "cancelled", "App uninstalled"),
            ("sending", "cancelled", "App uninstalled"),
            ("sent", "sent", None),
        ],
        "runs": [("exited", "uninstalled", True)],
        "imports": [("list.csv", "cancelled", True), ("old.csv", "done", True)],
    }
    gone = db.session.get(Shop, shop_id)
    assert gone.uninstalled_at is not None and not gone.is_installed
    assert (
        gone.access_token_enc,
        gone.access_token_expires_at,
        gone.refresh_token_enc,
        gone.refresh_token_expires_at,
    ) == (None, None, None, None)

    assert _state(other_id) == other_before
    other = db.session.get(Shop, other_id)
    assert other.is_installed and other.access_token_enc is not None
    assert [d.status for d in deliveries()] == ["processed"]


def test_uninstall_older_than_a_reinstall_changes_nothing(client, shop, run_jobs):
    """Shopify may deliver the uninstall after the merchant already reinstalled."""
    shop_id, domain = shop.id, shop.domain
    _queued_work(shop)
    before = _state(shop_id)
    post_shopify(
        client,
        "app/uninstalled",
        {"id": 1},
        shop=domain,
        X_Shopify_Triggered_At=(utcnow() - timedelta(hours=1)).isoformat(),
    )
    run_jobs()
    assert _state(shop_id) == before
    again = db.session.get(Shop, shop_id)
    assert again.is_installed and again.access_token_enc is not None


def test_uninstall_for_an_unknown_shop_is_processed_quietly(client, app, run_jobs):
    res = post_shopify(client, "app/uninstalled", {"id": 1}, shop="never-seen.myshopify.com")
    assert res.status_code == 200
    run_jobs()
    assert [(d.status, d.shop_id) for d in deliveries()] == [("processed", None)]


def test_scopes_update_stores_the_current_scopes(client, shop, run_jobs):
    shop_id = shop.id
    post_shopify(
        client,
        "app/scopes_update",
        {
            "id": 9,
            "previous": ["read_customers"],
            "current": ["write_discounts", "read_customers"],
            "updated_at": "2026-03-29T18:00:27Z",
        },
        shop=shop.domain,
    )
    run_jobs()
    assert db.session.get(Shop, shop_id).scopes == "read_customers,write_discounts"


def test_scopes_update_without_scopes_fails_and_keeps_the_payload(client, shop, run_jobs):
    shop_id = shop.id
    post_shopify(client, "app/scopes_update", {"id": 9}, shop=shop.domain)
    run_jobs()
    [row] = deliveries()
    assert (row.status, row.payload) == ("failed", '{"id": 9}')
    assert db.session.scalar(select(Shop.scopes).where(Shop.id == shop_id)) == (
        "read_customers,write_customers"
    )
