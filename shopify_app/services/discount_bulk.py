"""Unique codes: one per recipient message, added to one Shopify discount 250 at a time.

Every step leaves a durable trace before the next call to Shopify, because Shopify's state is
outside our transaction: a code is `pending` (generated here), `submitted` with the id of the
bulk creation that carries it, then `ready` or `failed` once that creation is done. A worker
that dies anywhere in between resumes from those rows: it polls submitted creations again
instead of adding their codes twice.
"""

from __future__ import annotations

import logging

from sqlalchemy import exists, insert, select

from shopify_app.extensions import db
from shopify_app.models import Discount, DiscountCode, Message
from shopify_app.services.codes import generate_codes
from shopify_app.services.discount_calls import DiscountError, ShopifyCalls
from shopify_app.shopify.discounts import MAX_CODES_PER_CALL, bulk_add_codes, bulk_creation

log = logging.getLogger(__name__)

INSERT_BATCH = 1000
MAX_REGENERATION_ROUNDS = 2  # codes Shopify refused get fresh codes this many times


def fresh_codes(shop_id: int, count: int, prefix: str) -> list[str]:
    """`count` new codes that no row of this shop holds yet."""
    codes = generate_codes(count, prefix)
    while True:
        clash = set(
            db.session.scalars(
                select(DiscountCode.code).where(
                    DiscountCode.shop_id == shop_id, DiscountCode.code.in_(codes)
                )
            )
        )
        if not clash:
            return codes
        keep = [c for c in codes if c not in clash]
        codes = keep + generate_codes(len(codes) - len(keep), prefix, exclude=set(codes))


def issue_recipient_codes(discount: Discount, campaign_id: int) -> int:
    """A pending code for every message of the campaign that will be texted and has none."""
    without_code = ~exists().where(DiscountCode.message_id == Message.id)
    rows = db.session.execute(
        select(Message.id, Message.subscriber_id)
        .where(
            Message.shop_id == discount.shop_id,
            Message.campaign_id == campaign_id,
            Message.status != "skipped",
            without_code,
        )
        .order_by(Message.id)
    ).all()
    for start in range(0, len(rows), INSERT_BATCH):
        chunk = rows[start : start + INSERT_BATCH]
        codes = fresh_codes(discount.shop_id, len(chunk), discount.prefix)
        db.session.execute(
            insert(DiscountCode),
            [
                {
                    "shop_id": discount.shop_id,
                    "discount_id": discount.id,
                    "code": code,
                    "subscriber_id": subscriber_id,
                    "message_id": message_id,
                    "campaign_id": campaign_id,
                    "status": "pending",
                }
                for (message_id, subscriber_id), code in zip(chunk, codes, strict=True)
            ],
        )
    db.session.commit()
    return len(rows)


def _codes(
    discount: Discount, status: str, *, bulk_id: str | None = None, limit: int | None = None
) -> list[DiscountCode]:
    stmt = DiscountCode.for_shop(discount.shop_id).where(
        DiscountCode.discount_id == discount.id, DiscountCode.status == status
    )
    if bulk_id is not None:
        stmt = stmt.where(DiscountCode.bulk_creation_id == bulk_id)
    stmt = stmt.order_by(DiscountCode.id)
    if limit is not None:
        stmt = stmt.limit(limit)
    return list(db.session.scalars(stmt))


def _settle(calls: ShopifyCalls, discount: Discount, bulk_id: str) -> None:
    """Poll one bulk creation until Shopify is done, then mark its codes ready or failed."""
    attempt = 0
    while True:
        state = calls.call(bulk_creation, bulk_id)
        if state is None:
            # Shopify forgot the creation: submit its codes again (a code that did get in
            # comes back TAKEN and is replaced by a fresh one).
            for row in _codes(discount, "submitted", bulk_id=bulk_id):
                row.status, row.bulk_creation_id = "pending", None
            db.session.commit()
            return
        if state.done:
            break
        calls.pause(attempt)
        attempt += 1
    if state.failed_count:
        # Which ones, and why: one dearer read, only for a creation that refused some.
        detailed = calls.call(bulk_creation, bulk_id, True)
        state = detailed if detailed is not None else state
    failed = {code.upper(): reason for code, reason in state.failed_codes.items()}
    for row in _codes(discount, "submitted", bulk_id=bulk_id):
        if row.code in failed:
            row.status, row.error = "failed", failed[row.code][:500]
        else:
            row.status, row.error = "ready", None
    db.session.commit()
    if state.failed_count:
        log.warning(
            "Shopify refused %s of %s codes of discount %s",
            state.failed_count,
            state.codes_count,
            discount.id,
        )


def _submit_all(calls: ShopifyCalls, discount: Discount) -> None:
    for bulk_id in sorted(
        {row.bulk_creation_id for row in _codes(discount, "submitted") if row.bulk_creation_id}
    ):
        _settle(calls, discount, bulk_id)
    while True:
        rows = _codes(discount, "pending", limit=MAX_CODES_PER_CALL)
        if not rows:
            return
        assert discount.shopify_id is not None
        bulk_id = calls.call(bulk_add_codes, discount.shopify_id, [r.code for r in rows])
        for row in rows:
            row.status, row.bulk_creation_id = "submitted", bulk_id
        db.session.commit()
        _settle(calls, discount, bulk_id)


def add_codes_in_bulk(calls: ShopifyCalls, discount: Discount) -> None:
    """Add every pending code to the Shopify discount; give refused codes fresh ones a few
    times. Raises DiscountError when codes are still refused after that."""
    for round_ in range(MAX_REGENERATION_ROUNDS + 1):
        _submit_all(calls, discount)
        failed = _codes(discount, "failed")
        if not failed:
            return
        if round_ == MAX_REGENERATION_ROUNDS:
            raise DiscountError(
                f"Shopify refused {len(failed)} discount codes ({failed[0].error or 'no reason'})",
                retryable=False,
            )
        replacements = fresh_codes(discount.shop_id, len(failed), discount.prefix)
        for row, code in zip(failed, replacements, strict=True):
            row.code, row.status, row.bulk_creation_id = code, "pending", None
        db.session.commit()
