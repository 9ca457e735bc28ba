"""Signature checks for the two outside callers. Each returns a result with a reason code, so
the door logs why a request was refused instead of scattering aborts."""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass

from twilio.request_validator import RequestValidator


@dataclass(frozen=True)
class Verification:
    ok: bool
    reason: str  # "ok", "missing_signature", "bad_signature", "no_secret"

    def __bool__(self) -> bool:
        return self.ok


OK = Verification(True, "ok")


def shopify_hmac(raw_body: bytes, secret: str) -> str:
    """What Shopify puts in X-Shopify-Hmac-Sha256: base64 HMAC-SHA256 of the raw body."""
    digest = hmac.new(secret.encode("utf-8"), raw_body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def verify_shopify_webhook(raw_body: bytes, header: str | None, secret: str) -> Verification:
    """Check the raw body (never a re-serialised one) against the header, in constant time."""
    if not secret:
        return Verification(False, "no_secret")
    if not header:
        return Verification(False, "missing_signature")
    expected = shopify_hmac(raw_body, secret)
    if hmac.compare_digest(expected.encode("ascii"), header.strip().encode("utf-8", "replace")):
        return OK
    return Verification(False, "bad_signature")


def twilio_public_url(app_url: str, path: str, raw_query: bytes) -> str:
    """The URL Twilio called, as Twilio saw it: APP_URL (never the Host header, which a proxy
    rewrites) + path + the query string byte for byte (re-encoding it would change the hash)."""
    url = app_url.rstrip("/") + path
    query = raw_query.decode("latin-1")
    return f"{url}?{query}" if query else url


def verify_twilio_request(
    auth_token: str, url: str, params: dict[str, str], signature: str | None
) -> Verification:
    """X-Twilio-Signature over the public URL and every form parameter (Twilio adds parameters
    without notice, so none is left out)."""
    if not auth_token:
        return Verification(False, "no_secret")
    # RequestValidator raises TypeError on None; "" can never match, which is what we want.
    if RequestValidator(auth_token).validate(url, params, signature or ""):
        return OK
    return Verification(False, "bad_signature" if signature else "missing_signature")
