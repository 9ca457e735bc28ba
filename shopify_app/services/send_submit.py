"""Step 3 of a batch: submit the texts concurrently (a thread pool per worker process) under
the sender's token bucket, handing outcomes back in chunks as they arrive."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import redis

from shopify_app.providers.base import UNKNOWN, SendResult, SmsProvider
from shopify_app.services.ratelimit import TokenBucket
from shopify_app.services.send_checks import ShopRules
from shopify_app.services.send_types import Ready, Settings, worker_id

log = logging.getLogger(__name__)

SLICE = 32  # messages per rate-limiter round trip
RECORD_EVERY = 250  # outcomes written per UPDATE at most ...
RECORD_INTERVAL = 1.0  # ... or at least this often (seconds)
REDIS_PATIENCE = 20.0  # seconds to wait for Redis (the rate limiter) before handing rows back
HALT_CHECK_INTERVAL = 1.0  # seconds between checks for campaigns ended mid-batch

_pool_state: dict[str, object] = {}
_pool_lock = threading.Lock()


def _executor(size: int) -> ThreadPoolExecutor:
    """The process's send pool, made after any fork (a pool is never shared with a parent)."""
    owner = worker_id()
    with _pool_lock:
        pool = _pool_state.get("pool")
        if (
            not isinstance(pool, ThreadPoolExecutor)
            or _pool_state.get("size") != size
            or _pool_state.get("owner") != owner
        ):
            pool = ThreadPoolExecutor(max_workers=size, thread_name_prefix="sms-send")
            _pool_state.update(pool=pool, size=size, owner=owner)
        return pool


def submit(
    ready: Sequence[Ready],
    *,
    provider: SmsProvider,
    rules: ShopRules,
    bucket: TokenBucket,
    settings: Settings,
    deadline: float,
    on_results: Callable[[list[tuple[Ready, SendResult]]], None],
    halted: Callable[[set[int]], set[int]] | None = None,
) -> list[Ready]:
    """Send `ready` concurrently under the sender's rate limit, reporting outcomes in chunks.
    Returns the rows never submitted (deadline reached, or Redis unavailable too long).

    Tokens are taken a slice at a time, when the pool has room for a whole slice (at most two
    slices per worker thread wait in the pool), so Redis sees one call per slice.

    `halted(campaign_ids)` names campaigns ended meanwhile; it is asked before the first
    submission (an end that committed after this batch's claim must stop the whole batch) and
    then about once a second, and their rows not yet submitted come back unsent."""
    pool = _executor(settings.concurrency)
    waiting = deque(ready)
    done: queue.SimpleQueue[tuple[Ready, SendResult | None]] = queue.SimpleQueue()
    in_flight = 0
    window = settings.concurrency + SLICE
    results: list[tuple[Ready, SendResult]] = []
    next_try = 0.0
    redis_down_since: float | None = None
    last_flush = time.monotonic()
    unsent: list[Ready] = []
    last_halt_check = float("-inf")  # ask at once, before anything is submitted

    def send_one(item: Ready) -> None:
        if time.monotonic() >= deadline:
            # Waited in the pool past the send deadline (the pool is shared by the process's
            # send loops): a request started now could outlive the lease, so it is not made.
            done.put((item, None))
            return
        try:
            result = provider.send(
                item.to,
                item.body,
                sender=rules.sender,
                status_callback=settings.status_callback,
                validity_period=item.validity,
            )
        except Exception as exc:  # a provider bug must not lose track of the row
            log.exception("provider raised while sending message %s", item.id)
            result = SendResult(UNKNOWN, error_message=f"{type(exc).__name__}: {exc}")
        done.put((item, result))

    while waiting or in_flight:
        now = time.monotonic()
        if halted is not None and waiting and now - last_halt_check >= HALT_CHECK_INTERVAL:
            last_halt_check = now
            stop = halted({i.campaign_id for i in waiting if i.campaign_id})
            if stop:
                unsent.extend(i for i in waiting if i.campaign_id in stop)
                waiting = deque(i for i in waiting if i.campaign_id not in stop)
        take = min(SLICE, len(waiting))
        if waiting and now >= next_try and window - in_flight >= take:
            if now >= deadline:
                unsent.extend(waiting)
                waiting.clear()
                continue
            try:
                granted, wait_s = bucket.acquire([waiting[i].segments for i in range(take)])
                redis_down_since = None
            except redis.RedisError:
                redis_down_since = redis_down_since or now
                if now - redis_down_since > REDIS_PATIENCE:
                    log.warning(
                        "rate limiter unavailable for %.0fs; handing %d rows back",
                        now - redis_down_since,
                        len(waiting),
                    )
                    unsent.extend(waiting)
                    waiting.clear()
                    continue
                granted, wait_s = 0, 0.5
            for _ in range(granted):
                pool.submit(send_one, waiting.popleft())
            in_flight += granted
            if granted < take:
                next_try = now + max(wait_s, 0.001)
            if granted and waiting and window - in_flight >= min(SLICE, len(waiting)):
                continue
        timeout: float | None = None
        if waiting and window - in_flight >= take:
            timeout = max(0.0, next_try - time.monotonic())
        if in_flight:
            finished: list[tuple[Ready, SendResult | None]] = []
            try:
                finished.append(done.get(timeout=timeout))
                while True:  # everything else that finished meanwhile
                    finished.append(done.get_nowait())
            except queue.Empty:
                pass
            in_flight -= len(finished)
            for item, result in finished:
                if result is None:
                    unsent.append(item)
                else:
                    results.append((item, result))
        elif timeout:
            time.sleep(timeout)
        if results and (
            len(results) >= RECORD_EVERY or time.monotonic() - last_flush >= RECORD_INTERVAL
        ):
            on_results(results)
            results = []
            last_flush = time.monotonic()
    if results:
        on_results(results)
    return unsent
