"""What happens to a shop when the merchant uninstalls the app or changes its scopes.

These functions change rows and flush; the caller (a webhook job) owns the transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import update

from shopify_app.extensions import db
from shopify_app.models import Campaign, FlowRun, ImportJob, Message, Shop, utcnow
from shopify_app.models.message import OPEN_STATUSES

log = logging.getLogger(__name__)

UNINSTALL_SKIP_REASON = "shop_uninstalled"
UNINSTALL_CAMPAIGN_REASON = "App uninstalled"
UNINSTALL_EXIT_REASON = "uninstalled"
# Imports not finished yet: an uninstalled shop's import must not keep adding subscribers.
_OPEN_IMPORT_STATUSES = ("queued", "pending", "running")


@dataclass(frozen=True)
class UninstallResult:
    applied: bool
    messages_skipped: int = 0
    campaigns_cancelled: int = 0
    flow_runs_exited: int = 0
    imports_cancelled: int = 0


def uninstall(shop: Shop, at: datetime | None = None) -> UninstallResult:
    """Forget the shop's tokens and stop all queued work for it.

    An uninstall older than the shop's latest install (the merchant reinstalled before the
    webhook was processed) changes nothing.
    """
    at = at or utcnow()
    if shop.installed_at is not None and shop.installed_at > at:
        log.info("app/uninstalled from before the latest install; shop left installed")
        return UninstallResult(applied=False)

    shop.uninstalled_at = at
    # Shopify has revoked the tokens already; keeping them would only be a liability.
    shop.access_token_enc = None
    shop.access_token_expires_at = None
    shop.refresh_token_enc = None
    shop.refresh_token_expires_at = None

    # One statement per open status: each is served by its own partial index (pending by
    # shop and due time, sending by lease), where `status IN (...)` would read every message.
    messages = sum(
        db.session.execute(
            update(Message)
            .where(Message.shop_id == shop.id, Message.status == status)
            .values(status="skipped", skip_reason=UNINSTALL_SKIP_REASON, lease_expires_at=None)
        ).rowcount
        for status in OPEN_STATUSES
    )
    campaigns = db.session.execute(
        update(Campaign)
        .where(Campaign.shop_id == shop.id, Campaign.status.in_(("scheduled", "sending")))
        .values(status="cancelled", status_reason=UNINSTALL_CAMPAIGN_REASON, cancelled_at=at)
    ).rowcount
    runs = db.session.execute(
        update(FlowRun)
        .where(FlowRun.shop_id == shop.id, FlowRun.status == "active")
        .values(status="exited", exit_reason=UNINSTALL_EXIT_REASON, next_step_at=None, ended_at=at)
    ).rowcount
    imports = db.session.execute(
        update(ImportJob)
        .where(ImportJob.shop_id == shop.id, ImportJob.status.in_(_OPEN_IMPORT_STATUSES))
        # The uploaded file holds other people's numbers; it will never be read now.
        .values(status="cancelled", csv_text=None, finished_at=at)
    ).rowcount
    result = UninstallResult(True, messages, campaigns, runs, imports)
    log.info(
        "app uninstalled: %s messages skipped, %s campaigns cancelled, %s flow runs "
        "exited, %s imports cancelled",
        messages,
        campaigns,
        runs,
        imports,
    )
    return result


def update_scopes(shop: Shop, scopes: Iterable[str]) -> None:
    """Record the scopes the merchant has granted now (app/scopes_update)."""
    shop.scopes = ",".join(sorted({s.strip() for s in scopes if s and s.strip()}))
    log.info("scopes updated: %s", shop.scopes)
