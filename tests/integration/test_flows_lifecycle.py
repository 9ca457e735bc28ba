"""A run's life in the middle: STOP ends it, quiet hours move its text (the engine's rule),
edits reach it at the next step, disabling or uninstalling stops it, holdout walks it silently,
and a step is queued exactly once whatever runs twice."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select, update

from shopify_app.extensions import db
from shopify_app.models import FlowRun, Message, Shop, Subscriber, utcnow
from shopify_app.services import flow_triggers, flows, stats
from tests.integration.consent_support import add_subscriber, inbound
from tests.integration.flows_support import (
    PHONE,
    enable,
    flow_shop,
    flow_texts,
    runs,
    tick_and_send,
    time_passes,
)
from tests.integration.send_support import night_zone


def _welcome_run(shop: Shop, phone: str = PHONE, **flow_changes) -> tuple[int, int]:
    """The welcome flow on and one subscriber's run started; returns (shop id, subscriber id)."""
    shop = flow_shop(shop)
    enable(shop, "welcome", **flow_changes)
    sub = add_subscriber(shop, phone)
    flow_triggers.subscription_confirmed(shop, sub)
    db.session.commit()
    return shop.id, sub.id


def test_stop_mid_flow_ends_it(client, shop, fake_twilio, run_jobs):
    """A STOP texted between the first and second message: the run exits "opted_out" at once
    and the second message never goes."""
    shop_id, _ = _welcome_run(shop)
    tick_and_send(run_jobs)
    [first] = flow_texts(shop_id)
    first_id = first.id
    assert first.status == "sent" and runs(shop_id)[0].step_index == 3

    assert inbound(client, PHONE, "STOP").status_code == 200
    run_jobs()
    [run] = runs(shop_id)
    assert (run.status, run.exit_reason) == ("exited", "opted_out")
    time_passes(days=4)
    tick_and_send(run_jobs)
    assert [m.id for m in flow_texts(shop_id)] == [first_id]
    assert [m.body for m in fake_twilio.messages if "bestsellers" in m.body] == []


def test_opt_out_is_also_checked_when_the_step_comes(shop, fake_twilio, run_jobs):
    """Even if the status changed without the consent service (a bulk fix), the step sees it."""
    shop_id, sub_id = _welcome_run(shop)
    db.session.execute(
        update(Subscriber).where(Subscriber.id == sub_id).values(status="unsubscribed")
    )
    db.session.commit()
    tick_and_send(run_jobs)
    assert runs(shop_id)[0].exit_reason == "opted_out" and flow_texts(shop_id) == []


def test_quiet_hours_move_a_step(shop, fake_twilio, run_jobs):
    """Due at night for the subscriber: the flow queues the text and moves on; the send path
    defers it to the next allowed minute (deferred_reason quiet_hours). Nothing is texted."""
    shop_id, sub_id = _welcome_run(shop)
    zone = night_zone()
    db.session.execute(update(Subscriber).where(Subscriber.id == sub_id).values(timezone=zone))
    db.session.commit()
    tick_and_send(run_jobs)

    [text] = flow_texts(shop_id)
    assert (text.status, text.deferred_reason) == ("pending", "quiet_hours")
    assert text.due_at > utcnow() + timedelta(hours=1)
    local = text.due_at.astimezone(ZoneInfo(zone))
    assert 8 <= local.hour < 21
    assert fake_twilio.messages == [] or all("joining" not in m.body for m in fake_twilio.messages)
    assert runs(shop_id)[0].step_index == 3  # the run is not held up by the deferral


def test_flow_edited_mid_run(api, shop, fake_twilio, run_jobs):
    """After the first text, the merchant rewrites the second one through the API: the run
    (already waiting) sends the new text when it gets there."""
    shop_id, _ = _welcome_run(shop)
    tick_and_send(run_jobs)
    flow_id = runs(shop_id)[0].flow_id
    steps = api.get(f"/api/flows/{flow_id}").get_json()["steps"]
    steps[3]["body"] = "New arrivals just for you, {first_name|friend}: {shop_url}"
    assert api.patch(f"/api/flows/{flow_id}", json={"steps": steps}).status_code == 200

    time_passes(days=3, minutes=1)
    tick_and_send(run_jobs)
    first, second = flow_texts(shop_id)
    assert second.flow_step == 3 and second.status == "sent"
    assert "New arrivals just for you, friend: http://localhost/r/" in second.body
    assert runs(shop_id)[0].status == "completed"


