"""Editing a flow while runs are in it: steps keep their ids, so a run stays at the step it was
about to perform when steps are inserted, removed or moved before it, a changed step reaches
every run that has not got to it, and no step is texted twice to one run. Through the API and
the tick, with the send workers against the Twilio stand-in."""

from __future__ import annotations

from typing import Any

import pytest

from shopify_app.extensions import db
from shopify_app.models import Flow, Shop, utcnow
from shopify_app.services import flow_triggers, flows
from shopify_app.services.flow_defaults import (
    FIRST_NEW_STEP_ID,
    assign_step_ids,
    default_flow,
    reposition,
)
from tests.conftest import ApiClient
from tests.integration.consent_support import add_subscriber
from tests.integration.flows_support import (
    PHONE,
    enable,
    flow_shop,
    flow_texts,
    runs,
    tick_and_send,
    time_passes,
)

W0 = {"id": 0, "type": "wait", "minutes": 0}
M1 = {"id": 1, "type": "message", "body": "one", "discount": None}
W2 = {"id": 2, "type": "wait", "minutes": 60}
M3 = {"id": 3, "type": "message", "body": "three", "discount": None}
OLD = [W0, M1, W2, M3]


def _bare(*steps: dict[str, Any]) -> list[dict[str, Any]]:
    """The steps as an editor that does not keep ids sends them."""
    return [{k: v for k, v in s.items() if k != "id"} for s in steps]


# --- the rules, on their own ---------------------------------------------------------------


def test_default_steps_have_their_positions_as_ids():
    """Ids equal to positions: texts of flows stored before ids existed stay theirs."""
    for kind in ("abandoned_checkout", "welcome", "post_purchase", "winback"):
        steps = default_flow(kind)["steps"]
        assert [s["id"] for s in steps] == list(range(len(steps)))


def test_ids_sent_back_are_kept_and_steps_sent_without_one_are_new():
    new = {"type": "message", "body": "new", "discount": None}
    stored = assign_step_ids([M3, new, W0], [3, None, 0], OLD)  # reordered, one added, two removed
    assert [s["id"] for s in stored[::2]] == [3, 0]
    assert stored[1]["id"] >= FIRST_NEW_STEP_ID


def test_steps_without_ids_match_by_content_then_position():
    edited = {"type": "message", "body": "three, rewritten", "discount": None}
    # The first text removed and the last rewritten, by an editor that drops ids.
    stored = assign_step_ids(_bare(W0, W2, edited), [None] * 3, OLD)
    # W0 and W2 by content; the rewritten text by position (index 2 was a wait: no match).
    assert [s["id"] for s in stored[:2]] == [0, 2]
    assert stored[2]["id"] >= FIRST_NEW_STEP_ID
    # Legacy steps with no ids at all are known by their positions.
    legacy = [{k: v for k, v in s.items() if k != "id"} for s in OLD]
    stored = assign_step_ids(_bare(W0, M1, W2, edited), [None] * 4, legacy)
    assert [s["id"] for s in stored] == [0, 1, 2, 3]


def test_unknown_or_duplicate_ids_become_new_steps():
    stored = assign_step_ids([M1, M1], [1, 1], OLD)
    assert stored[0]["id"] == 1 and stored[1]["id"] >= FIRST_NEW_STEP_ID
    stored = assign_step_ids([M1], [77], OLD)
    assert stored[0]["id"] >= FIRST_NEW_STEP_ID


