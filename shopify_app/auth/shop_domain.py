"""Shop domain validation: anchored *.myshopify.com only."""

from __future__ import annotations

import re

_SHOP_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9-]*\.myshopify\.com$")


def valid_shop_domain(value: str | None) -> str | None:
    """The lower-cased domain when it is a myshopify.com shop, else None."""
    if not value or len(value) > 255:
        return None
    value = value.strip()
    return value.lower() if _SHOP_RE.fullmatch(value) else None
