"""Discount code generation: a merchant prefix and random characters a shopper cannot misread.

Codes are read off a phone screen and typed at checkout, so the alphabet leaves out the
characters people confuse (0/O, 1/I/L). Randomness comes from `secrets`: a guessable code
is a free discount.
"""

from __future__ import annotations

import re
import secrets

ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"  # no 0, O, 1, I, L
RANDOM_LENGTH = 8
MAX_PREFIX_LENGTH = 20
_PREFIX_RE = re.compile(r"[^A-Z0-9]")


def clean_prefix(prefix: str | None) -> str:
    """The merchant's prefix upper-cased, stripped to letters and digits, at most 20 long."""
    return _PREFIX_RE.sub("", (prefix or "").upper())[:MAX_PREFIX_LENGTH]


def generate_code(prefix: str | None = None, length: int = RANDOM_LENGTH) -> str:
    """`PREFIX-XXXXXXXX`, or just the random part when there is no prefix."""
    body = "".join(secrets.choice(ALPHABET) for _ in range(length))
    cleaned = clean_prefix(prefix)
    return f"{cleaned}-{body}" if cleaned else body


def generate_codes(
    count: int, prefix: str | None = None, exclude: set[str] | None = None
) -> list[str]:
    """`count` distinct codes, none of them in `exclude`."""
    taken = set(exclude or ())
    codes: list[str] = []
    while len(codes) < count:
        code = generate_code(prefix)
        if code not in taken:
            taken.add(code)
            codes.append(code)
    return codes


def normalize_code(code: str) -> str:
    """Shopify matches codes case-insensitively; we store and compare them upper-cased."""
    return code.strip().upper()