@pytest.mark.parametrize(
    ("new", "expected"),
    [
        # Unchanged: every position stays.
        (OLD, {0: 0, 1: 1, 2: 2, 3: 3, 4: 4}),
        # Two steps inserted at the front: runs under way move two on; one that has done
        # nothing yet starts with them.
        (
            [{"id": 1500, "type": "message"}, {"id": 1501, "type": "wait"}, *OLD],
            {0: 0, 1: 3, 2: 4, 3: 5, 4: 6},
        ),
        # A wait inserted before the last text: a run in the wait before it has not reached
        # it, so it waits that too; one past the last text does not.
        ([W0, M1, W2, {"id": 1600, "type": "wait"}, M3], {0: 0, 1: 1, 2: 2, 3: 3, 4: 5}),
        # The first text and its wait removed: a run at the last text stays at it.
        ([W0, M3], {0: 0, 1: 1, 2: 1, 3: 1, 4: 2}),
        # The step a run was about to perform removed: it goes on with the next one.
        ([W0, M1, W2], {0: 0, 1: 1, 2: 2, 3: 3, 4: 3}),
        # Reordered: a run follows its step to where it now stands.
        ([W0, M3, W2, M1], {0: 0, 1: 3, 2: 2, 3: 1, 4: 4}),
        # Everything replaced: runs under way complete rather than start over.
        # (one that has texted nothing yet starts the new steps).
        ([{"id": 2000, "type": "message"}], {0: 0, 1: 0, 2: 1, 3: 1, 4: 1}),
    ],
)
def test_reposition(new, expected):
    assert reposition(OLD, new) == expected


# --- runs under way -------------------------------------------------------------------------


def _welcome_after_first_text(shop: Shop, run_jobs) -> tuple[int, int]:
    """The welcome flow on, one subscriber's first text sent, the run waiting 3 days for the
    follow-up (step 3). Returns (shop id, flow id)."""
    shop = flow_shop(shop)
    shop_id = shop.id
    flow_id = enable(shop, "welcome").id
    sub = add_subscriber(shop, PHONE)
    flow_triggers.subscription_confirmed(shop, sub)
    db.session.commit()
    tick_and_send(run_jobs)
    [run] = runs(shop_id)
    assert (run.step_index, [m.flow_step for m in flow_texts(shop_id)]) == (3, [1])
    return shop_id, flow_id


def test_steps_inserted_before_a_run_are_not_performed_by_it(
    api: ApiClient, shop: Shop, fake_twilio, run_jobs
):
    """A new first text (and a wait) put in front: the run waiting for the follow-up moves
    with it (index 3 -> 5), sends the follow-up on time, and never the inserted text."""
    shop_id, flow_id = _welcome_after_first_text(shop, run_jobs)
    steps = api.get(f"/api/flows/{flow_id}").get_json()["steps"]
    inserted = [
        {"type": "message", "body": "A new opening text: {shop_url}", "discount": None},
        {"type": "wait", "minutes": 60},
    ]
    resp = api.patch(f"/api/flows/{flow_id}", json={"steps": inserted + steps})
    assert resp.status_code == 200, resp.get_json()
    stored = resp.get_json()["steps"]
    assert [s["id"] for s in stored[2:]] == [0, 1, 2, 3]
    [run] = runs(shop_id)
    assert run.step_index == 5

    time_passes(days=3, minutes=1)
    tick_and_send(run_jobs)
    texts = flow_texts(shop_id)
    assert [m.flow_step for m in texts] == [1, 3] and texts[1].status == "sent"
    assert "bestsellers" in texts[1].body
    assert not any("new opening" in m.body for m in fake_twilio.messages)
    assert runs(shop_id)[0].status == "completed"
    # Results per step follow the steps to where they stand now.
    results = api.get(f"/api/flows/{flow_id}").get_json()["stats"]["steps"]
    assert [(s["step"], s["step_id"], s["sent"]) for s in results] == [(3, 1, 1), (5, 3, 1)]


def test_removing_a_step_before_a_run_keeps_its_next_text(
    api: ApiClient, shop: Shop, fake_twilio, run_jobs
):
    """The admin editor sends steps without ids: the first text (already sent) and the wait
    before it are removed. The run still gets the follow-up, at its time, and nothing else."""
    shop_id, flow_id = _welcome_after_first_text(shop, run_jobs)
    steps = api.get(f"/api/flows/{flow_id}").get_json()["steps"]
    edited = _bare(steps[2], steps[3])
    assert api.patch(f"/api/flows/{flow_id}", json={"steps": edited}).status_code == 200
    [run] = runs(shop_id)
    assert run.step_index == 1  # at the follow-up, now second; its wait is not started again

    time_passes(days=2)
    assert tick_and_send(run_jobs).messages == 0  # the 3-day wait still runs from before
    time_passes(days=1, minutes=1)
    tick_and_send(run_jobs)
    assert [m.flow_step for m in flow_texts(shop_id)] == [1, 3]
    assert runs(shop_id)[0].status == "completed"


