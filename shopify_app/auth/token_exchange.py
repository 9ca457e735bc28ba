"""Token exchange: trade an App Bridge session token for an expiring offline access token."""

from __future__ import annotations

from shopify_app.shopify.errors import TokenEndpointError
from shopify_app.shopify.token_endpoint import TokenGrant, request_token

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:token-exchange"
SUBJECT_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id_token"  # noqa: S105 - a type name
OFFLINE_TOKEN_TYPE = "urn:shopify:params:oauth:token-type:offline-access-token"  # noqa: S105


class InvalidSubjectToken(TokenEndpointError):
    """Shopify refused the session token: App Bridge must fetch a new one and retry."""


def exchange_session_token(shop: str, session_token: str) -> TokenGrant:
    """POST the token-exchange grant. Raises InvalidSubjectToken or TokenEndpointError."""
    try:
        return request_token(
            shop,
            {
                "grant_type": GRANT_TYPE,
                "subject_token": session_token,
                "subject_token_type": SUBJECT_TOKEN_TYPE,
                "requested_token_type": OFFLINE_TOKEN_TYPE,
                "expiring": "1",
            },
        )
    except TokenEndpointError as exc:
        if exc.error == "invalid_subject_token":
            raise InvalidSubjectToken(exc.status, exc.error, exc.description) from None
        raise
