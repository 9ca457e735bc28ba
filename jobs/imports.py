"""CSV import job: stream the stored file into subscribers, committing progress per chunk."""

from __future__ import annotations

import logging

from shopify_app.extensions import db
from shopify_app.logs import log_context
from shopify_app.models import ImportJob, Shop
from shopify_app.services.imports import run_import

log = logging.getLogger(__name__)


def run_import_job(import_id: int) -> str:
    """Safe to run twice: a finished job is left alone, an interrupted one resumes after its
    last committed chunk. Returns the job's final status."""
    job = db.session.get(ImportJob, import_id)
    if job is None:
        return "missing"
    shop = db.session.get(Shop, job.shop_id)
    if shop is None:
        return "missing"
    with log_context(shop=shop.domain):
        run_import(job, shop)
        log.info(
            "import %s %s: %s imported, %s duplicates, %s refused",
            job.id,
            job.status,
            job.imported,
            job.duplicates,
            job.refused,
        )
    return job.status
