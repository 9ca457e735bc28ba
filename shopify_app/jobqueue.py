"""Enqueue RQ jobs only after the database transaction that asked for them commits.

A rolled-back request must never start a job, and a job must never start before the rows it
reads are visible. Jobs are named by dotted path so services need not import the jobs package.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from flask import current_app, has_app_context
from rq import Retry
from sqlalchemy import event
from sqlalchemy.orm import Session

from shopify_app.extensions import get_queue

log = logging.getLogger(__name__)

_PENDING_KEY = "tidings_pending_jobs"


@dataclass
class JobIntent:
    func: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    queue: str = "default"
    job_id: str | None = None
    retry: Retry | None = None
    at_front: bool = False


def enqueue_after_commit(
    func: str,
    *args: Any,
    queue: str = "default",
    job_id: str | None = None,
    retry: Retry | None = None,
    session: Session | None = None,
    **kwargs: Any,
) -> None:
    """Remember a job; it is pushed to Redis when the current transaction commits."""
    from shopify_app.extensions import db

    sess = session if session is not None else db.session()
    sess.info.setdefault(_PENDING_KEY, []).append(
        JobIntent(func, args, kwargs, queue, job_id, retry)
    )


def enqueue_now(
    func: str,
    *args: Any,
    queue: str = "default",
    job_id: str | None = None,
    retry: Retry | None = None,
    **kwargs: Any,
) -> str:
    """Push a job at once (no transaction involved). Returns the job id."""
    return _push(JobIntent(func, args, kwargs, queue, job_id, retry))


def _push(intent: JobIntent) -> str:
    q = get_queue(intent.queue)
    job = q.enqueue(
        intent.func,
        *intent.args,
        job_id=intent.job_id,
        retry=intent.retry,
        at_front=intent.at_front,
        failure_ttl=7 * 24 * 3600,
        **intent.kwargs,
    )
    return job.id


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    intents: list[JobIntent] = session.info.pop(_PENDING_KEY, [])
    if not intents or not has_app_context():
        return
    for intent in intents:
        try:
            _push(intent)
        except Exception:
            # The rows are committed; the scheduler's sweeps find work whose job never ran.
            current_app.logger.exception("could not enqueue %s after commit", intent.func)


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(_PENDING_KEY, None)
