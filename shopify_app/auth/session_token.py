"""App Bridge session tokens (ID tokens): HS256 JWTs signed with the app secret."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import jwt

from shopify_app.auth.shop_domain import valid_shop_domain

LEEWAY_SECONDS = 10  # App Bridge often sends an nbf slightly in the future


@dataclass(frozen=True)
class TokenCheck:
    ok: bool
    shop: str | None = None
    reason: str | None = None
    claims: dict[str, Any] = field(default_factory=dict)


def _shop_from_url(url: Any) -> str | None:
    if not isinstance(url, str):
        return None
    parts = urlsplit(url)
    if parts.scheme != "https":
        return None
    return valid_shop_domain(parts.hostname)


def verify_session_token(token: str | None, *, api_key: str, secret: str) -> TokenCheck:
    """Check signature, audience, time claims, and that iss and dest name the same shop."""
    if not token:
        return TokenCheck(False, reason="missing_token")
    try:
        # PyJWT compares the signature in constant time (hmac.compare_digest).
        claims = jwt.decode(
            token,
            secret,
            algorithms=["HS256"],
            audience=api_key,
            leeway=LEEWAY_SECONDS,
            options={"require": ["exp", "nbf", "iss", "dest", "aud"]},
        )
    except jwt.ExpiredSignatureError:
        return TokenCheck(False, reason="expired")
    except jwt.ImmatureSignatureError:
        return TokenCheck(False, reason="not_yet_valid")
    except jwt.InvalidAudienceError:
        return TokenCheck(False, reason="wrong_audience")
    except jwt.MissingRequiredClaimError as exc:
        return TokenCheck(False, reason=f"missing_claim:{exc.claim}")
    except jwt.InvalidSignatureError:
        return TokenCheck(False, reason="bad_signature")
    except jwt.InvalidTokenError:
        return TokenCheck(False, reason="malformed")
    dest_shop = _shop_from_url(claims.get("dest"))
    iss = claims.get("iss")
    iss_shop = _shop_from_url(
        iss[: -len("/admin")] if isinstance(iss, str) and iss.endswith("/admin") else None
    )
    if dest_shop is None or iss_shop is None:
        return TokenCheck(False, reason="bad_shop_claims")
    if dest_shop != iss_shop:
        return TokenCheck(False, reason="iss_dest_mismatch")
    return TokenCheck(True, shop=dest_shop, claims=claims)
