"""A token bucket per sender, kept in Redis so every worker process shares it.

Throughput is a property of the sender (a number or Messaging Service), not of a worker: two
processes each pacing themselves at the full rate would send twice too fast. The bucket lives
in Redis and is changed only by one Lua script, so checking and taking tokens is atomic, and a
worker that dies holds nothing. Time comes from the Redis server's clock, the same for all.

One call asks for a whole slice of messages (their costs in segments — carriers and Twilio count
throughput in segments) and is granted the longest prefix the bucket can pay for now, plus how
long to wait for the next one: one round trip per slice, not per message.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import redis

# KEYS[1] bucket; ARGV[1] rate (tokens/s); ARGV[2] capacity; ARGV[3..] the costs in order.
_SCRIPT = """
local rate = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = capacity
  ts = now
end
if now > ts then
  tokens = math.min(capacity, tokens + (now - ts) * rate / 1000)
  ts = now
end
local granted = 0
for i = 3, #ARGV do
  local cost = tonumber(ARGV[i])
  if cost > tokens then break end
  tokens = tokens - cost
  granted = granted + 1
end
local wait_ms = 0
if granted < #ARGV - 2 then
  local need = tonumber(ARGV[3 + granted]) - tokens
  wait_ms = math.ceil(need * 1000 / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(ts))
redis.call('PEXPIRE', KEYS[1], math.ceil(capacity * 1000 / rate) + 60000)
return {granted, wait_ms}
"""

KEY_PREFIX = "tidings:rate:"


class TokenBucket:
    """`rate` tokens per second for one sender; bursts up to one second's worth."""

    def __init__(self, conn: redis.Redis, sender_key: str, rate: float) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.conn = conn
        self.key = KEY_PREFIX + sender_key
        self.rate = float(rate)
        self._script = conn.register_script(_SCRIPT)

    def acquire(self, costs: Sequence[int]) -> tuple[int, float]:
        """Take tokens for the longest prefix of `costs` available now.

        Returns (how many items were granted, seconds to wait before the next one can be).
        Raises redis errors: the caller decides whether to wait for Redis or stop.
        """
        if not costs:
            return 0, 0.0
        # A message dearer than the bucket could ever hold must still be able to go.
        capacity = max(self.rate, float(max(costs)))
        granted, wait_ms = self._script(
            keys=[self.key], args=[repr(self.rate), repr(capacity), *map(int, costs)]
        )
        return int(granted), max(0.0, float(wait_ms) / 1000.0)


def per_second(setting: object, default: float = 10.0) -> float:
    """The shop's messages_per_second setting as a positive rate."""
    try:
        value = float(setting)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return default
    if not math.isfinite(value) or value <= 0:
        return default
    return value
