"""A campaign the merchant ends while it is sending: what was not yet handed to Twilio stays.

The campaigns service commits `cancelled` first and then skips the rows still `pending`; the
send path owns the rest — rows it already claimed are checked against the campaign's status
before their first submission and about once a second after, and are skipped "cancelled"
instead of being sent.
"""

from __future__ import annotations

import threading
from typing import Any

from flask import Flask

from shopify_app.extensions import db
from shopify_app.models import Campaign
from shopify_app.providers import set_provider
from shopify_app.services import campaigns, sending
from shopify_app.services import sending as sending_module
from tests.integration.send_support import (
    add_campaign,
    add_campaign_messages,
    add_subscribers,
    fast_shop,
    make_provider,
    messages,
)


def _end(app: Flask, campaign_id: int) -> None:
    """The merchant's "End" (services/campaigns.end) on its own session, as a request would."""
    with app.app_context():
        campaigns.end(db.session.get(Campaign, campaign_id))
        db.session.remove()


def test_end_between_claim_and_submit_sends_nothing(app, shop, fake_twilio, monkeypatch):
    """The end commits after this batch was claimed and checked, before its first submission:
    none of the claimed rows reaches Twilio; each is skipped "cancelled"."""
    fast_shop(shop)
    campaign = add_campaign(shop)
    campaign_id = campaign.id
    add_campaign_messages(shop, campaign, add_subscribers(shop, 25))
    real_submit = sending_module.submit

    def end_then_submit(ready: Any, **kwargs: Any) -> Any:
        assert len(ready) == 25  # all claimed and checked: `sending` with a body
        assert {m.status for m in messages()} == {"sending"}
        db.session.rollback()
        _end(app, campaign_id)
        return real_submit(ready, **kwargs)

    monkeypatch.setattr(sending_module, "submit", end_then_submit)
    report = sending.run(shop.id)

    assert fake_twilio.messages == []
    assert report.sent == 0 and report.skipped == 25
    rows = messages()
    assert {(m.status, m.skip_reason) for m in rows} == {("skipped", "cancelled")}
    assert all(m.sent_at is None and m.claimed_by is None for m in rows)


class _EndsAfter:
    """Wraps the real provider: after `n` texts went out, the merchant ends the campaign."""

    def __init__(self, inner: Any, app: Flask, campaign_id: int, n: int) -> None:
        self.inner = inner
        self.name = inner.name
        self.app = app
        self.campaign_id = campaign_id
        self.n = n
        self.sent = 0
        self.sent_before_end: int | None = None
        self._lock = threading.Lock()

    def send(self, to: str, body: str, **kwargs: Any) -> Any:
        result = self.inner.send(to, body, **kwargs)
        with self._lock:
            self.sent += 1
            end_now = self.sent == self.n
        if end_now:
            _end(self.app, self.campaign_id)
            with self._lock:
                self.sent_before_end = self.sent
        return result

    def find_sent(self, to: str, since: Any, body: str) -> Any:
        return self.inner.find_sent(to, since, body)


def test_end_mid_batch_stops_the_rest_of_the_batch(app, shop, fake_twilio):
    """Ended while its batch is on the wire (50 texts/s): the texts already submitted are
    recorded as sent, everything else is skipped "cancelled", nobody gets two texts, and no
    row is left open."""
    fast_shop(shop, messages_per_second=50)
    subs = add_subscribers(shop, 300)
    phone_of = {s.id: s.phone for s in subs}
    campaign = add_campaign(shop)
    add_campaign_messages(shop, campaign, subs)
    provider = _EndsAfter(make_provider(fake_twilio), app, campaign.id, n=20)
    set_provider(app, provider)

    report = sending.run(shop.id)

    rows = messages()
    by_status: dict[str, int] = {}
    for row in rows:
        by_status[row.status] = by_status.get(row.status, 0) + 1
    assert set(by_status) == {"sent", "skipped"}
    assert {m.skip_reason for m in rows if m.status == "skipped"} == {"cancelled"}
    # Everything Twilio got is recorded as sent, once per recipient, and nothing else went.
    counts = fake_twilio.count_by_to()
    assert set(counts.values()) == {1}
    assert len(counts) == by_status["sent"] == report.sent
    assert set(counts) == {phone_of[m.subscriber_id] for m in rows if m.status == "sent"}
    # The stop is prompt: a second of sending at most (50/s) plus what was already in flight.
    assert provider.sent_before_end is not None and provider.sent_before_end >= 20
    assert by_status["sent"] < 150
    assert db.session.get(Campaign, campaign.id).status == "cancelled"
