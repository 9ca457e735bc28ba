"""Consent write-back jobs: one ledger event to its Shopify customer; a sweep for lost ones."""

from __future__ import annotations

import logging

from shopify_app.extensions import db
from shopify_app.jobqueue import enqueue_now
from shopify_app.services import consent
from shopify_app.services.consent_sync import sync_event, unsynced_event_ids
from shopify_app.shopify.errors import ShopifyAuthError

log = logging.getLogger(__name__)


def sync_consent_event(event_id: int) -> str:
    """Safe to run twice: a synced event is skipped. Throttling and outages raise (RQ retries);
    an auth failure (uninstalled shop, revoked token) is not retried."""
    try:
        result = sync_event(event_id)
    except ShopifyAuthError:
        db.session.rollback()
        log.warning("consent event %s not synced: Shopify refused our token", event_id)
        return "auth_error"
    except Exception:
        db.session.rollback()
        raise
    db.session.commit()
    return result.outcome


def sweep_unsynced() -> int:
    """Periodic: re-enqueue write-backs whose job was lost. Returns how many were enqueued."""
    ids = unsynced_event_ids()
    db.session.rollback()
    for event_id in ids:
        enqueue_now(
            consent.SYNC_JOB,
            event_id,
            queue="low",
            job_id=f"consent-sync-{event_id}",
            retry=consent.SYNC_RETRY,
        )
    return len(ids)