def test_a_step_moved_after_a_run_is_not_texted_twice(
    api: ApiClient, shop: Shop, fake_twilio, run_jobs
):
    """The first text moved to the end: the run, which already got it, sends the follow-up
    and reaches the moved text again — which finds its text already there and sends nothing."""
    shop_id, flow_id = _welcome_after_first_text(shop, run_jobs)
    w0, m1, w2, m3 = api.get(f"/api/flows/{flow_id}").get_json()["steps"]
    moved = [w0, w2, m3, {**w2, "id": None, "minutes": 0}, m1]
    resp = api.patch(f"/api/flows/{flow_id}", json={"steps": moved})
    assert resp.status_code == 200, resp.get_json()
    assert runs(shop_id)[0].step_index == 2

    time_passes(days=3, minutes=1)
    tick_and_send(run_jobs)
    assert [m.flow_step for m in flow_texts(shop_id)] == [1, 3]
    assert len([m for m in fake_twilio.messages if "Thanks for joining" in m.body]) == 1
    assert runs(shop_id)[0].status == "completed"


def test_a_wait_inserted_ahead_of_a_run_delays_its_next_text(
    api: ApiClient, shop: Shop, fake_twilio, run_jobs
):
    """A day's wait added before the follow-up, while the run waits for it: the follow-up
    comes a day later than it would have."""
    shop_id, flow_id = _welcome_after_first_text(shop, run_jobs)
    steps = api.get(f"/api/flows/{flow_id}").get_json()["steps"]
    steps.insert(3, {"type": "wait", "minutes": 24 * 60})
    assert api.patch(f"/api/flows/{flow_id}", json={"steps": steps}).status_code == 200
    assert runs(shop_id)[0].step_index == 3  # at the new wait, which starts when W2 ends

    time_passes(days=3, minutes=1)
    assert tick_and_send(run_jobs).messages == 0
    [run] = runs(shop_id)
    assert run.step_index == 4
    time_passes(days=1)
    tick_and_send(run_jobs)
    assert [m.flow_step for m in flow_texts(shop_id)] == [1, 3]
    assert runs(shop_id)[0].status == "completed"


def test_an_edited_wait_reaches_runs_not_yet_in_it(api: ApiClient, shop: Shop, run_jobs):
    """The abandoned-checkout reminder's wait shortened from 24 to 2 hours: a run still in
    its first wait uses the new length once it gets there."""
    shop = flow_shop(shop)
    shop_id = shop.id
    flow = enable(shop, "abandoned_checkout")
    flow_id = flow.id
    sub = add_subscriber(shop, PHONE)
    db.session.commit()
    flow = db.session.get(Flow, flow_id)
    flows.start_run(
        db.session.get(Shop, shop_id),
        flow,
        sub.id,
        "checkout:edited-wait",
        trigger_at=utcnow(),
        context={"recovery_url": "https://tidings-test.myshopify.com/1/checkouts/ac/x/recover"},
    )
    db.session.commit()
    steps = api.get(f"/api/flows/{flow_id}").get_json()["steps"]
    steps[2]["minutes"] = 120
    assert api.patch(f"/api/flows/{flow_id}", json={"steps": steps}).status_code == 200
    assert runs(shop_id)[0].step_index == 1  # unchanged: the edit is ahead of it

    time_passes(minutes=31)
    tick_and_send(run_jobs)
    [run] = runs(shop_id)
    assert run.step_index == 3
    assert abs((run.next_step_at - utcnow()).total_seconds() - 119 * 60) < 90
