"""The RQ worker: one app per process, every job inside an app context, session removed after."""

from __future__ import annotations

from typing import Any

from flask import Flask
from rq import SimpleWorker
from rq.job import Job
from rq.queue import Queue

from shopify_app.extensions import QUEUE_NAMES, db, get_redis
from shopify_app.logs import log_context


class AppWorker(SimpleWorker):
    """SimpleWorker (no fork per job: jobs carry batches, and forking costs ~5 ms each)."""

    app: Flask

    def perform_job(self, job: Job, queue: Queue, execution: Any) -> bool:
        with self.app.app_context(), log_context(job_id=job.id):
            try:
                return super().perform_job(job, queue, execution)
            finally:
                db.session.remove()


def make_worker(
    app: Flask, queues: tuple[str, ...] = QUEUE_NAMES, name: str | None = None
) -> AppWorker:
    with app.app_context():
        conn = get_redis(app)
    worker = AppWorker([Queue(q, connection=conn) for q in queues], connection=conn, name=name)
    worker.app = app
    return worker


def run_burst(app: Flask, queues: tuple[str, ...] = QUEUE_NAMES, max_rounds: int = 50) -> int:
    """Run queued jobs (and jobs they enqueue) until the queues are empty. For tests and CLI."""
    done = 0
    worker = make_worker(app, queues)
    for _ in range(max_rounds):
        worked = worker.work(burst=True, logging_level="WARNING")
        if not worked:
            break
        done += 1
    return done
