"""The periodic tick: one indexed query finds the due runs (the partial index on next_step_at
of active runs), batch after batch within its time budget; runs not due and finished runs are
left alone, and each shop's runs queue that shop's texts."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.dialects import postgresql, sqlite

from shopify_app.extensions import db
from shopify_app.models import FlowRun, Message, Shop, utcnow
from shopify_app.services import flow_triggers, flows
from shopify_app.services.bulk import is_postgresql
from tests.integration.consent_support import add_subscriber, use_sender
from tests.integration.flows_support import enable, flow_shop, runs


def _welcome_runs(shop: Shop, count: int, prefix: str) -> list[int]:
    """`count` subscribers of the shop, each with a welcome run due now."""
    enable(shop, "welcome")
    shop = db.session.get(Shop, shop.id)
    ids = []
    for i in range(count):
        sub = add_subscriber(shop, f"{prefix}{i:04d}")
        ids.append(flow_triggers.subscription_confirmed(shop, sub))
    db.session.commit()
    return ids


def test_the_due_query_is_served_by_the_partial_index(shop):
    """The plan of the tick's query reads ix_flow_run_due (PostgreSQL is told to avoid a
    sequential scan, which it would prefer on a table this small)."""
    query = flows.due_runs_query(utcnow(), flows.TICK_BATCH)
    if is_postgresql(db.session):
        compiled = query.compile(
            dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}
        )
        db.session.execute(text("SET LOCAL enable_seqscan = off"))
        plan = [r[0] for r in db.session.execute(text(f"EXPLAIN {compiled}"))]
    else:
        compiled = query.compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True})
        plan = [r[-1] for r in db.session.execute(text(f"EXPLAIN QUERY PLAN {compiled}"))]
    db.session.rollback()
    assert any("ix_flow_run_due" in line for line in plan), plan


def test_one_tick_takes_every_due_run_batch_after_batch(shop, other_shop):
    """Seven due runs in two shops, with batches of three: one tick, three batches, seven
    texts each in its run's shop. A run not due yet and a finished one are untouched."""
    flow_shop(shop)
    use_sender(other_shop, "+12025550999", smart_sending_hours=0)
    ours = _welcome_runs(shop, 4, "+1202555")
    theirs = _welcome_runs(other_shop, 3, "+1303555")
    later, done = ours[:2]
    at = utcnow() + timedelta(hours=1)
    db.session.execute(update(FlowRun).where(FlowRun.id == later).values(next_step_at=at))
    db.session.execute(
        update(FlowRun).where(FlowRun.id == done).values(status="completed", next_step_at=None)
    )
    extra = _welcome_runs(other_shop, 2, "+1404555")
    db.session.commit()

    report = flows.tick(batch_size=3)
    assert (report.runs, report.batches, report.messages) == (7, 3, 7)
    texts = db.session.execute(select(Message.flow_run_id, Message.shop_id)).all()
    shop_of = {r.id: r.shop_id for r in runs(shop.id) + runs(other_shop.id)}
    assert {run for run, _ in texts} == set(ours[2:] + theirs + extra)
    assert all(shop_id == shop_of[run] for run, shop_id in texts)
    untouched = {r.id: r for r in runs(shop.id)}
    assert (untouched[later].step_index, untouched[later].next_step_at) == (1, at)
    assert untouched[done].status == "completed"
    assert flows.tick().runs == 0


def test_a_tick_out_of_time_leaves_the_rest_to_the_next(shop):
    """No time left after the first batch: the tick stops; the next tick carries on."""
    flow_shop(shop)
    _welcome_runs(shop, 5, "+1202555")
    first = flows.tick(batch_size=2, time_budget=0)
    assert (first.runs, first.batches) == (2, 1)
    rest = flows.tick(batch_size=2)
    assert (rest.runs, rest.messages) == (3, 3)
    assert {r.step_index for r in runs(shop.id)} == {3}


def test_runs_another_tick_holds_are_skipped_not_waited_for(shop):
    """PostgreSQL: a run locked by another tick (FOR UPDATE) is skipped, not walked twice;
    it is taken once the other transaction ends."""
    if not is_postgresql(db.session):
        pytest.skip("row locks: PostgreSQL only (SQLite serialises writers)")
    flow_shop(shop)
    held, *others = _welcome_runs(shop, 3, "+1202555")
    with db.engine.connect() as other_tick, other_tick.begin():
        other_tick.execute(select(FlowRun.id).where(FlowRun.id == held).with_for_update())
        report = flows.tick()
        assert (report.runs, report.messages) == (2, 2)
    # The other transaction ended without walking it: the next tick does.
    assert flows.tick().runs == 1
    walked = db.session.scalars(select(Message.flow_run_id).order_by(Message.id)).all()
    assert sorted(walked) == sorted([*others, held])
