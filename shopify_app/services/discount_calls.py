"""Talking to Shopify for discounts: patience with the throttle, and one verdict per failure.

A campaign must never fail because Shopify said THROTTLED: the client already waits a few
times per call, and here we keep waiting (reading the bucket from the last answer) until a
deadline. Past it, or when Shopify is unreachable, the failure is *transient* (try again
later). Refused input, an unknown field or a revoked token is *final*: the send must stop.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

from flask import current_app

from shopify_app.auth.tokens import TokenUnavailable
from shopify_app.models import Shop
from shopify_app.shopify.client import ShopifyClient, throttle_wait_seconds
from shopify_app.shopify.discounts import create_basic_discount, find_by_code
from shopify_app.shopify.errors import (
    ShopifyAuthError,
    ShopifyError,
    ShopifyGraphQLError,
    ShopifyThrottled,
    ShopifyUnavailable,
    ShopifyUserError,
)

log = logging.getLogger(__name__)

T = TypeVar("T")
DEFAULT_DEADLINE_SECONDS = 600.0
DEFAULT_POLL_SECONDS = 1.0
MAX_POLL_SECONDS = 5.0


class DiscountError(Exception):
    """Codes could not be made. `retryable` tells a passing problem from a final one."""

    def __init__(self, reason: str, *, retryable: bool, codes: tuple[str, ...] = ()) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.codes = codes  # Shopify's userError codes, e.g. ("TAKEN",)


def verdict(exc: ShopifyError) -> DiscountError:
    """One sentence a merchant can act on, and whether trying again later can help."""
    if isinstance(exc, ShopifyUserError):
        return DiscountError(
            "Shopify refused the discount: " + "; ".join(exc.messages),
            retryable=False,
            codes=tuple(str(e.get("code") or "") for e in exc.user_errors),
        )
    if isinstance(exc, ShopifyAuthError):
        return DiscountError(
            "Shopify refused the app's access to this store; open the app "
            "again in the Shopify admin to reconnect it",
            retryable=False,
        )
    if isinstance(exc, ShopifyGraphQLError):
        return DiscountError("Shopify rejected the discount request: " + str(exc), retryable=False)
    if isinstance(exc, ShopifyThrottled | ShopifyUnavailable | TokenUnavailable):
        return DiscountError(
            f"Shopify is not answering right now ({exc}); will retry", retryable=True
        )
    return DiscountError(f"Shopify call failed: {exc}", retryable=False)


class ShopifyCalls:
    """A ShopifyClient that outlasts the throttle, and a clock for polling."""

    def __init__(
        self,
        shop: Shop,
        *,
        sleep: Callable[[float], None] | None = None,
        deadline_seconds: float | None = None,
    ) -> None:
        config = current_app.config
        self.sleep = sleep or time.sleep
        self.client = ShopifyClient(shop, sleep=self.sleep)
        poll = config.get("DISCOUNT_POLL_SECONDS")
        self.poll_seconds = float(poll if poll is not None else DEFAULT_POLL_SECONDS)
        if deadline_seconds is None:
            configured = config.get("DISCOUNT_DEADLINE_SECONDS")
            deadline_seconds = float(
                configured if configured is not None else DEFAULT_DEADLINE_SECONDS
            )
        deadline = deadline_seconds
        self.deadline = time.monotonic() + deadline

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> ShopifyCalls:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def expired(self) -> bool:
        return time.monotonic() > self.deadline

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(client, *args)`, waiting out THROTTLED; Shopify errors become DiscountError."""
        rounds = 0
        while True:
            try:
                return fn(self.client, *args)
            except ShopifyThrottled:
                if self.expired():
                    raise DiscountError(
                        "Shopify kept throttling the app; will retry", retryable=True
                    ) from None
                rounds += 1
                wait = throttle_wait_seconds(self.client.last_cost, min(rounds, 5))
                log.info("still throttled creating discounts; waiting %.2fs", wait)
                self.sleep(wait)
            except ShopifyError as exc:
                raise verdict(exc) from None

    def pause(self, attempt: int) -> None:
        """Wait before polling an asynchronous Shopify job again (doubling, capped)."""
        if self.expired():
            raise DiscountError("Shopify is still creating the codes; will retry", retryable=True)
        if self.poll_seconds > 0:
            self.sleep(min(MAX_POLL_SECONDS, self.poll_seconds * 2 ** min(attempt, 6)))


def is_taken(exc: DiscountError) -> bool:
    return "TAKEN" in exc.codes


def create_or_adopt(calls: ShopifyCalls, terms: Any, code: str) -> str | None:
    """Create the discount holding `code`; returns its gid, or None when the code belongs to
    someone else's discount.

    A code that is TAKEN by a discount with our exact title is our own earlier attempt (a
    timeout after Shopify applied it): adopt it rather than failing or creating a twin.
    """
    try:
        return calls.call(create_basic_discount, terms, code)
    except DiscountError as exc:
        if not is_taken(exc):
            raise
    existing = calls.call(find_by_code, code)
    if existing and existing.get("title") == terms.title:
        return str(existing["id"])
    return None
