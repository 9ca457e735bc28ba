"""Fixed-window counters in Redis against SMS pumping through the sign-up form.

Every sign-up sends a text that costs the merchant money, so bots submitting numbers (often
premium-rate ranges) are throttled per IP address and per phone number, across every process.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from shopify_app.extensions import get_redis


@dataclass(frozen=True)
class Limit:
    name: str
    max_hits: int
    window_seconds: int


PER_IP = Limit("ip", 5, 10 * 60)
PER_NUMBER = Limit("number", 3, 24 * 3600)


def _key(limit: Limit, shop_id: int, subject: str) -> str:
    # Hashed: the keys must not put phone numbers or addresses into Redis in clear.
    digest = hashlib.sha256(subject.encode()).hexdigest()[:32]
    return f"tidings:rl:{limit.name}:{shop_id}:{digest}"


def hit(limit: Limit, shop_id: int, subject: str) -> bool:
    """Count one attempt; False when this attempt is over the limit."""
    key = _key(limit, shop_id, subject)
    pipe = get_redis().pipeline()
    # Create the window with its expiry first (INCR keeps the TTL); works on Redis 6 too.
    pipe.set(key, 0, ex=limit.window_seconds, nx=True)
    pipe.incr(key)
    _, count = pipe.execute()
    return int(count) <= limit.max_hits
