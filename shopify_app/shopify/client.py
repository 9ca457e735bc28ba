"""Shopify Admin GraphQL over `requests`: timeouts, throttle-aware retries, typed errors.

ShopifyAPI 12.7's GraphQL helper has no timeout and ignores throttling, so we talk to
`{SHOPIFY_ADMIN_BASE_URL}/admin/api/{version}/graphql.json` ourselves. Every response carries
`extensions.cost.throttleStatus`; when Shopify says THROTTLED (or 429) we wait just long enough
for the bucket to hold the query's cost, and give up after a bounded number of waits.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import requests
from flask import current_app

from shopify_app.auth.tokens import access_token_for, discard_access_token, reload_tokens
from shopify_app.models import Shop
from shopify_app.shopify.errors import (
    ShopifyAuthError,
    ShopifyGraphQLError,
    ShopifyThrottled,
    ShopifyUnavailable,
    ShopifyUserError,
)
from shopify_app.shopify.token_endpoint import admin_base_url

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_SECONDS = 30
MAX_THROTTLE_WAITS = 6
MAX_SERVER_RETRIES = 3
SERVER_BACKOFF_SECONDS = 0.5  # doubled after each 5xx / connection failure
MAX_WAIT_SECONDS = 60.0
_RETRYABLE_FOR_MUTATIONS = {502, 503, 504}  # the request never reached the app server


def throttle_wait_seconds(cost: dict[str, Any] | None, attempt: int) -> float:
    """How long until the bucket holds the query's cost; exponential when Shopify gave no cost."""
    status = (cost or {}).get("throttleStatus") or {}
    try:
        requested = float(cost.get("requestedQueryCost"))  # type: ignore[union-attr]
        available = float(status["currentlyAvailable"])
        rate = float(status["restoreRate"])
    except (AttributeError, KeyError, TypeError, ValueError):
        return min(MAX_WAIT_SECONDS, 2.0**attempt)
    if rate <= 0:
        return MAX_WAIT_SECONDS
    # A little slack: the bucket refills continuously but our clock and Shopify's differ.
    return min(MAX_WAIT_SECONDS, max(0.0, requested - available) / rate + 0.05)


def _is_mutation(query: str) -> bool:
    return query.lstrip().lower().startswith("mutation")


def _as_error_list(errors: Any) -> list[dict[str, Any]]:
    if isinstance(errors, list):
        return [e if isinstance(e, dict) else {"message": str(e)} for e in errors]
    if isinstance(errors, dict):
        return [errors]
    return [{"message": str(errors)}]


def _is_throttled(errors: list[dict[str, Any]]) -> bool:
    return any((e.get("extensions") or {}).get("code") == "THROTTLED" for e in errors)


def raise_user_errors(payload: dict[str, Any], field: str) -> dict[str, Any]:
    """Return `payload[field]`, or raise ShopifyUserError when its `userErrors` is not empty."""
    result = payload.get(field) or {}
    user_errors = result.get("userErrors") or []
    if user_errors:
        raise ShopifyUserError(field, user_errors)
    return result


