"""The SMS provider interface, its result types, and how provider errors are classified.

The send path never sees an HTTP status or a Twilio exception: a provider answers every
`send` with a `SendResult` whose `outcome` says what the caller may do next.

* ``accepted``  the provider took the message (``sid`` is set).
* ``retry``     nothing was sent (rate limited, provider error, connection refused): safe to
                send again later, after ``retry_after`` seconds at least.
* ``permanent`` refused for good (invalid number, opted out, blocked content): never retry.
* ``unknown``   the request may have reached the provider (timeout, connection lost after
                sending): only reconciliation — asking the provider — may decide.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

ACCEPTED = "accepted"
RETRY = "retry"
PERMANENT = "permanent"
UNKNOWN = "unknown"
OUTCOMES = (ACCEPTED, RETRY, PERMANENT, UNKNOWN)

# Twilio error codes (PLATFORM.md). Permanent: fixing them needs a person, not time.
INVALID_NUMBER_CODES = frozenset({21211, 21614})
OPTED_OUT_CODE = 21610
PERMANENT_CODES = frozenset({21211, 21614, 21610, 21408, 30004, 30005, 30006, 30007})
# Transient: rate limits, queue overflow, unreachable handset, unknown carrier error, 5xx.
RETRY_CODES = frozenset({20429, 20500, 20503, 21611, 30001, 30003, 30008})


def classify(http_status: int | None, code: int | None) -> str:
    """`retry` or `permanent` for a refused create. Unknown 4xx codes are permanent by default
    (a request Twilio rejected will be rejected again); 429 and 5xx are transient."""
    if code in PERMANENT_CODES:
        return PERMANENT
    if code in RETRY_CODES:
        return RETRY
    if http_status is not None and (http_status == 429 or http_status >= 500):
        return RETRY
    return PERMANENT


@dataclass(frozen=True)
class Sender:
    """Who a message is sent from: a Messaging Service or a number. `shop_id` lets the outbox
    file the message under its shop."""

    messaging_service_sid: str = ""
    from_number: str = ""
    shop_id: int | None = None

    @property
    def key(self) -> str:
        """Names the sender for its rate limit (shared by every shop that uses it)."""
        if self.messaging_service_sid:
            return f"ms:{self.messaging_service_sid}"
        if self.from_number:
            return f"from:{self.from_number}"
        return f"shop:{self.shop_id}"


@dataclass(frozen=True)
class SendResult:
    outcome: str
    sid: str | None = None
    status: str | None = None  # the provider's status at creation (queued, accepted...)
    error_code: int | None = None
    error_message: str | None = None
    retry_after: float | None = None  # seconds, from the provider's Retry-After
    http_status: int | None = None

    @property
    def accepted(self) -> bool:
        return self.outcome == ACCEPTED


@dataclass(frozen=True)
class ProviderMessage:
    """A message as the provider lists it (for reconciliation)."""

    sid: str
    to: str
    body: str
    status: str
    created_at: datetime | None
    error_code: int | None = None


@runtime_checkable
class SmsProvider(Protocol):
    """What the send path needs from an SMS provider. Implementations must be safe to call
    from several threads at once (the send path submits concurrently)."""

    name: str

    def send(
        self,
        to: str,
        body: str,
        *,
        sender: Sender,
        status_callback: str | None,
        validity_period: int | None,
    ) -> SendResult:
        """Submit one message. Never raises for provider or network errors: see SendResult."""
        ...

    def find_sent(self, to: str, since: datetime, body: str) -> list[ProviderMessage]:
        """Messages to `to` created at or after `since` whose body is `body`, oldest first.
        Raises `ProviderUnavailable` when the provider cannot be asked right now."""
        ...


class ProviderUnavailable(RuntimeError):
    """The provider could not answer a question (reconciliation tries again later)."""
