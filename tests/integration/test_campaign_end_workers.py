"""Ending a campaign mid-send, with real worker processes and the Twilio stand-in.

The merchant presses "End" while two workers are sending: once the end has answered, the
stand-in receives nothing more for the campaign after a few seconds (texts already on the
wire may land), every text that left stays counted, and every other row is skipped as
"cancelled". This process plays the scheduler (the send sweep and the campaign watch).
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from flask import Flask
from sqlalchemy import func, select

from jobs import campaigns as campaign_jobs
from jobs import sending as send_jobs
from shopify_app.extensions import db
from shopify_app.models import Campaign, Message
from shopify_app.providers import set_provider
from tests.fakes.twilio_server import FakeTwilio
from tests.faults.harness import ROOT, Workers, require_shared_database, worker_env
from tests.integration.campaign_support import EVERYONE
from tests.integration.send_support import add_subscribers, fast_shop

pytestmark = pytest.mark.slow

RECIPIENTS = 1500
END_AFTER = 150  # texts received by the stand-in before the merchant ends the campaign
GRACE_SECONDS = 3.0  # "within a few seconds": texts already on the wire when End answered


@pytest.fixture
def fake() -> Iterator[FakeTwilio]:
    # ~40 texts/s over two workers: the send lasts well beyond the moment it is ended.
    with FakeTwilio(auth_token="test-twilio-token", seed=5, latency_ms=150) as server:
        yield server


@pytest.fixture
def workers(app: Flask, fake: FakeTwilio) -> Iterator[Workers]:
    require_shared_database()
    env = worker_env(app, fake)
    env["SEND_CONCURRENCY"] = "3"
    pool = Workers(env)
    command = [sys.executable, "-m", "flask", "--app", "shopify_app:create_app", "worker"]
    for _ in range(2):  # every queue: the campaign start (default) and the sends
        pool.procs.append(subprocess.Popen(command, cwd=ROOT, env=env))
    yield pool
    pool.stop()
    set_provider(app, None)


def tick() -> None:
    """What the periodic scheduler does each second for sends and campaigns."""
    try:
        send_jobs.sweep()
        campaign_jobs.watch()
    finally:
        db.session.remove()


def open_rows(campaign_id: int) -> int:
    count = db.session.scalar(
        select(func.count())
        .select_from(Message)
        .where(Message.campaign_id == campaign_id, Message.status.in_(("pending", "sending")))
    )
    db.session.remove()
    return int(count or 0)


def outcomes(campaign_id: int) -> dict[tuple[str, str | None], int]:
    rows = db.session.execute(
        select(Message.status, Message.skip_reason, func.count())
        .where(Message.campaign_id == campaign_id)
        .group_by(Message.status, Message.skip_reason)
    ).all()
    db.session.remove()
    return {(status, reason): int(n) for status, reason, n in rows}


def test_end_mid_send_stops_the_stand_in_receiving(
    api, app: Flask, shop, fake: FakeTwilio, workers: Workers
) -> None:
    fast_shop(shop, smart_sending_hours=0)
    add_subscribers(shop, RECIPIENTS)
    phones = {f"+1202555{i:04d}" for i in range(RECIPIENTS)}
    made = api.post(
        "/api/campaigns",
        json={
            "name": "Flash sale",
            "body": "Hi {first_name}, flash sale today.",
            "rules": EVERYONE,
        },
    )
    assert made.status_code == 201, made.get_json()
    cid = made.get_json()["id"]
    started = api.post(f"/api/campaigns/{cid}/send-now")
    assert started.status_code == 200, started.get_json()

    deadline = time.monotonic() + 120
    while len(fake.messages) < END_AFTER:
        assert time.monotonic() < deadline, f"only {len(fake.messages)} texts arrived"
        workers.supervise()
        tick()
        time.sleep(0.2)

    ended = api.post(f"/api/campaigns/{cid}/end")
    ended_at = time.time()
    assert ended.status_code == 200, ended.get_json()
    assert ended.get_json()["status"] == "cancelled"
    assert ended.get_json()["status_label"] == "Ended"
    at_end = len(fake.messages)
    assert at_end < RECIPIENTS - 200, "the send finished before it could be ended"

    # Keep the scheduler ticking (as production would) well past the grace period.
    settle = time.monotonic() + GRACE_SECONDS + 5
    while time.monotonic() < settle or open_rows(cid):
        assert time.monotonic() < settle + 60, f"{open_rows(cid)} rows still open"
        tick()
        time.sleep(0.5)

    received = [m for m in list(fake.messages) if m.to in phones]
    late = [m for m in received if m.created_at > ended_at + GRACE_SECONDS]
    assert late == [], f"{len(late)} texts reached the stand-in after the end"
    assert len(received) < RECIPIENTS // 2  # the rest never left

    # What left stays counted; everything else was skipped as cancelled.
    found = outcomes(cid)
    sent = sum(n for (status, _), n in found.items() if status in ("sent", "delivered"))
    assert sent == len(received) == len({m.to for m in received})
    assert found.get(("skipped", "cancelled"), 0) == RECIPIENTS - sent
    assert sum(found.values()) == RECIPIENTS
    progress = api.get(f"/api/campaigns/{cid}/progress").get_json()
    assert progress["status"] == "cancelled"
    assert progress["sent"] == sent and progress["pending"] == 0
    assert progress["skipped"] == RECIPIENTS - sent
    campaign = db.session.get(Campaign, cid)
    assert campaign.status == "cancelled" and campaign.cancelled_at is not None
    assert campaign.status_reason == "Ended by the merchant"
    db.session.remove()
