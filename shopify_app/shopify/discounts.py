"""Discount mutations and queries of the GraphQL Admin API.

Thin: each function sends one operation through `ShopifyClient` (which waits on THROTTLED) and
returns plain data; `userErrors` become `ShopifyUserError`. The decisions live in
`services/discounts.py`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from shopify_app.shopify.client import ShopifyClient, raise_user_errors

MAX_CODES_PER_CALL = 250  # Shopify's limit on input arrays, discountRedeemCodeBulkAdd included

CREATE_BASIC = """
mutation CreateBasicCodeDiscount($input: DiscountCodeBasicInput!) {
  discountCodeBasicCreate(basicCodeDiscount: $input) {
    codeDiscountNode { id }
    userErrors { field code message }
  }
}
"""

BY_CODE = """
query DiscountByCode($code: String!) {
  codeDiscountNodeByCode(code: $code) {
    id
    codeDiscount { __typename ... on DiscountCodeBasic { title status } }
  }
}
"""

BULK_ADD = """
mutation AddRedeemCodes($discountId: ID!, $codes: [DiscountRedeemCodeInput!]!) {
  discountRedeemCodeBulkAdd(discountId: $discountId, codes: $codes) {
    bulkCreation { id done codesCount importedCount failedCount }
    userErrors { field code message }
  }
}
"""

# Polling asks only for the counts (a point or two of the cost bucket); the codes and their
# errors (a page of 250: some 250 points) are read once, and only when some failed.
BULK_PROGRESS = """
query RedeemCodeBulkProgress($id: ID!) {
  discountRedeemCodeBulkCreation(id: $id) {
    id done codesCount importedCount failedCount
  }
}
"""

BULK_STATUS = """
query RedeemCodeBulkCreation($id: ID!) {
  discountRedeemCodeBulkCreation(id: $id) {
    id done codesCount importedCount failedCount
    codes(first: 250) { nodes { code errors { field code message } } }
  }
}
"""

DELETE = """
mutation DeleteCodeDiscount($id: ID!) {
  discountCodeDelete(id: $id) {
    deletedCodeDiscountId
    userErrors { field code message }
  }
}
"""

DEACTIVATE = """
mutation DeactivateCodeDiscount($id: ID!) {
  discountCodeDeactivate(id: $id) {
    codeDiscountNode { id }
    userErrors { field code message }
  }
}
"""


@dataclass(frozen=True)
class DiscountTerms:
    """What the shopper gets, as the merchant configured it (percent as 15, not 0.15)."""

    title: str
    value_type: str  # percentage | amount
    value: Decimal
    minimum_subtotal: Decimal | None = None
    once_per_customer: bool = True
    combines_with: dict[str, bool] | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    usage_limit: int | None = None


@dataclass(frozen=True)
class BulkCreation:
    id: str
    done: bool
    codes_count: int
    imported_count: int
    failed_count: int
    failed_codes: dict[str, str]  # code -> Shopify's reason


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def basic_input(terms: DiscountTerms, code: str) -> dict[str, Any]:
    """`DiscountCodeBasicInput` for one code. Percentages go to Shopify as a fraction."""
    if terms.value_type == "percentage":
        # Shopify's Float; 15 -> 0.15. Through str so the fraction is the one the merchant typed.
        value: dict[str, Any] = {"percentage": float(str(terms.value / Decimal(100)))}
    else:
        value = {"discountAmount": {"amount": str(terms.value), "appliesOnEachItem": False}}
    data: dict[str, Any] = {
        "title": terms.title,
        "code": code,
        "startsAt": _iso(terms.starts_at),
        "endsAt": _iso(terms.ends_at),
        "context": {"all": "ALL"},
        "customerGets": {"value": value, "items": {"all": True}},
        "appliesOncePerCustomer": terms.once_per_customer,
        "combinesWith": {
            "orderDiscounts": False,
            "productDiscounts": False,
            "shippingDiscounts": False,
            **(terms.combines_with or {}),
        },
    }
    if terms.minimum_subtotal is not None:
        data["minimumRequirement"] = {
            "subtotal": {"greaterThanOrEqualToSubtotal": str(terms.minimum_subtotal)}
        }
    if terms.usage_limit is not None:
        data["usageLimit"] = terms.usage_limit
    return data


def create_basic_discount(client: ShopifyClient, terms: DiscountTerms, code: str) -> str:
    """Create a basic code discount holding `code`; returns its gid."""
    data = client.execute(CREATE_BASIC, {"input": basic_input(terms, code)})
    result = raise_user_errors(data, "discountCodeBasicCreate")
    return str(result["codeDiscountNode"]["id"])


def find_by_code(client: ShopifyClient, code: str) -> dict[str, Any] | None:
    """The discount holding `code`: {"id", "title", "status"}, or None."""
    node = client.execute(BY_CODE, {"code": code}).get("codeDiscountNodeByCode")
    if not node:
        return None
    details = node.get("codeDiscount") or {}
    return {"id": node["id"], "title": details.get("title"), "status": details.get("status")}


def bulk_add_codes(client: ShopifyClient, discount_gid: str, codes: list[str]) -> str:
    """Start adding up to 250 codes to a discount; returns the bulk creation's gid."""
    if not 0 < len(codes) <= MAX_CODES_PER_CALL:
        raise ValueError(f"between 1 and {MAX_CODES_PER_CALL} codes per call, not {len(codes)}")
    data = client.execute(
        BULK_ADD, {"discountId": discount_gid, "codes": [{"code": c} for c in codes]}
    )
    result = raise_user_errors(data, "discountRedeemCodeBulkAdd")
    return str(result["bulkCreation"]["id"])


def bulk_creation(
    client: ShopifyClient, bulk_gid: str, with_codes: bool = False
) -> BulkCreation | None:
    """The state of one asynchronous bulk creation (None if Shopify does not know it); with
    `with_codes`, also which codes it refused and why (`failed_codes`)."""
    query = BULK_STATUS if with_codes else BULK_PROGRESS
    node = client.execute(query, {"id": bulk_gid}).get("discountRedeemCodeBulkCreation")
    if not node:
        return None
    failed: dict[str, str] = {}
    for item in (node.get("codes") or {}).get("nodes") or []:
        errors = item.get("errors") or []
        if errors:
            failed[str(item.get("code", ""))] = "; ".join(
                str(e.get("message") or e.get("code") or "rejected") for e in errors
            )
    return BulkCreation(
        id=str(node["id"]),
        done=bool(node.get("done")),
        codes_count=int(node.get("codesCount") or 0),
        imported_count=int(node.get("importedCount") or 0),
        failed_count=int(node.get("failedCount") or 0),
        failed_codes=failed,
    )


def delete_discount(client: ShopifyClient, discount_gid: str) -> None:
    raise_user_errors(client.execute(DELETE, {"id": discount_gid}), "discountCodeDelete")


def deactivate_discount(client: ShopifyClient, discount_gid: str) -> None:
    raise_user_errors(client.execute(DEACTIVATE, {"id": discount_gid}), "discountCodeDeactivate")