def test_removing_the_steps_ahead_completes_runs_cleanly(api, shop, fake_twilio, run_jobs):
    """Steps removed beyond where a run stands: it completes at its next step, texting
    nothing more."""
    shop_id, _ = _welcome_run(shop)
    tick_and_send(run_jobs)
    flow_id = runs(shop_id)[0].flow_id
    steps = api.get(f"/api/flows/{flow_id}").get_json()["steps"][:2]
    assert api.patch(f"/api/flows/{flow_id}", json={"steps": steps}).status_code == 200
    time_passes(days=4)
    tick_and_send(run_jobs)
    [run] = runs(shop_id)
    assert (run.status, run.exit_reason) == ("completed", None)
    assert len(flow_texts(shop_id)) == 1


def test_disabled_flow_runs_exit_at_their_next_step(api, shop, fake_twilio, run_jobs):
    """Turning the flow off ends its runs ("flow_disabled") when each reaches its next step."""
    shop_id, _ = _welcome_run(shop)
    tick_and_send(run_jobs)
    flow_id = runs(shop_id)[0].flow_id
    assert api.post(f"/api/flows/{flow_id}/disable").get_json()["enabled"] is False
    assert runs(shop_id)[0].status == "active"  # untouched until its step comes
    time_passes(days=4)
    tick_and_send(run_jobs)
    assert runs(shop_id)[0].exit_reason == "flow_disabled"
    assert len(flow_texts(shop_id)) == 1


def test_uninstalled_shop_runs_exit(shop, fake_twilio, run_jobs):
    """A shop that uninstalled: its runs end "uninstalled" at their step, texting nothing."""
    shop_id, _ = _welcome_run(shop)
    db.session.get(Shop, shop_id).uninstalled_at = utcnow()
    db.session.commit()
    tick_and_send(run_jobs)
    assert runs(shop_id)[0].exit_reason == "uninstalled" and flow_texts(shop_id) == []


def test_holdout_runs_walk_without_texting(shop, fake_twilio, run_jobs):
    """holdout_percent 50: a deterministic half of the subscribers is held out; their runs
    walk to the end and send nothing; the flow's stats compare the two groups."""
    shop = flow_shop(shop)
    shop_id = shop.id
    flow = enable(shop, "welcome", holdout_percent=50)
    flow_id = flow.id
    subs = [add_subscriber(shop, f"+1202555{i:04d}") for i in range(20)]
    for sub in subs:
        flow_triggers.subscription_confirmed(shop, sub)
    db.session.commit()
    sub_ids = {s.id for s in subs}
    expected = {i for i in sub_ids if flows.in_holdout(i, flow_id, 50)}
    assert 0 < len(expected) < 20
    assert {r.subscriber_id for r in runs(shop_id) if r.held_out} == expected

    tick_and_send(run_jobs)
    time_passes(days=4)
    tick_and_send(run_jobs)
    texted = {m.subscriber_id for m in flow_texts(shop_id)}
    assert texted == sub_ids - expected
    assert {r.status for r in runs(shop_id)} == {"completed"}
    report = stats.flow_stats(shop_id, flow_id)
    assert report["holdout"]["held_out"]["recipients"] == len(expected)
    assert report["holdout"]["treated"]["recipients"] == 20 - len(expected)


def test_holdout_hash_is_the_same_in_python_and_sql(shop):
    """The win-back scan picks its held-out subscribers in SQL; the triggers in Python."""
    subs = [add_subscriber(shop, f"+1303555{i:04d}") for i in range(40)]
    ids = [s.id for s in subs]
    rows = db.session.execute(
        select(Subscriber.id, flows.holdout_bucket_sql(Subscriber.id, 77)).where(
            Subscriber.id.in_(ids)
        )
    ).all()
    assert {i: int(b) for i, b in rows} == {i: flows.holdout_bucket(i, 77) for i in ids}


def test_a_step_is_queued_once_whatever_runs_twice(shop, fake_twilio, run_jobs):
    """The same step performed twice (a tick retried after the run was reset) finds its
    Message already there: (run, step) is unique."""
    shop_id, _ = _welcome_run(shop)
    flows.tick()
    run = runs(shop_id)[0]
    db.session.execute(
        update(FlowRun)
        .where(FlowRun.id == run.id)
        .values(step_index=1, next_step_at=utcnow() - timedelta(minutes=1))
    )
    db.session.commit()
    assert flows.tick().messages == 0
    assert (
        db.session.scalar(select(Message.id).where(Message.flow_run_id == run.id).limit(1))
        is not None
    )
    assert len(flow_texts(shop_id)) == 1
