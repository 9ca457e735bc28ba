"""The campaign lifecycle: every allowed move, every refused one, and the API around them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm.attributes import set_committed_value

from jobs import campaigns as campaign_jobs
from shopify_app.extensions import db
from shopify_app.models import Campaign, Message, Shop, utcnow
from shopify_app.services import campaigns
from shopify_app.services.campaigns import TRANSITIONS, InvalidTransition
from tests.integration.campaign_support import (
    EVERYONE,
    aware,
    campaign,
    reload,
    statuses,
    subscribers,
)
from tests.integration.send_support import fast_shop, id_of

STATUSES = ("draft", "scheduled", "sending", "sent", "cancelled")


@pytest.mark.parametrize("action", sorted(TRANSITIONS))
@pytest.mark.parametrize("status", STATUSES)
def test_transition_table(shop: Shop, action: str, status: str) -> None:
    """Each action moves exactly the statuses the table allows, and refuses the others naming
    the move."""
    row = campaign(shop, status=status)
    sources, target = TRANSITIONS[action]
    if status in sources:
        campaigns.transition(row, action)
        db.session.commit()
        assert reload(row).status == target
    else:
        with pytest.raises(InvalidTransition) as caught:
            campaigns.transition(row, action)
        assert f"{status} → {target}" in caught.value.message
        assert reload(row).status == status


def test_transition_is_compare_and_set(shop: Shop) -> None:
    """A move decided on a stale status loses: the tick and a click cannot both win."""
    row = campaign(shop, status="scheduled")
    stale = db.session.get(Campaign, row.id)
    db.session.execute(
        Campaign.__table__.update().where(Campaign.id == row.id).values(status="draft")
    )
    db.session.commit()
    set_committed_value(stale, "status", "scheduled")  # what this process still believes
    with pytest.raises(InvalidTransition):
        campaigns.transition(stale, "start")
    assert reload(row).status == "draft"


def test_create_edit_schedule_switch_off_and_on(api, shop: Shop) -> None:
    """A draft is created and edited; a naive time is read in the shop's zone and shown in
    both; the switcher turns it off (draft) and on again."""
    made = api.post(
        "/api/campaigns", json={"name": "Spring", "body": "Hello {first_name}", "rules": EVERYONE}
    )
    assert made.status_code == 201, made.get_json()
    body = made.get_json()
    assert body["status"] == "draft" and body["status_label"] == "Draft"
    assert body["holdout_percent"] == 0
    cid = body["id"]
    edited = api.patch(f"/api/campaigns/{cid}", json={"body": "Hi {first_name}!"})
    assert edited.status_code == 200 and edited.get_json()["body"] == "Hi {first_name}!"
    subscribers(shop, 2)
    local = (utcnow() + timedelta(days=2)).astimezone(campaigns.shop_zone(shop))
    naive = local.replace(tzinfo=None, second=0, microsecond=0).isoformat()
    scheduled = api.post(f"/api/campaigns/{cid}/schedule", json={"send_at": naive})
    assert scheduled.status_code == 200, scheduled.get_json()
    data = scheduled.get_json()
    assert data["status"] == "scheduled"
    assert data["send_at_local"].startswith(naive)
    assert aware(data["send_at"]) == local.replace(second=0, microsecond=0)
    assert data["timezone"] == "America/New_York"
    off = api.post(f"/api/campaigns/{cid}/unschedule")
    assert off.status_code == 200 and off.get_json()["status"] == "draft"
    assert off.get_json()["send_at"] == data["send_at"]  # kept for switching on again
    on = api.post(f"/api/campaigns/{cid}/schedule", json={})
    assert on.get_json()["status"] == "scheduled"
    # A time with an offset is taken as given.
    moved = api.patch(
        f"/api/campaigns/{cid}", json={"send_at": (utcnow() + timedelta(days=3)).isoformat()}
    )
    assert moved.status_code == 200


def test_schedule_refuses_a_past_time(api, shop: Shop) -> None:
    """A time already gone is refused; send now is the way to go at once."""
    subscribers(shop, 1)
    row = campaign(shop)
    past = (utcnow() - timedelta(hours=1)).isoformat()
    answer = api.post(f"/api/campaigns/{row.id}/schedule", json={"send_at": past})
    assert answer.status_code == 422
    assert answer.get_json()["error"]["details"]["field"] == "send_at"


def test_send_now_sends_and_finishes(api, shop: Shop, run_jobs) -> None:
    """Send now starts at once; when every row has an outcome the watch marks it sent."""
    fast_shop(shop)
    subscribers(shop, 3)
    row = campaign(shop)
    started = api.post(f"/api/campaigns/{row.id}/send-now")
    assert started.status_code == 200, started.get_json()
    assert started.get_json()["status"] == "sending"
    run_jobs()
    assert statuses(id_of(row)) == {"sent": 3}
    assert campaign_jobs.watch()["finished"] == 1
    done = reload(row)
    assert done.status == "sent" and done.finished_at is not None
    assert done.recipients_count == 3
    progress = api.get(f"/api/campaigns/{done.id}/progress").get_json()
    assert progress["total"] == 3 and progress["sent"] == 3 and progress["pending"] == 0
    assert progress["stats"]["sent"] == 3


def test_scheduled_campaign_starts_when_due(shop: Shop, run_jobs) -> None:
    """The tick moves a scheduled campaign whose time came to sending, through the table."""
    fast_shop(shop)
    subscribers(shop, 2)
    due = campaign(shop, status="scheduled", send_at=utcnow() - timedelta(seconds=5))
    later = campaign(shop, status="scheduled", send_at=utcnow() + timedelta(hours=1))
    assert campaign_jobs.start_due() == 1
    assert reload(due).status == "sending" and reload(later).status == "scheduled"
    run_jobs()
    assert statuses(id_of(due)) == {"sent": 2}


def test_never_sent_while_rows_are_open(shop: Shop) -> None:
    """'Sent' means every recipient row has an outcome: an open row keeps it sending."""
    row = campaign(shop, status="sending", audience_complete_at=utcnow(), materialized_at=utcnow())
    sub = subscribers(shop, 1)[0]
    db.session.add(
        Message(
            shop_id=shop.id,
            subscriber_id=sub.id,
            campaign_id=row.id,
            kind="campaign",
            status="sending",
            due_at=utcnow(),
        )
    )
    db.session.commit()
    assert campaigns.finish_if_done(reload(row)) is False
    assert reload(row).status == "sending"
    msg = db.session.scalars(select(Message).where(Message.campaign_id == row.id)).one()
    msg.status = "delivered"
    db.session.commit()
    assert campaigns.finish_if_done(reload(row)) is True
    assert reload(row).status == "sent"


def test_not_finished_before_every_row_exists(shop: Shop) -> None:
    """Rows not materialised yet (or an A/B rest still waiting) are not 'nothing left'."""
    row = campaign(shop, status="sending", materialized_at=utcnow())
    assert campaigns.finish_if_done(reload(row)) is False
    assert reload(row).status == "sending"


@pytest.mark.parametrize("status", ["sending", "sent", "cancelled"])
def test_edit_refused_after_start(api, shop: Shop, status: str) -> None:
    """Edit while sending (or after) is refused with 409 invalid_transition."""
    row = campaign(shop, status=status)
    answer = api.patch(f"/api/campaigns/{row.id}", json={"body": "changed"})
    assert answer.status_code == 409
    error = answer.get_json()["error"]
    assert error["code"] == "invalid_transition" and status in error["message"]
    assert reload(row).body != "changed"
    variants = api.put(
        f"/api/campaigns/{row.id}/variants", json={"variants": [{"body": "a"}, {"body": "b"}]}
    )
    assert variants.status_code == 409


@pytest.mark.parametrize("status", ["sending", "sent", "cancelled"])
def test_delete_refused_after_start(api, shop: Shop, status: str) -> None:
    """Delete after sent (or while sending, or ended) is refused even when confirmed."""
    row = campaign(shop, status=status)
    answer = api.delete(f"/api/campaigns/{row.id}?confirm=true")
    assert answer.status_code == 409
    assert answer.get_json()["error"]["code"] == "invalid_transition"
    assert reload(row) is not None


@pytest.mark.parametrize("status", ["draft", "scheduled"])
def test_delete_needs_confirmation(api, shop: Shop, status: str) -> None:
    """Without confirm=true nothing is deleted (400); with it the campaign is gone."""
    row = campaign(shop, status=status, send_at=utcnow() + timedelta(days=1))
    refused = api.delete(f"/api/campaigns/{row.id}")
    assert refused.status_code == 400
    assert refused.get_json()["error"]["code"] == "confirmation_required"
    assert reload(row) is not None
    assert api.delete(f"/api/campaigns/{row.id}?confirm=true").status_code == 204
    assert reload(row) is None


@pytest.mark.parametrize(
    ("status", "path"),
    [
        ("draft", "end"),
        ("scheduled", "end"),
        ("sent", "end"),
        ("cancelled", "end"),
        ("draft", "unschedule"),
        ("sending", "unschedule"),
        ("sent", "send-now"),
        ("sending", "send-now"),
        ("cancelled", "send-now"),
        ("sending", "schedule"),
        ("sent", "schedule"),
    ],
)
def test_forbidden_moves_through_the_api(api, shop: Shop, status: str, path: str) -> None:
    """End a draft, unschedule a draft, send a sent campaign again...: 409 naming from/to."""
    subscribers(shop, 1)
    row = campaign(shop, status=status, send_at=utcnow() + timedelta(days=1))
    answer = api.post(f"/api/campaigns/{row.id}/{path}", json={})
    assert answer.status_code == 409, answer.get_json()
    error = answer.get_json()["error"]
    assert error["code"] == "invalid_transition"
    assert error["details"]["from"] == status
    assert f"{status} →" in error["message"]
    assert reload(row).status == status


def test_end_skips_waiting_rows_and_keeps_sent_ones(api, shop: Shop) -> None:
    """Ending: the status first, then every waiting row skipped 'cancelled'; sent rows stay."""
    row = campaign(shop, status="sending", materialized_at=utcnow(), audience_complete_at=utcnow())
    subs = subscribers(shop, 4)
    for i, sub in enumerate(subs):
        db.session.add(
            Message(
                shop_id=shop.id,
                subscriber_id=sub.id,
                campaign_id=row.id,
                kind="campaign",
                status="sent" if i < 2 else "pending",
                due_at=utcnow(),
                sent_at=utcnow() if i < 2 else None,
            )
        )
    db.session.commit()
    ended = api.post(f"/api/campaigns/{row.id}/end")
    assert ended.status_code == 200
    assert ended.get_json()["status"] == "cancelled"
    assert ended.get_json()["status_label"] == "Ended"
    assert statuses(row.id) == {"sent": 2, "skipped": 2}
    reasons = set(
        db.session.scalars(
            select(Message.skip_reason).where(
                Message.campaign_id == row.id, Message.status == "skipped"
            )
        )
    )
    assert reasons == {"cancelled"}


def test_rows_of_an_ended_campaign_are_skipped_at_claim(shop: Shop, run_jobs) -> None:
    """The send path re-checks the campaign when it claims: an ended campaign's row that was
    still pending (queued after the end's UPDATE) is skipped, never sent."""
    from shopify_app.services.sending import run

    fast_shop(shop)
    row = campaign(shop, status="cancelled")
    sub = subscribers(shop, 1)[0]
    db.session.add(
        Message(
            shop_id=shop.id,
            subscriber_id=sub.id,
            campaign_id=row.id,
            kind="campaign",
            status="pending",
            due_at=utcnow(),
        )
    )
    db.session.commit()
    report = run(shop.id)
    assert report.sent == 0 and report.reasons.get("cancelled") == 1
    assert statuses(row.id) == {"skipped": 1}


def test_send_now_refuses_what_the_review_blocks(api, shop: Shop) -> None:
    """No audience chosen → 422 not_sendable with the issue; the campaign stays a draft."""
    row = campaign(shop)
    row.audience = {}
    db.session.commit()
    answer = api.post(f"/api/campaigns/{row.id}/send-now")
    assert answer.status_code == 422
    issues = answer.get_json()["error"]["details"]["issues"]
    assert [i["code"] for i in issues] == ["no_audience"]
    assert reload(row).status == "draft"


def test_list_and_filter(api, shop: Shop) -> None:
    """Newest first; a status filter."""
    first = campaign(shop, name="One")
    second = campaign(shop, name="Two", status="sent")
    items = api.get("/api/campaigns").get_json()["items"]
    assert [c["id"] for c in items] == [second.id, first.id]
    sent = api.get("/api/campaigns?status=sent").get_json()["items"]
    assert [c["id"] for c in sent] == [second.id]


def test_every_route_is_in_the_openapi_document(client) -> None:
    """The campaign and segment API, each route with its methods, in /api/openapi.json."""
    paths = client.get("/api/openapi.json").get_json()["paths"]
    expected = {
        "/api/campaigns": {"get", "post"},
        "/api/campaigns/{campaign_id}": {"get", "patch", "delete"},
        "/api/campaigns/{campaign_id}/schedule": {"post"},
        "/api/campaigns/{campaign_id}/unschedule": {"post"},
        "/api/campaigns/{campaign_id}/send-now": {"post"},
        "/api/campaigns/{campaign_id}/end": {"post"},
        "/api/campaigns/{campaign_id}/review": {"get"},
        "/api/campaigns/{campaign_id}/progress": {"get"},
        "/api/campaigns/{campaign_id}/stats": {"get"},
        "/api/campaigns/{campaign_id}/variants": {"get", "put"},
        "/api/campaigns/{campaign_id}/winner": {"post"},
        "/api/segments": {"get", "post"},
        "/api/segments/{segment_id}": {"get", "patch", "delete"},
        "/api/segments/{segment_id}/count": {"get"},
        "/api/segments/count": {"post"},
        "/api/segments/builtins": {"get"},
        "/api/segments/fields": {"get"},
    }
    for path, methods in expected.items():
        assert path in paths, path
        assert methods <= set(paths[path]), (path, set(paths[path]))
