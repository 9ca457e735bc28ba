"""Flow jobs: the periodic tick that moves due runs, discount steps, the win-back scan.

Thin doors into services/flows.py and services/flow_triggers.py. Each is safe to run twice:
runs are locked while walked and every text is unique per (run, step); the win-back scan
inserts with ON CONFLICT DO NOTHING.
"""

from __future__ import annotations

import logging
from typing import Any

from shopify_app.services import flow_triggers, flows

log = logging.getLogger(__name__)


def tick() -> dict[str, Any]:
    """Periodic: perform every flow step that is due (batches, one indexed query each)."""
    report = flows.tick()
    if report.runs:
        log.info(
            "flow tick: %d runs, %d texts queued, %d completed, %d exited %s, "
            "%d parked for a discount",
            report.runs,
            report.messages,
            report.completed,
            report.exited,
            report.exits,
            report.parked,
        )
    return {
        "runs": report.runs,
        "messages": report.messages,
        "completed": report.completed,
        "exited": report.exited,
        "parked": report.parked,
        "batches": report.batches,
        "exits": report.exits,
    }


def discount_step(run_id: int, step_index: int) -> str:
    """A run's message step that carries a discount: the code is made in Shopify first."""
    return flows.discount_step(int(run_id), int(step_index))


def winback_scan() -> int:
    """Periodic: start win-back runs (one INSERT … SELECT per shop with the flow on)."""
    return flow_triggers.winback_scan()