class ShopifyClient:
    """One shop's Admin GraphQL client. Not thread-safe: one per job or request."""

    def __init__(
        self,
        shop: Shop,
        *,
        sleep: Callable[[float], None] = time.sleep,
        max_throttle_waits: int = MAX_THROTTLE_WAITS,
        max_server_retries: int = MAX_SERVER_RETRIES,
    ) -> None:
        self.shop = shop
        self.sleep = sleep
        self.max_throttle_waits = max_throttle_waits
        self.max_server_retries = max_server_retries
        self.http = requests.Session()
        self.last_cost: dict[str, Any] | None = None

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> ShopifyClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def throttle_status(self) -> dict[str, Any] | None:
        """The bucket as of the last response (maximumAvailable, currentlyAvailable, ...)."""
        return (self.last_cost or {}).get("throttleStatus")

    def _url(self) -> str:
        version = current_app.config["SHOPIFY_API_VERSION"]
        return f"{admin_base_url(self.shop.domain)}/admin/api/{version}/graphql.json"

    def execute(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """Run one query or mutation and return its `data`."""
        mutation = _is_mutation(query)
        body: dict[str, Any] = {"query": query}
        if variables is not None:
            body["variables"] = variables
        timeout = float(current_app.config.get("SHOPIFY_TIMEOUT_SECONDS", DEFAULT_TIMEOUT_SECONDS))
        throttle_waits = server_retries = 0
        auth_recovered = False
        while True:
            headers = {
                "X-Shopify-Access-Token": access_token_for(self.shop),
                "Content-Type": "application/json",
                "Accept": "application/json",
            }
            try:
                resp = self.http.post(self._url(), json=body, headers=headers, timeout=timeout)
            except requests.RequestException as exc:
                # A read timeout on a mutation may have been applied: the caller reconciles.
                unsafe = mutation and isinstance(exc, requests.ReadTimeout)
                if unsafe or server_retries >= self.max_server_retries:
                    raise ShopifyUnavailable(
                        f"no answer from Shopify ({type(exc).__name__})"
                    ) from None
                server_retries += 1
                self.sleep(SERVER_BACKOFF_SECONDS * 2 ** (server_retries - 1))
                continue

            status = resp.status_code
            data = self._json(resp)
            if isinstance(data, dict) and isinstance(data.get("extensions"), dict):
                self.last_cost = data["extensions"].get("cost") or self.last_cost

            if status == 401 and not auth_recovered:
                # Another worker may have refreshed (and so revoked) the token we sent; if not,
                # ours is dead: drop it so the next attempt refreshes or asks for re-auth.
                auth_recovered = True
                if not reload_tokens(self.shop):
                    log.warning(
                        "Shopify refused the access token of %s; refreshing", self.shop.domain
                    )
                    discard_access_token(self.shop)
                continue
            if status in (401, 403):
                log.warning("Shopify refused our token for %s (HTTP %s)", self.shop.domain, status)
                raise ShopifyAuthError(
                    f"Shopify answered {status} for {self.shop.domain}", status=status
                )
            if status == 429 or (
                status == 200
                and isinstance(data, dict)
                and data.get("errors")
                and _is_throttled(_as_error_list(data["errors"]))
            ):
                if throttle_waits >= self.max_throttle_waits:
                    raise ShopifyThrottled(f"still throttled after {throttle_waits} waits")
                wait = self._retry_after(resp) if status == 429 else None
                if wait is None:
                    wait = throttle_wait_seconds(self.last_cost, throttle_waits)
                throttle_waits += 1
                log.info("throttled by Shopify for %s; waiting %.2fs", self.shop.domain, wait)
                self.sleep(wait)
                continue
            if status >= 500:
                retryable = not mutation or status in _RETRYABLE_FOR_MUTATIONS
                if not retryable or server_retries >= self.max_server_retries:
                    raise ShopifyUnavailable(f"Shopify answered {status}", status=status)
                server_retries += 1
                self.sleep(SERVER_BACKOFF_SECONDS * 2 ** (server_retries - 1))
                continue
            if not isinstance(data, dict):
                raise ShopifyGraphQLError(
                    [{"message": f"unreadable response (HTTP {status})"}], status=status
                )
            if data.get("errors"):
                raise ShopifyGraphQLError(_as_error_list(data["errors"]), status=status)
            if status != 200:
                raise ShopifyGraphQLError([{"message": f"HTTP {status}"}], status=status)
            return data.get("data") or {}

    @staticmethod
    def _json(resp: requests.Response) -> Any:
        try:
            return resp.json()
        except ValueError:
            return None

    @staticmethod
    def _retry_after(resp: requests.Response) -> float | None:
        raw = resp.headers.get("Retry-After")
        try:
            return min(MAX_WAIT_SECONDS, max(0.0, float(raw))) if raw else None
        except ValueError:
            return None
