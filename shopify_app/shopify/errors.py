"""Typed failures of Shopify's Admin API and OAuth endpoints.

Callers branch on the type: throttling and unavailability are transient (retry later), an auth
error means the shop uninstalled the app or must authorise again (stop, do not retry).
"""

from __future__ import annotations

from typing import Any


class ShopifyError(Exception):
    """Base class for every failure talking to Shopify."""


class ShopifyAuthError(ShopifyError):
    """Shopify refused our credentials (401/403): uninstalled shop, revoked or missing token."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ShopifyThrottled(ShopifyError):
    """Still throttled after every allowed wait; safe to retry later."""


class ShopifyUnavailable(ShopifyError):
    """Network failure or 5xx after every allowed retry; safe to retry later."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ShopifyGraphQLError(ShopifyError):
    """Top-level GraphQL errors (bad query, access denied to a field, ...)."""

    def __init__(self, errors: list[dict[str, Any]], status: int | None = None) -> None:
        self.errors = errors
        self.status = status
        self.messages = [
            str(e.get("message", e)) if isinstance(e, dict) else str(e) for e in errors
        ]
        super().__init__("; ".join(self.messages) or "GraphQL request failed")


class ShopifyUserError(ShopifyError):
    """A mutation answered with `userErrors` (invalid input, duplicate code, ...)."""

    def __init__(self, field: str, user_errors: list[dict[str, Any]]) -> None:
        self.field = field
        self.user_errors = user_errors
        self.messages = [str(e.get("message", "")) for e in user_errors]
        super().__init__(f"{field}: " + "; ".join(self.messages))


class TokenEndpointError(ShopifyError):
    """`/admin/oauth/access_token` answered with an error (`error` is Shopify's code)."""

    def __init__(self, status: int | None, error: str, description: str = "") -> None:
        super().__init__(f"token endpoint error {status}: {error}")
        self.status = status
        self.error = error
        self.description = description

    @property
    def transient(self) -> bool:
        """Worth retrying later: no answer, a 5xx or a 429."""
        return self.status is None or self.status >= 500 or self.status == 429
