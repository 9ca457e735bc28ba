"""Which function handles which Shopify webhook topic, and how a recorded delivery gets run.

A topic module (orders.py, checkouts.py, ...) dropped into this package registers itself with
`@handles("orders/create", ...)`; every module here is imported on first lookup, so adding a
topic never means editing a shared file. A handler runs inside the delivery's transaction:
it changes rows and returns; the job commits (or rolls back and retries). A payload it cannot
use as sent raises MalformedPayload (shopify_app.services.shopify_payloads), not ValueError:
the delivery then fails for good instead of being retried.

The WebhookDelivery row is the durable queue. Recording one asks for a *drain* (`request_drain`)
rather than queuing one RQ job per delivery: a Redis SET NX per delivery, one RQ job per burst,
and the drain claims every "received" row in batches (jobs/webhooks.py).
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rq import Retry

from shopify_app.extensions import get_redis
from shopify_app.jobqueue import enqueue_now

if TYPE_CHECKING:
    from shopify_app.models import Shop, WebhookDelivery

Handler = Callable[["Shop | None", dict[str, Any], "WebhookDelivery"], None]
log = logging.getLogger(__name__)

# Every topic shopify.app.toml subscribes to. A known topic without a handler is recorded and
# marked "ignored"; a topic outside this set (and without a handler) is answered and ignored.
KNOWN_TOPICS: frozenset[str] = frozenset(
    {
        "orders/create",
        "orders/updated",
        "orders/paid",
        "refunds/create",
        "checkouts/create",
        "checkouts/update",
        "customers/create",
        "customers/update",
        "customers_marketing_consent/update",
        "app/uninstalled",
        "app/scopes_update",
        "customers/data_request",
        "customers/redact",
        "shop/redact",
    }
)
# The mandatory privacy topics: Shopify's app review checks that a bad HMAC gets a 401.
COMPLIANCE_TOPICS: frozenset[str] = frozenset(
    {"customers/data_request", "customers/redact", "shop/redact"}
)

QUEUE = "webhooks"
DRAIN_JOB = "jobs.webhooks.drain"
PROCESS_JOB = "jobs.webhooks.process_delivery"
# Set while a drain job is queued and has not started claiming; the drain deletes it first, so
# a delivery committed after that sets it again and queues the next drain. The TTL bounds the
# wait when a worker died holding a drain that had not yet deleted it.
DRAIN_FLAG = "tidings:webhooks:drain-queued"
DRAIN_FLAG_TTL = 30
# A drain that crashed outside any delivery (database gone) is tried again soon.
DRAIN_RETRY = Retry(max=3, interval=[5, 30, 120])
# A failing delivery is tried again after 10 s, 60 s and 300 s (four attempts in all); after
# the last one it stays "failed" with its payload for inspection. A malformed payload gets
# attempts = MAX_ATTEMPTS on its first failure: retrying it cannot help.
RETRY_INTERVALS: tuple[int, ...] = (10, 60, 300)
MAX_ATTEMPTS = len(RETRY_INTERVALS) + 1

_HANDLERS: dict[str, Handler] = {}
_loaded = False
_load_lock = threading.Lock()


def _name(fn: Callable[..., Any]) -> str:
    return f"{fn.__module__}.{fn.__qualname__}"


def handles(*topics: str) -> Callable[[Handler], Handler]:
    """Register `fn(shop, payload, delivery)` for each topic. Two different handlers for one
    topic is a programming error, caught at import rather than by a silently lost webhook."""
    if not topics:
        raise ValueError("handles() needs at least one topic")

    def register(fn: Handler) -> Handler:
        for topic in topics:
            current = _HANDLERS.get(topic)
            # The same function registered again (a module reloaded) is not a conflict.
            if current is not None and _name(current) != _name(fn):
                raise ValueError(f"{topic!r} is already handled by {_name(current)}")
            _HANDLERS[topic] = fn
        return fn

    return register


def unregister(*topics: str) -> None:
    """Drop handlers (tests register throwaway ones)."""
    for topic in topics:
        _HANDLERS.pop(topic, None)


def load_handlers() -> None:
    """Import every module of this package once (not `_private` ones), so their @handles
    decorators run. Lazily, on the first lookup: a module that fails to import raises here on
    every delivery, which is then not recorded (500) and Shopify retries it later — rather
    than a topic silently losing its handler."""
    global _loaded
    if _loaded:
        return
    with _load_lock:
        if _loaded:
            return
        for module in pkgutil.iter_modules(__path__):
            if not module.name.startswith("_"):
                importlib.import_module(f"{__name__}.{module.name}")
        _loaded = True


def handler_for(topic: str) -> Handler | None:
    load_handlers()
    return _HANDLERS.get(topic)


def is_known(topic: str) -> bool:
    return topic in KNOWN_TOPICS or handler_for(topic) is not None


def delivery_job_id(delivery_id: int) -> str:
    """The id of a failed delivery's retry job, so the sweep can tell a pending retry from a
    lost one."""
    return f"webhook-delivery-{delivery_id}"


def request_drain() -> bool:
    """Make sure a drain job runs after this point. Call it only after the delivery's row is
    committed (a drain that starts earlier would not see it). Returns True if a job was queued,
    False if one was already waiting. Raises if Redis is unreachable (the row is safe; the
    stale sweep drains it later)."""
    if not get_redis().set(DRAIN_FLAG, b"1", nx=True, ex=DRAIN_FLAG_TTL):
        return False
    enqueue_now(DRAIN_JOB, queue=QUEUE, retry=DRAIN_RETRY)
    return True
