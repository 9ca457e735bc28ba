"""Recompute attribution on request: queue the job once per shop, and report its progress.

Progress lives in one small Redis record per shop so the admin can show it; the orders
themselves are the durable result, and running the job twice gives the same answer.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from shopify_app.extensions import get_redis
from shopify_app.jobqueue import enqueue_now
from shopify_app.models import utcnow
from shopify_app.services.attribution import recompute_shop

STATUS_TTL_SECONDS = 7 * 24 * 3600
JOB = "jobs.attribution.recompute_shop"


def _key(shop_id: int) -> str:
    return f"tidings:attribution:recompute:{shop_id}"


def write_status(shop_id: int, **fields: Any) -> dict[str, Any]:
    conn = get_redis()
    raw = conn.get(_key(shop_id))
    record = json.loads(raw) if raw else {}
    record.update(fields)
    conn.set(_key(shop_id), json.dumps(record, default=str), ex=STATUS_TTL_SECONDS)
    return record


def read_status(shop_id: int) -> dict[str, Any] | None:
    raw = get_redis().get(_key(shop_id))
    return json.loads(raw) if raw else None


def request_recompute(shop_id: int) -> dict[str, Any]:
    """Queue a recompute unless one is already queued or running; returns its status."""
    current = read_status(shop_id)
    if current and current.get("status") in ("queued", "running"):
        return current
    job_id = enqueue_now(JOB, shop_id, queue="low", job_id=f"attribution-recompute-{shop_id}")
    return write_status(
        shop_id,
        status="queued",
        job_id=job_id,
        queued_at=utcnow().isoformat(),
        started_at=None,
        finished_at=None,
        orders=None,
        attributed=None,
        changed=None,
        error=None,
    )


def run_recompute(shop_id: int) -> dict[str, Any]:
    """The job's body: recompute and record the outcome."""
    write_status(shop_id, status="running", started_at=utcnow().isoformat(), error=None)
    try:
        summary = recompute_shop(shop_id)
    except Exception:
        write_status(
            shop_id,
            status="failed",
            finished_at=utcnow().isoformat(),
            error="the recompute stopped before the end",
        )
        raise
    return write_status(shop_id, status="done", finished_at=utcnow().isoformat(), **asdict(summary))
