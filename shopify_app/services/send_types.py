"""Shared pieces of the send pipeline: the worker's identity, its settings, what a batch
reports, and a text ready to go."""

from __future__ import annotations

import os
import random
import socket
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from flask import current_app

_local_state: dict[str, Any] = {}
_state_lock = threading.Lock()


def worker_id() -> str:
    """This process's claim name (host, pid and a random part: pids are reused)."""
    with _state_lock:
        if _local_state.get("pid") != os.getpid():
            _local_state.clear()
            _local_state["pid"] = os.getpid()
            _local_state["id"] = f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        return _local_state["id"]


@dataclass(frozen=True)
class Settings:
    batch_size: int
    concurrency: int
    lease: timedelta
    max_attempts: int
    timeout: float
    status_callback: str
    # Send loops per worker process on PostgreSQL (SKIP LOCKED keeps their rows apart): one
    # loop's claim, checks and rendering overlap the other's time on the wire.
    loops: int = 2

    @classmethod
    def from_app(cls) -> Settings:
        config = current_app.config
        return cls(
            batch_size=max(1, int(config["SEND_BATCH_SIZE"])),
            concurrency=max(1, int(config["SEND_CONCURRENCY"])),
            lease=timedelta(seconds=max(10, int(config.get("SEND_LEASE_SECONDS", 300)))),
            max_attempts=max(1, int(config.get("SEND_MAX_ATTEMPTS", 10))),
            timeout=float(config["TWILIO_TIMEOUT_SECONDS"]),
            status_callback=config["APP_URL"].rstrip("/") + "/webhooks/twilio/status",
            loops=max(1, int(config.get("SEND_LOOPS", 2))),
        )


def backoff_seconds(attempts: int) -> float:
    """2 s, 4 s, 8 s … capped at 5 minutes, with ±20 % jitter so retries do not stampede."""
    base = min(300.0, 2.0 * (2 ** max(0, attempts - 1)))
    return base * random.uniform(0.8, 1.2)


@dataclass
class BatchReport:
    claimed: int = 0
    sent: int = 0
    skipped: int = 0
    deferred: int = 0
    retried: int = 0
    failed: int = 0
    unknown: int = 0
    released: int = 0
    reasons: dict[str, int] = field(default_factory=dict)

    def add(self, other: BatchReport) -> None:
        for name in (
            "claimed",
            "sent",
            "skipped",
            "deferred",
            "retried",
            "failed",
            "unknown",
            "released",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for reason, n in other.reasons.items():
            self.reasons[reason] = self.reasons.get(reason, 0) + n

    def count(self, reason: str) -> None:
        self.reasons[reason] = self.reasons.get(reason, 0) + 1


@dataclass
class Ready:
    id: int
    subscriber_id: int
    to: str
    body: str
    segments: int
    encoding: str
    price: Decimal
    attempts: int
    due_at: datetime
    sent_at: datetime
    validity: int | None
    campaign_id: int | None = None
